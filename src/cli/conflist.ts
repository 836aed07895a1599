/**
 * The network configuration list `weft install-cni` writes. cniVersion is
 * 1.0.0 because podman 4.x and containerd 1.6 vendor a libcni that knows no
 * 1.1.0; `cniVersions` lets a newer libcni pick 1.1.0 (and so GC and STATUS).
 */
import { DEFAULT_SOCKET } from '../core/cni/protocol.js';

export interface ConflistOptions {
  readonly network: string;
  readonly subnets: readonly string[];
  readonly socket: string;
  readonly ipMasq: boolean;
  readonly mtu?: number;
  /** 'builtin': weft publishes ports itself; 'portmap': chain the reference portmap plugin. */
  readonly ports: 'builtin' | 'portmap';
}

export function renderConflist(o: ConflistOptions): Record<string, unknown> {
  const weft: Record<string, unknown> = {
    type: 'weft',
    ...(o.socket !== DEFAULT_SOCKET ? { socket: o.socket } : {}),
    ...(o.subnets.length === 1 ? { subnet: o.subnets[0] } : o.subnets.length > 1 ? { subnet: [...o.subnets] } : {}),
    ipMasq: o.ipMasq,
    ...(o.mtu ? { mtu: o.mtu } : {}),
    capabilities: { ips: true, mac: true, dns: true, aliases: true, ...(o.ports === 'builtin' ? { portMappings: true } : {}) },
  };
  const plugins: Record<string, unknown>[] = [weft];
  if (o.ports === 'portmap') plugins.push({ type: 'portmap', capabilities: { portMappings: true } });
  return { cniVersion: '1.0.0', cniVersions: ['0.4.0', '1.0.0', '1.1.0'], name: o.network, plugins };
}
