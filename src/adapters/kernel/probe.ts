/**
 * Which link kinds and nftables features this kernel offers. Each candidate
 * is created for real, inside a throwaway network namespace made by
 * `unshare --net`: the namespace has no name and no mount, so it and every
 * link in it vanish when the probe process exits, even if the daemon dies
 * mid-probe. Works the same from the root netns or from a daemon that itself
 * runs in a netns, and never touches the caller's netns.
 */
import type { KernelFeatures } from '../../core/dataplane/types.js';
import { FeatureUnavailableError, KernelError } from '../../core/errors.js';
import { failedBatchLines } from './ip-runner.js';
import { runCommand } from './exec.js';

/** One line per link kind; macvlan/ipvlan/vlan need a parent, the veth of line 1. */
const LINK_PROBES: readonly { kind: keyof KernelFeatures; line: string }[] = [
  { kind: 'veth', line: 'link add wp0 type veth peer name wp1' },
  { kind: 'bridge', line: 'link add wpb type bridge' },
  { kind: 'macvlan', line: 'link add link wp0 name wpm type macvlan mode bridge' },
  { kind: 'ipvlan', line: 'link add link wp0 name wpi type ipvlan mode l2' },
  { kind: 'vlan', line: 'link add link wp0 name wpv type vlan id 9' },
  { kind: 'vxlan', line: 'link add wpx type vxlan id 42 dstport 4789' },
];

/** The nft features weft's ruleset uses: inet nat, masquerade, dnat, fib, ct status. */
const NFT_PROBE = `table inet weftprobe {
  chain p {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.0.0.0/8 ip daddr != 10.0.0.0/8 masquerade
    ct status dnat ip saddr 10.0.0.0/8 masquerade
  }
  chain d {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local meta nfproto ipv4 tcp dport 1 dnat ip to 10.0.0.1:1
  }
}
`;

export interface ProbeDetails {
  readonly features: KernelFeatures;
  /** Why a feature is missing, per feature (ip's / nft's message). */
  readonly reasons: Partial<Record<keyof KernelFeatures, string>>;
}

export async function probeKernel(timeoutMs = 10_000): Promise<ProbeDetails> {
  const reasons: Partial<Record<keyof KernelFeatures, string>> = {};
  const lines = LINK_PROBES.map((p) => p.line);
  const r = await runCommand('unshare', ['--net', '--', 'ip', '-force', '-batch', '-'], { input: lines.join('\n') + '\n', timeoutMs });
  if (/^unshare: failed to execute ip/m.test(r.stderr)) throw new FeatureUnavailableError('ip is not installed (or not on PATH)', { hint: 'install the iproute2 package' });
  if (r.code !== 0 && /^unshare: /m.test(r.stderr)) {
    throw new KernelError(`cannot create a scratch network namespace to probe the kernel: ${r.stderr.trim()}`, { hint: 'weft needs CAP_SYS_ADMIN and CAP_NET_ADMIN' });
  }
  const failed = new Set(failedBatchLines(r.stderr));
  const errLines = r.stderr.split('\n');
  const has = (i: number): boolean => !failed.has(i + 1);
  LINK_PROBES.forEach((p, i) => {
    if (!has(i)) {
      // ip prints "Error: ..." then "Command failed -:N"; take the message before our line's trailer.
      const at = errLines.findIndex((l) => l.trim() === `Command failed -:${i + 1}`);
      reasons[p.kind] = (at > 0 ? errLines[at - 1] : undefined)?.trim() ?? 'failed';
    }
  });

  let nftables = false;
  try {
    const n = await runCommand('unshare', ['--net', '--', 'nft', '-f', '-'], { input: NFT_PROBE, timeoutMs });
    nftables = n.code === 0;
    if (!nftables) reasons.nftables = n.stderr.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'failed';
  } catch (e) {
    if (!(e instanceof FeatureUnavailableError)) throw e;
    reasons.nftables = e.message;
  }
  // unshare execs the tool; a missing tool shows as "unshare: failed to execute nft".
  if (!nftables && reasons.nftables !== undefined && /failed to execute/.test(reasons.nftables)) reasons.nftables = 'nft is not installed';

  const feat = (k: keyof KernelFeatures): boolean => {
    const i = LINK_PROBES.findIndex((p) => p.kind === k);
    return i >= 0 && has(i);
  };
  const features: KernelFeatures = {
    bridge: feat('bridge'),
    veth: feat('veth'),
    macvlan: feat('macvlan'),
    vxlan: feat('vxlan'),
    ipvlan: feat('ipvlan'),
    vlan: feat('vlan'),
    nftables,
  };
  return { features, reasons };
}
