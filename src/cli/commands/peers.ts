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
}
