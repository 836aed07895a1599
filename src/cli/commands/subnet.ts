import type { CAC } from 'cac';
import type { SubnetUsage } from '../../daemon/ipam-service.js';
import { type Ctx, OUTPUT_OPT, SOCKET_OPT, optInt, optString, strings } from '../context.js';
import { emit, table, UsageError } from '../output.js';

function routes(v: unknown): { dst: string; gw?: string }[] | undefined {
  const list = strings(v);
  if (list.length === 0) return undefined;
  return list.map((r) => {
    const [dst, gw] = r.split('@');
    return gw ? { dst: dst!, gw } : { dst: dst! };
  });
}

function body(opts: Record<string, unknown>): Record<string, unknown> {
  const dns = {
    ...(strings(opts.dnsServer).length ? { nameservers: strings(opts.dnsServer) } : {}),
    ...(strings(opts.dnsSearch).length ? { search: strings(opts.dnsSearch) } : {}),
    ...(optString(opts.dnsDomain) ? { domain: optString(opts.dnsDomain) } : {}),
    ...(strings(opts.dnsOption).length ? { options: strings(opts.dnsOption) } : {}),
  };
  const quota = opts.quota === 'none' ? null : optInt(opts.quota, '--quota');
  return {
    ...(optString(opts.gateway) ? { gateway: optString(opts.gateway) } : {}),
    ...(strings(opts.range).length ? { ranges: strings(opts.range) } : {}),
    ...(strings(opts.exclude).length ? { exclude: strings(opts.exclude) } : {}),
    ...(routes(opts.route) ? { routes: routes(opts.route) } : {}),
    ...(Object.keys(dns).length ? { dns } : {}),
    ...(strings(opts.tenant).length ? { tenants: strings(opts.tenant) } : {}),
    ...(quota !== undefined ? { quota } : {}),
    ...(opts.sticky !== undefined ? { sticky: opts.sticky !== false && opts.sticky !== 'false' } : {}),
  };
}

function withSubnetOptions(c: ReturnType<CAC['command']>): ReturnType<CAC['command']> {
  return c
    .option('--gateway <ip>', 'gateway address, or "none" (default: the first usable address)')
    .option('--range <range>', 'allocate dynamically only from A-B or a prefix (repeatable)', { type: [String] })
    .option('--exclude <ip>', 'never hand out this address, range A-B or prefix (repeatable)', { type: [String] })
    .option('--route <dst[@gw]>', 'route given to containers (repeatable; default: default route via the gateway)', { type: [String] })
    .option('--dns-server <ip>', 'DNS nameserver for containers (repeatable)', { type: [String] })
    .option('--dns-search <domain>', 'DNS search domain (repeatable)', { type: [String] })
    .option('--dns-domain <domain>', 'DNS domain')
    .option('--dns-option <opt>', 'resolver option, e.g. ndots:2 (repeatable)', { type: [String] })
    .option('--tenant <name>', 'only this tenant (K8S namespace) may allocate here (repeatable)', { type: [String] })
    .option('--quota <n>', 'maximum addresses in use (bound or held); "none" removes it')
    .option('--sticky', 'an identity keeps the first address it got, across container removal, until released')
    .option(...SOCKET_OPT);
}

export function human(u: SubnetUsage): string {
  const s = u.subnet;
  const lines = [
    `Name:      ${s.name}`,
    `CIDR:      ${s.cidr}`,
    `Gateway:   ${s.gateway ?? 'none'}`,
    `Ranges:    ${s.ranges.length ? s.ranges.map((r) => (r.start === r.end ? r.start : `${r.start}-${r.end}`)).join(', ') : 'whole subnet'}`,
    `Excluded:  ${s.exclude.map((r) => (r.start === r.end ? r.start : `${r.start}-${r.end}`)).join(', ') || '-'}`,
    `Routes:    ${s.routes.map((r) => `${r.dst}${r.gw ? ` via ${r.gw}` : ''}`).join(', ') || '-'}`,
    `DNS:       ${[...s.dns.nameservers, ...s.dns.search.map((x) => `search ${x}`), ...(s.dns.domain ? [`domain ${s.dns.domain}`] : [])].join(', ') || '-'}`,
    `Tenants:   ${s.tenants.join(', ') || 'any'}`,
    `Quota:     ${s.quota ?? 'none'}`,
    `Sticky:    ${s.sticky ? 'yes' : 'no'}`,
    `In use:    ${u.inUse} (${u.bound} bound, ${u.held} held), ${u.reserved} reserved, ${u.capacity} free`,
  ];
  return lines.join('\n');
}

export function registerSubnet(cli: CAC, ctx: Ctx): void {
  withSubnetOptions(cli.command('create <name>', 'Create a managed subnet').option('--cidr <prefix>', 'the subnet prefix, e.g. 10.40.0.0/24 or fd00:40::/64'))
    .example('weft subnet create db --cidr 10.40.0.0/24 --exclude 10.40.0.2 --quota 50 --sticky --tenant prod')
    .action(async (name: string, opts: Record<string, unknown>) => {
      const cidr = optString(opts.cidr);
      if (!cidr) throw new UsageError('--cidr is required, e.g. --cidr 10.40.0.0/24');
      const s = await ctx.api(opts).post<{ name: string; cidr: string; gateway?: string }>('/v1/subnets', { name: String(name), cidr, ...body(opts) });
      ctx.io.out(`subnet ${s.name} created: ${s.cidr}, gateway ${s.gateway ?? 'none'}`);
    });
  cli.command('list', 'List subnets with their usage').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .action(async (opts: Record<string, unknown>) => {
      const list = await ctx.api(opts).get<SubnetUsage[]>('/v1/subnets');
      emit(ctx.io, ctx.format(opts), list, () => table(['NAME', 'CIDR', 'GATEWAY', 'IN-USE', 'HELD', 'RESERVED', 'FREE', 'QUOTA', 'STICKY', 'TENANTS'],
        list.map((u) => [u.subnet.name, u.subnet.cidr, u.subnet.gateway, u.inUse, u.held, u.reserved, u.capacity, u.subnet.quota, u.subnet.sticky ? 'yes' : 'no', u.subnet.tenants.join(',') || 'any'])));
    });
  cli.command('show <name>', 'Show one subnet').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .action(async (name: string, opts: Record<string, unknown>) => {
      const u = await ctx.api(opts).get<SubnetUsage>(`/v1/subnets/${encodeURIComponent(String(name))}`);
      emit(ctx.io, ctx.format(opts), u, () => human(u));
    });
  withSubnetOptions(cli.command('update <name>', 'Change a subnet (gateway, ranges, exclusions, routes, DNS, tenants, quota, sticky)'))
    .action(async (name: string, opts: Record<string, unknown>) => {
      const b = body(opts);
      if (Object.keys(b).length === 0) throw new UsageError('nothing to update: give at least one option (see --help)');
      const s = await ctx.api(opts).patch<{ name: string }>(`/v1/subnets/${encodeURIComponent(String(name))}`, b);
      ctx.io.out(`subnet ${s.name} updated`);
    });
  cli.command('delete <name>', 'Delete a subnet that has no address in use').option(...SOCKET_OPT)
    .action(async (name: string, opts: Record<string, unknown>) => {
      await ctx.api(opts).delete(`/v1/subnets/${encodeURIComponent(String(name))}`);
      ctx.io.out(`subnet ${String(name)} deleted`);
    });
}
