import type { CAC } from 'cac';
import type { Pool } from '../../core/ipam/model.js';
import { type Ctx, OUTPUT_OPT, SOCKET_OPT, optInt, optString, strings } from '../context.js';
import { emit, table, UsageError } from '../output.js';

function fmtRanges(p: Pool): string {
  return p.addresses.map((r) => (r.start === r.end ? r.start : `${r.start}-${r.end}`)).join(',');
}

export function registerPool(cli: CAC, ctx: Ctx): void {
  cli.command('create <name>', 'Create a pool: addresses of a subnet set aside for a workload or tenant')
    .option('--subnet <name>', 'the subnet the addresses belong to')
    .option('--addresses <list>', 'addresses, ranges A-B or prefixes (repeatable or comma-separated)', { type: [String] })
    .option('--match-namespace <ns>', 'serve identities of this K8S namespace (podman: "default")')
    .option('--match-name <glob>', 'serve identities whose name matches, e.g. "etcd-*"')
    .option('--tenant <name>', 'only this tenant may allocate from the pool (repeatable)', { type: [String] })
    .option('--quota <n>', 'maximum addresses of the pool in use')
    .option('--sticky', 'identities keep their first address (default: the subnet\'s setting)')
    .option('--no-sticky', 'do not keep addresses for identities even on a sticky subnet')
    .option(...SOCKET_OPT)
    .example('weft pool create etcd --subnet db --addresses 10.40.0.10-10.40.0.12 --match-name "etcd-*"')
    .action(async (name: string, opts: Record<string, unknown>) => {
      const subnet = optString(opts.subnet);
      const addresses = strings(opts.addresses);
      if (!subnet) throw new UsageError('--subnet is required');
      if (addresses.length === 0) throw new UsageError('--addresses is required, e.g. --addresses 10.40.0.10-10.40.0.20');
      const ns = optString(opts.matchNamespace);
      const nm = optString(opts.matchName);
      const quota = optInt(opts.quota, '--quota');
      const p = await ctx.api(opts).post<Pool>('/v1/pools', {
        name: String(name), subnet, addresses,
        ...(ns || nm ? { match: { ...(ns ? { namespace: ns } : {}), ...(nm ? { name: nm } : {}) } } : {}),
        ...(strings(opts.tenant).length ? { tenants: strings(opts.tenant) } : {}),
        ...(quota !== undefined ? { quota } : {}),
        ...(opts.sticky !== undefined ? { sticky: opts.sticky === true } : {}),
      });
      ctx.io.out(`pool ${p.name} created in subnet ${p.subnet}: ${fmtRanges(p)}`);
    });
  cli.command('list', 'List pools').option('--subnet <name>', 'only pools of this subnet').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .action(async (opts: Record<string, unknown>) => {
      const s = optString(opts.subnet);
      const list = await ctx.api(opts).get<{ pool: Pool; inUse: number; size: string }[]>(`/v1/pools${s ? `?subnet=${encodeURIComponent(s)}` : ''}`);
      emit(ctx.io, ctx.format(opts), list, () => table(['NAME', 'SUBNET', 'ADDRESSES', 'IN-USE', 'SIZE', 'MATCH', 'TENANTS', 'QUOTA', 'STICKY'],
        list.map(({ pool: p, inUse, size }) => [p.name, p.subnet, fmtRanges(p), inUse, size, p.match ? `${p.match.namespace ?? '*'}/${p.match.name ?? '*'}` : 'by name', p.tenants.join(',') || 'any', p.quota, p.sticky ? 'yes' : 'no'])));
    });
  cli.command('delete <name>', 'Delete a pool with no address in use').option(...SOCKET_OPT)
    .action(async (name: string, opts: Record<string, unknown>) => {
      await ctx.api(opts).delete(`/v1/pools/${encodeURIComponent(String(name))}`);
      ctx.io.out(`pool ${String(name)} deleted`);
    });
}
