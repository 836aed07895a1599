/**
 * CNI_ARGS: the deprecated but still widely sent `K=V;K2=V2` string. podman
 * uses it for `--ip`/`--mac-address` (`IgnoreUnknown=1;K8S_POD_NAME=x;
 * MAC=..;IP=..`), Kubernetes runtimes for the K8S_POD_* keys.
 *
 * Parsing follows libcni's types.LoadArgs: every pair needs exactly one "=",
 * keys are case-sensitive, the last occurrence of a key wins, and unknown keys
 * are an error unless IgnoreUnknown is true ("1"/"true", any case). One
 * leniency: empty segments (a trailing ";") are skipped, since they carry no
 * pair to misread.
 */
import { tryParseIp } from '../ip/addr.js';
import { tryParseIpWithPrefix } from '../ip/cidr.js';
import { InvalidEnvError, UnsupportedFieldError } from '../errors.js';
import { macProblem } from './syntax.js';

export interface CniArgs {
  readonly ignoreUnknown: boolean;
  /** Requested addresses from `IP=` ("a.b.c.d" or "a.b.c.d/n"; comma-separated list allowed). */
  readonly ips: readonly string[];
  /** Requested MAC from `MAC=`, lower-cased. */
  readonly mac?: string;
  readonly k8sPodNamespace?: string;
  readonly k8sPodName?: string;
  readonly k8sPodUid?: string;
  readonly k8sPodInfraContainerId?: string;
  readonly k8sPodNetwork?: string;
  /** Unknown pairs that were tolerated because of IgnoreUnknown. */
  readonly ignored: Readonly<Record<string, string>>;
}

const K8S_KEYS = {
  K8S_POD_NAMESPACE: 'k8sPodNamespace',
  K8S_POD_NAME: 'k8sPodName',
  K8S_POD_UID: 'k8sPodUid',
  K8S_POD_INFRA_CONTAINER_ID: 'k8sPodInfraContainerId',
  K8S_POD_NETWORK: 'k8sPodNetwork',
} as const;

function parseBool(key: string, value: string): boolean {
  const v = value.toLowerCase();
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new InvalidEnvError(`CNI_ARGS: ${key}="${value}" is not a boolean (use 1, 0, true or false)`);
}

function parseIps(value: string): string[] {
  return value.split(',').map((item) => {
    const s = item.trim();
    if (!tryParseIp(s) && !tryParseIpWithPrefix(s)) {
      throw new InvalidEnvError(`CNI_ARGS: IP="${value}": "${s}" is not an IP address (expected a.b.c.d, an IPv6 address, or either with /prefix)`);
    }
    return s;
  });
}

/** Parses CNI_ARGS; undefined or "" gives an empty result. */
export function parseCniArgs(raw: string | undefined): CniArgs {
  const pairs = new Map<string, string>();
  for (const segment of (raw ?? '').split(';')) {
    if (segment === '') continue;
    const kv = segment.split('=');
    if (kv.length !== 2 || kv[0] === '') {
      throw new InvalidEnvError(`CNI_ARGS: invalid pair "${segment}": expected KEY=VALUE pairs separated by ";"`);
    }
    pairs.set(kv[0]!, kv[1]!);
  }

  let ignoreUnknown = false;
  let ips: string[] = [];
  let mac: string | undefined;
  const k8s: Partial<Record<(typeof K8S_KEYS)[keyof typeof K8S_KEYS], string>> = {};
  const unknown: Record<string, string> = {};
  for (const [key, value] of pairs) {
    if (key === 'IgnoreUnknown') {
      ignoreUnknown = parseBool(key, value);
    } else if (key === 'IP') {
      ips = parseIps(value);
    } else if (key === 'MAC') {
      const problem = macProblem(value);
      if (problem) throw new InvalidEnvError(`CNI_ARGS: MAC="${value}" ${problem}`);
      mac = value.toLowerCase();
    } else if (Object.hasOwn(K8S_KEYS, key)) {
      k8s[K8S_KEYS[key as keyof typeof K8S_KEYS]] = value;
    } else {
      unknown[key] = value;
    }
  }

  const unknownKeys = Object.keys(unknown);
  if (unknownKeys.length > 0 && !ignoreUnknown) {
    const listed = unknownKeys.map((k) => `${k}="${unknown[k]}"`).join(', ');
    throw new UnsupportedFieldError(`CNI_ARGS: unknown key${unknownKeys.length === 1 ? '' : 's'} ${listed}`, {
      hint: 'add IgnoreUnknown=1 to CNI_ARGS to ignore keys weft does not use',
    });
  }
  return { ignoreUnknown, ips, ...(mac === undefined ? {} : { mac }), ...k8s, ignored: unknown };
}
