/**
 * Which way the router programs veths: in process (rtnetlink through the
 * `netlink` package plus weft's setns addon) or by spawning ip(8). Pure: the
 * adapter hands over what loading the two native pieces said.
 */
import type { VethProgramming } from '../../core/dataplane/types.js';

type LoadOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Values of WEFT_NETLINK that turn the in-process path off. */
const OFF = new Set(['0', 'off', 'false', 'no']);

export function chooseVethProgramming(input: {
  /** KernelDataPlaneOptions.netlink: false forces ip(8). */
  readonly option?: boolean;
  /** process.env.WEFT_NETLINK */
  readonly env?: string;
  readonly platform: string;
  /** Loading the addon / the package; only consulted when nothing above decided. */
  readonly addon: () => LoadOutcome;
  readonly netlink: () => LoadOutcome;
}): VethProgramming {
  if (input.option === false) return { mode: 'ip', reason: 'in-process netlink turned off by the caller' };
  if (input.env !== undefined && OFF.has(input.env.trim().toLowerCase())) return { mode: 'ip', reason: `in-process netlink turned off (WEFT_NETLINK=${input.env})` };
  if (input.platform !== 'linux') return { mode: 'ip', reason: `in-process netlink needs Linux (this is ${input.platform})` };
  const addon = input.addon();
  if (!addon.ok) return { mode: 'ip', reason: addon.reason };
  const nl = input.netlink();
  if (!nl.ok) return { mode: 'ip', reason: nl.reason };
  return { mode: 'netlink' };
}
