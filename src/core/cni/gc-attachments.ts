/**
 * The list of still-valid attachments a GC call carries. The spec-v1.1.0 tag
 * named the key `cni.dev/attachments`; the spec was later corrected to
 * `cni.dev/valid-attachments`, and libcni sends both with the same value
 * (libcni/api.go GCNetworkList, "#1101"). weft reads the union so that a
 * runtime sending only one of them still works.
 */
import { InvalidConfigError } from '../errors.js';
import { at, cniName, ifname, isObject, obj } from './json-check.js';

export const VALID_ATTACHMENTS_KEY = 'cni.dev/valid-attachments';
export const LEGACY_ATTACHMENTS_KEY = 'cni.dev/attachments';

export interface GcAttachment {
  readonly containerID: string;
  readonly ifname: string;
}

function readList(v: unknown, path: string): GcAttachment[] {
  // libcni marshals an empty Go slice as null: "no attachment is valid".
  if (v === null) return [];
  if (!Array.isArray(v)) throw new InvalidConfigError(`${path}: expected an array of {containerID, ifname}, got ${JSON.stringify(v)}`);
  return v.map((item, i) => {
    const p = at(path, i);
    const o = obj(item, p);
    return { containerID: cniName(o['containerID'], at(p, 'containerID')), ifname: ifname(o['ifname'], at(p, 'ifname')) };
  });
}

/**
 * Whether the configuration carries a GC list at all (under either key).
 */
export function hasGcAttachments(raw: unknown): boolean {
  return isObject(raw) && (raw[VALID_ATTACHMENTS_KEY] !== undefined || raw[LEGACY_ATTACHMENTS_KEY] !== undefined);
}

/**
 * The union of both keys, without duplicates, in first-seen order. A GC
 * configuration carrying neither key is refused (code 7) rather than read as
 * "nothing is valid": that reading would release every address of the
 * network because of a runtime bug.
 */
export function parseGcAttachments(raw: unknown): GcAttachment[] {
  const o = obj(raw, '');
  if (!hasGcAttachments(o)) {
    throw new InvalidConfigError(`GC needs the list of valid attachments in "${VALID_ATTACHMENTS_KEY}" (or the legacy "${LEGACY_ATTACHMENTS_KEY}"); the configuration has neither`);
  }
  const all = [
    ...(o[VALID_ATTACHMENTS_KEY] === undefined ? [] : readList(o[VALID_ATTACHMENTS_KEY], VALID_ATTACHMENTS_KEY)),
    ...(o[LEGACY_ATTACHMENTS_KEY] === undefined ? [] : readList(o[LEGACY_ATTACHMENTS_KEY], LEGACY_ATTACHMENTS_KEY)),
  ];
  const seen = new Set<string>();
  return all.filter((a) => {
    const k = `${a.containerID}\u0000${a.ifname}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
