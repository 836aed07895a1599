import { createHash } from 'node:crypto';
import { formatCidr, tryParseCidr } from '../ip/cidr.js';
import { InvalidConfigError } from '../errors.js';

/** Bytes of the cluster fingerprint carried in every handshake. */
export const CLUSTER_ID_BYTES = 16;

/**
 * The cluster identity two peers must share to talk: a hash of the canonical
 * `--ipalloc-range` and an optional cluster name. Peers launched with a
 * different range would otherwise merge two address rings and hand out the
 * same addresses twice, so they refuse each other at the handshake instead.
 * Truncated SHA-256: this is a fingerprint against mistakes, not a secret.
 */
export function clusterFingerprint(ipallocRange: string, clusterName = ''): Uint8Array {
  const c = tryParseCidr(ipallocRange, true);
  if (!c) throw new InvalidConfigError(`ipalloc range "${ipallocRange}" is not a CIDR prefix without host bits`);
  const text = `weft-cluster/1\nrange=${formatCidr(c)}\nname=${clusterName}\n`;
  return new Uint8Array(createHash('sha256').update(text, 'utf8').digest().subarray(0, CLUSTER_ID_BYTES));
}

export function formatClusterId(id: Uint8Array): string {
  return Buffer.from(id).toString('hex');
}

export function sameClusterId(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
