/**
 * Lexical rules shared by the environment, CNI_ARGS and configuration
 * validators. They mirror the reference library (containernetworking/cni
 * pkg/utils) so that a name accepted by libcni-based runtimes is accepted by
 * weft and vice versa. Each check returns a reason string instead of throwing
 * so that every caller can wrap it in the error class (and CNI code) that fits
 * where the value came from: env → 4, config → 7.
 */

/** Container IDs and network names: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`. */
export const CNI_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Linux IFNAMSIZ is 16 bytes including the trailing NUL. */
export const MAX_IFNAME_BYTES = 15;

/** Why `s` is not a valid container ID / network name, or undefined when it is. */
export function cniNameProblem(s: string): string | undefined {
  if (s === '') return 'is empty';
  if (!CNI_NAME_RE.test(s)) return `contains invalid characters; it must match ${CNI_NAME_RE.source}`;
  return undefined;
}

const encoder = new TextEncoder();

/**
 * Why `s` is not a usable Linux interface name, or undefined. The kernel
 * counts bytes, not characters, so a 15-character name with a multi-byte
 * character is too long.
 */
export function ifnameProblem(s: string): string | undefined {
  if (s === '') return 'is empty';
  if (encoder.encode(s).length > MAX_IFNAME_BYTES) return `is longer than ${MAX_IFNAME_BYTES} bytes`;
  if (s === '.' || s === '..') return 'must not be "." or ".."';
  if (/[/:\s]/u.test(s)) return 'must not contain "/", ":" or whitespace';
  return undefined;
}

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/**
 * Why `s` is not an Ethernet address a container interface can use, or
 * undefined. A multicast address (low bit of the first octet set) would be
 * rejected by the kernel later with a far less helpful error.
 */
export function macProblem(s: string): string | undefined {
  if (!MAC_RE.test(s)) return 'is not a MAC address of the form xx:xx:xx:xx:xx:xx';
  if ((parseInt(s.slice(0, 2), 16) & 1) === 1) return 'is a multicast address; a container interface needs a unicast MAC';
  return undefined;
}

/** A short, single-line rendering of a JSON value for error messages. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
