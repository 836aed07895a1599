import type { CAC } from 'cac';
import type { Allocation, Reservation } from '../../core/ipam/model.js';
import { type Ctx, OUTPUT_OPT, SOCKET_OPT, optString } from '../context.js';
import { emit, table, UsageError } from '../output.js';

export function registerIp(cli: CAC, ctx: Ctx): void {
  cli.command('reserve <subnet> <ip>', 'Bind an address to an identity (NAMESPACE/NAME): only it will get the address')
    .option('--owner <ns/name>', 'the identity, e.g. default/etcd-0 (podman: default/<container name>)')
    .option(...SOCKET_OPT)
    .example('weft ip reserve db 10.40.0.10 --owner default/etcd-0')
    .action(async (subnet: string, ip: string, opts: Record<string, unknown>) => {
      const owner = optString(opts.owner);
      if (!owner) throw new UsageError('--owner NAMESPACE/NAME is required');
      const r = await ctx.api(opts).post<Reservation>('/v1/reservations', { subnet: String(subnet), ip: String(ip), owner });
      ctx.io.out(`${r.ip} in subnet ${r.subnet} reserved for ${r.owner}`);
    });
  cli.command('release <subnet> <ip>', 'Drop a reservation and/or free an address held for a sticky identity')
    .option(...SOCKET_OPT)
    .action(async (subnet: string, ip: string, opts: Record<string, unknown>) => {
      const r = await ctx.api(opts).post<{ reservation: boolean; held: boolean }>('/v1/ips/release', { subnet: String(subnet), ip: String(ip) });
      ctx.io.out(`${String(ip)} released${r.reservation ? ' (reservation removed)' : ''}${r.held ? ' (held address freed)' : ''}`);
    });
  cli.command('list', 'List allocated and reserved addresses').option('--subnet <name>', 'only this subnet').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .action(async (opts: Record<string, unknown>) => {
      const s = optString(opts.subnet);
      const r = await ctx.api(opts).get<{ allocations: Allocation[]; reservations: Reservation[] }>(`/v1/ips${s ? `?subnet=${encodeURIComponent(s)}` : ''}`);
      const rows = new Map<string, (string | undefined)[]>();
      for (const a of r.allocations) rows.set(`${a.subnet}/${a.ip}`, [a.subnet, a.ip, a.state, a.identity, a.containerId?.slice(0, 12), a.ifname, a.pool, undefined, a.updatedAt]);
      for (const x of r.reservations) {
        const row = rows.get(`${x.subnet}/${x.ip}`);
        if (row) row[7] = x.owner;
        else rows.set(`${x.subnet}/${x.ip}`, [x.subnet, x.ip, 'reserved', undefined, undefined, undefined, undefined, x.owner, x.createdAt]);
      }
      emit(ctx.io, ctx.format(opts), r, () => table(['SUBNET', 'IP', 'STATE', 'IDENTITY', 'CONTAINER', 'IFNAME', 'POOL', 'RESERVED-FOR', 'SINCE'], [...rows.values()]));
    });
}
