/**
 * CNI spec versions weft speaks, and the negotiation rules of libcni/libskel.
 *
 * Results are produced down to 0.3.1; 0.3.0 is accepted because its result
 * shape is the same as 0.3.1 (0.3.1 only fixed the spec text), so a 0.3.0
 * network gets a 0.3.1-shaped result labelled "0.3.0". 0.1.0/0.2.0 (ip4/ip6
 * results) are not supported: nothing current sends them.
 */
import { IncompatibleVersionError, InvalidConfigError } from '../errors.js';
import type { CniCommand } from './protocol.js';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** The spec version weft implements; what VERSION reports as `cniVersion`. */
export const CURRENT_VERSION: CniVersion = '1.1.0';

/** The VERSION answer, byte for byte (the sh launcher prints the same text). */
export const VERSION_JSON = JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS });

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/**
 * Parses "major[.minor[.micro]]" like libcni's version.ParseVersion, where
 * the empty string means 0.1.0 (a config without cniVersion is pre-0.2).
 * Returns undefined for anything else.
 */
export function parseVersion(v: string): [number, number, number] | undefined {
  if (v === '') return [0, 1, 0];
  const parts = v.split('.');
  if (parts.length > 3) return undefined;
  const nums: number[] = [];
  for (const p of parts) {
    if (!/^[0-9]{1,9}$/.test(p)) return undefined;
    nums.push(Number(p));
  }
  return [nums[0] ?? 0, nums[1] ?? 0, nums[2] ?? 0];
}

/** Orders two version strings; throws RangeError on unparsable input. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa) throw new RangeError(`invalid CNI version "${a}"`);
  if (!pb) throw new RangeError(`invalid CNI version "${b}"`);
  for (let i = 0; i < 3; i++) {
    const d = pa[i]! - pb[i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

const SUPPORTED_TEXT = SUPPORTED_VERSIONS.join(', ');

/**
 * The version to speak for this configuration. With `cniVersions` (CNI 1.1),
 * the highest supported version among `cniVersions` and `cniVersion` wins,
 * exactly as libcni's ConfListFromBytes picks it; entries weft does not know
 * (including newer ones) are skipped. Without it, `cniVersion` must be one
 * of SUPPORTED_VERSIONS verbatim (libskel's reconciler compares strings, so
 * "1.0" is not "1.0.0").
 */
export function pickVersion(config: unknown): CniVersion {
  const conf = typeof config === 'object' && config !== null && !Array.isArray(config) ? (config as Record<string, unknown>) : {};
  const single = conf['cniVersion'];
  if (single !== undefined && typeof single !== 'string') {
    throw new InvalidConfigError(`cniVersion: expected a string, got ${JSON.stringify(single)}`);
  }
  const list = conf['cniVersions'];
  if (list !== undefined) {
    if (!Array.isArray(list)) throw new InvalidConfigError(`cniVersions: expected an array of version strings, got ${JSON.stringify(list)}`);
    list.forEach((v, i) => {
      if (typeof v !== 'string') throw new InvalidConfigError(`cniVersions[${i}]: expected a version string, got ${JSON.stringify(v)}`);
    });
    const candidates = [...(list as string[]), ...(single === undefined ? [] : [single])].filter(isSupportedVersion);
    if (candidates.length === 0) {
      throw new IncompatibleVersionError(
        `incompatible CNI versions: config offers ${JSON.stringify(single === undefined ? list : [...list, single])}, weft supports ${SUPPORTED_TEXT}`,
      );
    }
    return candidates.reduce((best, v) => (compareVersions(v, best) > 0 ? v : best));
  }
  if (single === undefined || single === '') {
    throw new IncompatibleVersionError(`incompatible CNI versions: the network configuration has no cniVersion (meaning 0.1.0); weft supports ${SUPPORTED_TEXT}`);
  }
  if (!isSupportedVersion(single)) {
    throw new IncompatibleVersionError(`incompatible CNI versions: config is "${single}", weft supports ${SUPPORTED_TEXT}`);
  }
  return single;
}

/** The lowest config version each verb exists in (libskel's rules). */
const MIN_VERSION: Readonly<Record<CniCommand, CniVersion | undefined>> = {
  ADD: undefined,
  DEL: undefined,
  CHECK: '0.4.0',
  GC: '1.1.0',
  STATUS: '1.1.0',
};

/** Throws IncompatibleVersionError (code 1) when `command` does not exist in `version`. */
export function requireVersionFor(command: CniCommand, version: CniVersion): void {
  const min = MIN_VERSION[command];
  if (min !== undefined && compareVersions(version, min) < 0) {
    throw new IncompatibleVersionError(`config version "${version}" does not allow ${command}: ${command} needs cniVersion ${min} or later`);
  }
}
