/**
 * Whether an interrupted ADD got as far as its answer: the container end
 * carries every address and route of the record and is up. A restarted
 * router completes such an ADD (its answer may have reached the runtime
 * before the `ready` commit) and rolls back any other.
 */
import { cidrEquals, tryParseCidr } from '../ip/cidr.js';
import type { ContainerIfaceState } from './types.js';

function sameDst(kernel: string, want: string): boolean {
  const w = tryParseCidr(want);
  if (!w) return false;
  if (kernel === 'default') return w.prefix === 0;
  const k = tryParseCidr(kernel);
  return k !== undefined && cidrEquals(k, w);
}

export function containerSideComplete(want: { readonly addresses: readonly string[]; readonly routes: readonly { readonly dst: string }[] }, st: ContainerIfaceState | undefined): boolean {
  if (!st?.up) return false;
  if (!want.addresses.every((a) => st.addresses.includes(a))) return false;
  return want.routes.every((r) => st.routes.some((k) => sameDst(k.dst, r.dst)));
}
