/**
 * Validation of operator input for subnets, pools and reservations: shape by
 * valibot, meaning (prefixes, ranges, overlaps) by the IP helpers. Pure: the
 * service passes in the existing objects it must be checked against.
 */
import * as v from 'valibot';
import { formatIp, parseIp, tryParseIp } from '../ip/addr.js';
import { cidrContains, cidrLast, defaultGateway, formatCidr, parseCidr, tryParseCidr, tryParseIpWithPrefix, usableRange, cidrOverlaps } from '../ip/cidr.js';
import { type Interval, formatInterval, intersect, intervalsOverlap, normalize, subtract, tryParseInterval, totalSize, intervalsContain } from '../ip/ranges.js';
import { BadRequestError, ConflictError } from '../errors.js';
import { type AddressRange, type Pool, type Subnet, NAME_RE, type RouteRecord, parseOwner } from './model.js';

const Name = v.pipe(v.string(), v.regex(NAME_RE, 'must be 1-63 lower-case letters, digits, "-", "_" or "." and start and end with a letter or digit'));
const StrList = v.array(v.string());
const Quota = v.pipe(v.number(), v.integer(), v.minValue(1));
const TenantList = v.array(Name);

export const SubnetInputSchema = v.strictObject({
  name: Name,
  cidr: v.string(),
  gateway: v.optional(v.string()), // an address, or "none"
  ranges: v.optional(StrList),
  exclude: v.optional(StrList),
  routes: v.optional(v.array(v.strictObject({ dst: v.string(), gw: v.optional(v.string()) }))),
  dns: v.optional(v.strictObject({
    nameservers: v.optional(StrList),
    search: v.optional(StrList),
    domain: v.optional(v.string()),
    options: v.optional(StrList),
  })),
  tenants: v.optional(TenantList),
  quota: v.optional(v.nullable(Quota)),
  sticky: v.optional(v.boolean()),
});
export type SubnetInput = v.InferOutput<typeof SubnetInputSchema>;

export const SubnetUpdateSchema = v.strictObject({
  gateway: v.optional(v.string()),
  ranges: v.optional(StrList),
  exclude: v.optional(StrList),
  routes: v.optional(v.array(v.strictObject({ dst: v.string(), gw: v.optional(v.string()) }))),
  dns: v.optional(v.strictObject({ nameservers: v.optional(StrList), search: v.optional(StrList), domain: v.optional(v.string()), options: v.optional(StrList) })),
  tenants: v.optional(TenantList),
  quota: v.optional(v.nullable(Quota)),
  sticky: v.optional(v.boolean()),
});
export type SubnetUpdate = v.InferOutput<typeof SubnetUpdateSchema>;

export const PoolInputSchema = v.strictObject({
  name: Name,
  subnet: Name,
  addresses: v.pipe(StrList, v.minLength(1, 'a pool needs at least one address')),
  match: v.optional(v.strictObject({ namespace: v.optional(v.string()), name: v.optional(v.string()) })),
  tenants: v.optional(TenantList),
  quota: v.optional(v.nullable(Quota)),
  sticky: v.optional(v.boolean()),
});
export type PoolInput = v.InferOutput<typeof PoolInputSchema>;

export const ReserveInputSchema = v.strictObject({ subnet: Name, ip: v.string(), owner: v.string() });

/** Runs a valibot schema and turns its first issue into a BadRequestError naming the field. */
export function parseShape<S extends v.GenericSchema>(schema: S, input: unknown, what: string): v.InferOutput<S> {
  const r = v.safeParse(schema, input);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const path = issue.path?.map((p) => String(p.key)).join('.') ?? '';
  // valibot reports both an unknown key (expected `never`) and a missing
  // required key (expected `"key"`, received `undefined`) as object issues.
  const objectIssue = issue.type === 'strict_object' || issue.type === 'object';
  const msg = objectIssue && issue.expected === 'never'
    ? `unknown field "${path}" in ${what}`
    : objectIssue && issue.received === 'undefined' && path
      ? `${what} field "${path}" is required`
      : `${what}${path ? ` field "${path}"` : ''}: ${issue.message}`;
  throw new BadRequestError(msg);
}

function parseList(field: string, list: readonly string[] | undefined, family: 4 | 6, within: Interval): Interval[] {
  const out: Interval[] = [];
  for (const s of list ?? []) {
    const p = tryParseInterval(s, family);
    if (!p) throw new BadRequestError(`${field}: "${s}" is not an IPv${family} address, range (A-B) or prefix`);
    if (p.interval.first < within.first || p.interval.last > within.last) throw new BadRequestError(`${field}: "${s}" is outside the subnet`);
    out.push(p.interval);
  }
  return normalize(out);
}

function toRanges(family: 4 | 6, list: readonly Interval[]): AddressRange[] {
  return list.map((i) => ({ start: formatIp({ family, value: i.first }), end: formatIp({ family, value: i.last }) }));
}

export function rangesToIntervals(list: readonly AddressRange[]): Interval[] {
  return normalize(list.map((r) => ({ first: parseIp(r.start).value, last: parseIp(r.end).value })));
}

function validRoutes(routes: readonly { dst: string; gw?: string | undefined }[], family: 4 | 6): RouteRecord[] {
  return routes.map((r) => {
    const dst = tryParseCidr(r.dst);
    if (!dst || dst.family !== family) throw new BadRequestError(`routes: "${r.dst}" is not an IPv${family} prefix`);
    if (r.gw !== undefined) {
      const gw = tryParseIp(r.gw);
      if (!gw || gw.family !== family) throw new BadRequestError(`routes: gateway "${r.gw}" is not an IPv${family} address`);
      return { dst: formatCidr(dst), gw: formatIp(gw) };
    }
    return { dst: formatCidr(dst) };
  });
}

/** Builds a Subnet from validated input; checks it against existing subnets for name and prefix conflicts. */
export function buildSubnet(raw: unknown, existing: readonly Subnet[], now: string): Subnet {
  const input = parseShape(SubnetInputSchema, raw, 'subnet');
  if (existing.some((s) => s.name === input.name)) throw new ConflictError(`subnet "${input.name}" already exists`, { hint: 'use `weft subnet update` to change it' });
  const cidr = tryParseCidr(input.cidr, true);
  if (!cidr) {
    const loose = tryParseCidr(input.cidr);
    throw new BadRequestError(loose ? `cidr "${input.cidr}" has host bits set; did you mean ${formatCidr(loose)}?` : `cidr "${input.cidr}" is not a prefix like 10.40.0.0/24 or fd00:40::/64`);
  }
  for (const s of existing) {
    const other = parseCidr(s.cidr);
    if (cidrOverlaps(cidr, other)) throw new ConflictError(`subnet ${formatCidr(cidr)} overlaps subnet "${s.name}" (${s.cidr})`, { hint: 'choose a prefix that does not overlap, or delete the other subnet' });
  }
  return completeSubnet({ ...input, cidr: formatCidr(cidr), createdAt: now });
}

/** Applies an update to a subnet; the caller checks addresses in use still fit. */
export function updateSubnet(current: Subnet, raw: unknown): Subnet {
  const u = parseShape(SubnetUpdateSchema, raw, 'subnet update');
  const merged = {
    name: current.name,
    cidr: current.cidr,
    gateway: u.gateway ?? current.gateway ?? 'none',
    ranges: u.ranges ?? current.ranges.map((r) => `${r.start}-${r.end}`),
    exclude: u.exclude ?? current.exclude.map((r) => `${r.start}-${r.end}`),
    routes: u.routes ?? current.routes.map((r) => ({ ...r })),
    dns: u.dns ?? { ...current.dns, nameservers: [...current.dns.nameservers], search: [...current.dns.search], options: [...current.dns.options] },
    tenants: u.tenants ?? [...current.tenants],
    quota: u.quota === undefined ? current.quota : u.quota,
    sticky: u.sticky ?? current.sticky,
    createdAt: current.createdAt,
  };
  return completeSubnet(merged);
}

function completeSubnet(input: Omit<SubnetInput, 'quota'> & { quota?: number | null | undefined; createdAt: string }): Subnet {
  const cidr = parseCidr(input.cidr, true);
  const family = cidr.family;
  const usable = usableRange(cidr);
  if (usable.first > usable.last) throw new BadRequestError(`subnet ${input.cidr} has no usable addresses`);
  const whole: Interval = { first: cidr.base, last: cidrLast(cidr) };
  let gateway: string | undefined;
  if (input.gateway === undefined) gateway = formatIp(defaultGateway(cidr));
  else if (input.gateway !== 'none') {
    const gw = tryParseIp(input.gateway);
    if (!gw || !cidrContains(cidr, gw)) throw new BadRequestError(`gateway "${input.gateway}" is not an address inside ${input.cidr}`);
    if (gw.value < usable.first || gw.value > usable.last) throw new BadRequestError(`gateway "${input.gateway}" is the network or broadcast address of ${input.cidr}`);
    gateway = formatIp(gw);
  }
  const usableI: Interval = { first: usable.first, last: usable.last };
  const ranges = parseList('ranges', input.ranges, family, usableI);
  const exclude = parseList('exclude', input.exclude, family, whole);
  const pickable = subtract(ranges.length ? ranges : [usableI], exclude);
  const left = gateway ? subtract(pickable, [{ first: parseIp(gateway).value, last: parseIp(gateway).value }]) : pickable;
  if (totalSize(left) === 0n) throw new BadRequestError(`subnet ${input.cidr} leaves no address to allocate after ranges, exclusions and the gateway`);
  const defaultDst = family === 4 ? '0.0.0.0/0' : '::/0';
  const routes = input.routes ? validRoutes(input.routes, family) : gateway ? [{ dst: defaultDst }] : [];
  const dns = input.dns ?? {};
  for (const ns of dns.nameservers ?? []) if (!tryParseIp(ns)) throw new BadRequestError(`dns.nameservers: "${ns}" is not an IP address`);
  return {
    name: input.name,
    cidr: formatCidr(cidr),
    ...(gateway ? { gateway } : {}),
    ranges: toRanges(family, ranges),
    exclude: toRanges(family, exclude),
    routes,
    dns: { nameservers: dns.nameservers ?? [], search: dns.search ?? [], ...(dns.domain ? { domain: dns.domain } : {}), options: dns.options ?? [] },
    tenants: input.tenants ?? [],
    ...(input.quota != null ? { quota: input.quota } : {}),
    sticky: input.sticky ?? false,
    createdAt: input.createdAt,
  };
}

/** The addresses dynamic allocation may pick from the subnet's general space (outside every pool). */
export function generalSpace(subnet: Subnet, pools: readonly Pool[]): Interval[] {
  const cidr = parseCidr(subnet.cidr);
  const u = usableRange(cidr);
  const base = subnet.ranges.length ? rangesToIntervals(subnet.ranges) : [{ first: u.first, last: u.last }];
  return subtract(base, blocked(subnet, pools));
}

/** The addresses dynamic allocation may pick from inside a pool. */
export function poolSpace(subnet: Subnet, pool: Pool): Interval[] {
  const u = usableRange(parseCidr(subnet.cidr));
  return subtract(intersect(rangesToIntervals(pool.addresses), [{ first: u.first, last: u.last }]), blocked(subnet, []));
}

function blocked(subnet: Subnet, pools: readonly Pool[]): Interval[] {
  const out = [...rangesToIntervals(subnet.exclude)];
  if (subnet.gateway) { const g = parseIp(subnet.gateway).value; out.push({ first: g, last: g }); }
  for (const p of pools) out.push(...rangesToIntervals(p.addresses));
  return normalize(out);
}

export function buildPool(raw: unknown, subnet: Subnet | undefined, existingPools: readonly Pool[], now: string): Pool {
  const input = parseShape(PoolInputSchema, raw, 'pool');
  if (!subnet) throw new BadRequestError(`pool "${input.name}": subnet "${input.subnet}" does not exist`, { hint: 'create it first with `weft subnet create`' });
  if (existingPools.some((p) => p.name === input.name)) throw new ConflictError(`pool "${input.name}" already exists`);
  const cidr = parseCidr(subnet.cidr);
  const whole: Interval = { first: cidr.base, last: cidrLast(cidr) };
  const addrs = parseList('addresses', input.addresses, cidr.family, whole);
  if (subnet.gateway && intervalsContain(addrs, parseIp(subnet.gateway).value)) throw new BadRequestError(`pool "${input.name}" contains the gateway ${subnet.gateway}`);
  for (const p of existingPools.filter((p) => p.subnet === subnet.name)) {
    if (intervalsOverlap(addrs, rangesToIntervals(p.addresses))) throw new ConflictError(`pool "${input.name}" overlaps pool "${p.name}" in subnet "${subnet.name}"`);
  }
  if (input.match?.name !== undefined && !/^[A-Za-z0-9*?._-]{1,253}$/.test(input.match.name)) throw new BadRequestError(`pool match name "${input.match.name}" must be a name or a glob with * and ?`);
  const pool: Pool = {
    name: input.name,
    subnet: subnet.name,
    addresses: toRanges(cidr.family, addrs),
    ...(input.match && (input.match.namespace || input.match.name) ? { match: { ...(input.match.namespace ? { namespace: input.match.namespace } : {}), ...(input.match.name ? { name: input.match.name } : {}) } } : {}),
    tenants: input.tenants ?? [],
    ...(input.quota != null ? { quota: input.quota } : {}),
    sticky: input.sticky ?? subnet.sticky,
    createdAt: now,
  };
  if (totalSize(poolSpace(subnet, pool)) === 0n) throw new BadRequestError(`pool "${input.name}" has no allocatable address (all excluded, gateway or network/broadcast)`);
  return pool;
}

export function parseReservation(raw: unknown, subnet: Subnet | undefined): { subnet: string; ip: string; owner: string } {
  const input = parseShape(ReserveInputSchema, raw, 'reservation');
  if (!subnet) throw new BadRequestError(`subnet "${input.subnet}" does not exist`, { hint: 'list subnets with `weft subnet list`' });
  const ip = tryParseIp(input.ip);
  const cidr = parseCidr(subnet.cidr);
  if (!ip) throw new BadRequestError(`"${input.ip}" is not an IP address`);
  if (!cidrContains(cidr, ip)) throw new BadRequestError(`${formatIp(ip)} is outside subnet "${subnet.name}" (${subnet.cidr})`);
  const u = usableRange(cidr);
  if (ip.value < u.first || ip.value > u.last) throw new BadRequestError(`${formatIp(ip)} is the network or broadcast address of ${subnet.cidr}`);
  if (subnet.gateway && formatIp(ip) === subnet.gateway) throw new BadRequestError(`${formatIp(ip)} is the gateway of subnet "${subnet.name}"`);
  if (intervalsContain(rangesToIntervals(subnet.exclude), ip.value)) throw new BadRequestError(`${formatIp(ip)} is excluded in subnet "${subnet.name}"`);
  if (!parseOwner(input.owner)) throw new BadRequestError(`owner "${input.owner}" must be NAMESPACE/NAME, e.g. default/etcd-0`);
  return { subnet: subnet.name, ip: formatIp(ip), owner: input.owner };
}

export function describeIntervals(family: 4 | 6, list: readonly Interval[]): string[] {
  return list.map((i) => formatInterval(family, i));
}

export { tryParseIpWithPrefix };
