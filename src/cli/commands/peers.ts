import type { CAC } from 'cac';
import { normalizePeerAddress } from '../../core/mesh/address.js';
import { type Ctx, OUTPUT_OPT, SOCKET_OPT } from '../context.js';
import { emit, UsageError } from '../output.js';

function addresses(list: readonly string[]): string[] {
  if (list.length === 0) throw new UsageError('name at least one peer address (IP or IP:PORT)');
  for (const a of list) if (!normalizePeerAddress(a)) throw new UsageError(`"${a}" is not a peer address (IP or IP:PORT)`);
  return [...list];
}

/** `weft connect` / `weft forget`: the router's connection targets (remembered for `weft launch --resume`). */
export function registerPeers(cli: CAC, ctx: Ctx): void {
  cli.command('connect [...addresses]', 'Connect this router to other routers and keep reconnecting (remembered for --resume)').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .example('weft connect 192.0.2.2 192.0.2.3:6783')
    .action(async (list: string[], opts: Record<string, unknown>) => {
      const api = ctx.api(opts);
      const done: { address: string }[] = [];
      for (const a of addresses(list)) done.push(await api.post<{ address: string }>('/v1/mesh/connect', { address: a }));
      emit(ctx.io, ctx.format(opts), done, () => done.map((d) => `connecting to ${d.address} (see weft status targets)`).join('\n'));
    });
  cli.command('forget [...addresses]', 'Stop (re)connecting to these addresses; open connections stay until they drop').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .action(async (list: string[], opts: Record<string, unknown>) => {
      const api = ctx.api(opts);
      const done: { address: string; wasTarget: boolean }[] = [];
      for (const a of addresses(list)) done.push(await api.post<{ address: string; wasTarget: boolean }>('/v1/mesh/forget', { address: a }));
      emit(ctx.io, ctx.format(opts), done, () => done.map((d) => (d.wasTarget ? `forgot ${d.address}` : `${d.address} was not a connection target`)).join('\n'));
    });

  cli.command('rmpeer <name>', 'Take over the address space of a peer that is gone for good (NAME: its nickname or ring id); needed only before the lease timeout reclaims it').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .option('--force', 'also when the peer was heard recently (its addresses may then be handed out twice)')
    .action(async (name: string, opts: Record<string, unknown>) => {
      const r = await ctx.api(opts).post<{ removed: string; gained: string[] }>('/v1/ipam/rmpeer', { name, force: opts.force === true });
      emit(ctx.io, ctx.format(opts), r, () => `removed ${r.removed}; this host now owns ${r.gained.join(', ') || 'nothing more'}`);
    });
  cli.command('accept-ring', 'Adopt the IPAM ring this router refused (genesis conflict: it was seeded apart from the cluster it joined); addresses in use here are claimed from their new owners, duplicates are listed').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .action(async (opts: Record<string, unknown>) => {
      const r = await ctx.api(opts).post<{ accepted: boolean; claimed: string[]; duplicates: { address: string; why: string }[] }>('/v1/ipam/accept-ring');
      emit(ctx.io, ctx.format(opts), r, () => [
        `accepted the other ring; ${r.claimed.length} address(es) in use here claimed from their new owners`,
        ...r.duplicates.map((d) => `DUPLICATE ${d.address}: ${d.why}; restart the container that holds it here`),
      ].join('\n'));
    });
  cli.command('reset', 'Hand this router\'s address space to a live peer and leave the IPAM ring (before decommissioning the host)').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .action(async (opts: Record<string, unknown>) => {
      const r = await ctx.api(opts).post<{ status: string; message: string }>('/v1/ipam/reset');
      emit(ctx.io, ctx.format(opts), r, () => r.message);
    });
}
