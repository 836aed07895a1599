import type { CAC } from 'cac';
import { type Ctx, OUTPUT_OPT, SOCKET_OPT } from '../context.js';
import { emit, table } from '../output.js';
import type { RouterStatus } from '../../daemon/status.js';
import type { Attachment } from '../../core/ipam/attachment.js';

function explain(s: RouterStatus): string {
  const feats = Object.entries(s.features).map(([k, v]) => `${k}${v ? '' : ' (unavailable)'}`).join(', ');
  const lines = [
    `weft router ${s.name} (version ${s.version}, pid ${s.pid})`,
    `  State:        ${s.ready ? 'ready: CNI ADD is served' : 'not ready'}`,
    `  Up since:     ${s.startedAt} (${Math.round(s.uptimeSeconds)} s)`,
    `  Data dir:     ${s.dataDir}`,
    `  API socket:   ${s.socket}`,
    `  Kernel:       ${feats}`,
    `  Containers:   ${s.attachments.ready} attached${s.attachments.creating ? `, ${s.attachments.creating} being attached` : ''}`,
    `  Subnets:      ${s.subnets.map((x) => `${x.name} ${x.cidr} (${x.inUse} in use, ${x.free} free)`).join('; ') || 'none'}`,
    `  Last reconcile: ${s.lastReconcile ? `${s.lastReconcile.at}: ${s.lastReconcile.summary}` : 'not yet'}`,
  ];
  for (const w of s.warnings) lines.push(`  Warning: ${w}`);
  return lines.join('\n');
}

export function registerStatus(cli: CAC, ctx: Ctx): void {
  cli.command('status', 'Explain the router\'s state: readiness, kernel features, subnets, containers, warnings').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .action(async (opts: Record<string, unknown>) => {
      const s = await ctx.api(opts).get<RouterStatus>('/v1/status');
      emit(ctx.io, ctx.format(opts), s, () => explain(s));
    });
  cli.command('ps', 'List the container interfaces weft attached').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .action(async (opts: Record<string, unknown>) => {
      const list = await ctx.api(opts).get<Attachment[]>('/v1/attachments');
      emit(ctx.io, ctx.format(opts), list, () => table(['CONTAINER', 'IFNAME', 'NETWORK', 'MODE', 'IDENTITY', 'MAC', 'ADDRESSES', 'STATE'],
        list.map((a) => [a.containerId.slice(0, 12), a.ifname, a.network, a.mode, a.identity, a.mac, a.ips.map((i) => i.address).join(','), a.state])));
    });
}
