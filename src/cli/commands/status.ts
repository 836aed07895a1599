import type { CAC } from 'cac';
import { type Ctx, OUTPUT_OPT, SOCKET_OPT } from '../context.js';
import { emit, table } from '../output.js';
import type { RouterStatus } from '../../daemon/status.js';
import type { ClusterHost } from '../../core/cluster/state.js';
import type { MeshStatus } from '../../core/mesh/index.js';
import type { RingNodeStatus } from '../../core/ipam-ring/index.js';
import { UsageError } from '../output.js';

type MeshView = MeshStatus & { incarnation: number; underlay: { ip: string; dev: string; mtu: number } | null };

const VIEWS = ['peers', 'connections', 'targets', 'ipam'] as const;

function ago(now: number, t: number | undefined): string {
  return t === undefined ? '' : `${Math.max(0, Math.round((now - t) / 1000))} s`;
}

function peersTable(m: MeshView, hosts: readonly ClusterHost[]): string {
  const nick = new Map(m.peers.map((p) => [p.peer, p.nickname]));
  const byPeer = new Map(hosts.map((h) => [h.peer, h]));
  const rows = [[m.peer, `${m.nickname} (this host)`, m.underlay?.ip ?? '-', 'self', '', String(byPeer.get(m.peer)?.endpoints.length ?? 0)],
    ...m.peers.map((p) => [p.peer, p.nickname, byPeer.get(p.peer)?.underlay ?? p.address ?? '-', !p.reachable ? `unreachable${p.unreachableSince !== undefined ? ` for ${ago(Date.now(), p.unreachableSince)}` : ''}` : p.direct ? 'direct' : `relayed via ${nick.get(p.nextHop ?? '') ?? p.nextHop}`,
      p.connections.map((c) => nick.get(c) ?? (c === m.peer ? m.nickname : c)).join(','), String(byPeer.get(p.peer)?.endpoints.length ?? 0)])];
  return table(['PEER', 'NAME', 'UNDERLAY', 'PATH', 'CONNECTED TO', 'CONTAINERS'], rows);
}

function connectionsTable(m: MeshView, hosts: readonly ClusterHost[]): string {
  const byPeer = new Map(hosts.map((h) => [h.peer, h]));
  const rows: (string | undefined)[][] = m.connections.map((c) => [c.nickname ?? '?', c.peer ?? '?', c.address ?? '', c.outbound ? 'outbound' : 'inbound', c.state, 'direct', c.establishedAt !== undefined ? ago(Date.now(), c.establishedAt) : '']);
  // Hosts we reach only through another router: their traffic is relayed (control and data plane alike).
  for (const p of m.peers) if (p.reachable && !p.direct) rows.push([p.nickname, p.peer, byPeer.get(p.peer)?.underlay ?? '', '', 'established', `relayed via ${m.peers.find((x) => x.peer === p.nextHop)?.nickname ?? p.nextHop}`, '']);
  return table(['NAME', 'PEER', 'ADDRESS', 'DIRECTION', 'STATE', 'PATH', 'UP FOR'], rows);
}

function ipamText(r: RingNodeStatus): string {
  const explain: Record<string, string> = {
    'ready': 'allocating from its own share', 'waiting-for-consensus': 'waiting for the founding peers to agree on the first split (starts at the first ADD)',
    'observer': 'observer: owns nothing until it asks a peer for space', 'at-risk': 'AT RISK: the peers heard recently own at most half of the range; allocation is paused',
    'conflict': 'CONFLICT: a ring of another genesis was refused (it would take addresses in use here)', 'left': 'left the ring (weft reset); restart to rejoin',
  };
  const lines = [
    `IPAM ring ${r.range}: ${explain[r.state] ?? r.state}`,
    `  This peer:  ${r.me} (${r.nickname}), --ipalloc-init ${r.init}${r.genesis ? `, genesis ${r.genesis.id} (${r.genesis.founders} founders)` : ''}`,
    `  Owned:      ${r.ownedSize} addresses, ${r.free} free${r.reachability ? `; peers heard recently own ${r.reachability.reachable} of ${r.reachability.total}` : ''}`,
  ];
  for (const o of r.owned) lines.push(`              ${o.range} (${o.size} addresses, ${o.free} free${o.inherited ? ', inherited' : ''})`);
  lines.push('', table(['RING PEER', 'LIVE', 'HEARTBEAT', 'SILENT FOR', 'OWNS', 'FREE', 'RETIRED'], r.peers.map((p) => [
    `${p.id}${p.self ? ' (this host)' : ''}`, p.live ? (p.fresh ? 'yes' : 'stale') : 'no', p.heartbeat, p.silentForMs === null ? '' : `${Math.round(p.silentForMs / 1000)} s`, p.owned, p.free,
    p.retired ? `${p.retired.reason} by ${p.retired.by}, heir ${p.retired.heir}` : ''])));
  for (const v of r.votes) lines.push(`  Reclaim vote: ${v.suspect} (silent since heartbeat ${v.atHeartbeat}) by ${v.voters.join(', ')}: ${v.quorum ? `quorum, heir ${v.heir}` : 'no quorum yet'}`);
  if (r.orphans.length) lines.push(`  Orphaned spans (adopted shortly): ${r.orphans.join(', ')}`);
  if (r.consensus && !r.consensus.decided) lines.push(`  Consensus: ${r.consensus.rows} of ${r.consensus.n} founders heard`);
  for (const p of r.pending) lines.push(`  Pending ${p.kind} request to ${p.peer} (${Math.round(p.dueInMs / 1000)} s left)`);
  if (r.conflict) lines.push(`  Conflict: ring ${r.conflict.theirs.id} from ${r.conflict.from ?? '?'} refused for ${Math.round(r.conflict.forMs / 1000)} s; addresses in use here it would take: ${r.conflict.busy.join(', ')}`);
  if (r.lastError) lines.push(`  Last error: ${r.lastError}`);
  return lines.join('\n');
}

function targetsTable(m: MeshView): string {
  return table(['ADDRESS', 'KIND', 'STATE', 'FAILURES', 'NEXT ATTEMPT', 'LAST ERROR'],
    m.targets.map((t) => [t.address, t.kind, t.state, t.failures, t.state === 'connected' ? '' : `in ${Math.max(0, Math.round((t.nextAttemptAt - Date.now()) / 1000))} s`, t.lastError ?? '']));
}
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
    ...(s.vethProgramming ? [`  Veth setup:   ${s.vethProgramming.mode === 'netlink' ? `in process (rtnetlink${s.vethProgramming.prepared ? ', pairs made on the thread pool during allocation' : ''})` : 'ip(8) processes (fallback; see the warning)'}`] : []),
    `  Conntrack:    ${s.conntrackBypass === false ? 'tracks all container traffic (--no-conntrack-bypass)' : 'bypassed for traffic inside a subnet and for VXLAN (never NATed)'}`,
    `  Containers:   ${s.attachments.ready} attached${s.attachments.creating ? `, ${s.attachments.creating} being attached` : ''}`,
    `  Subnets:      ${s.subnets.map((x) => `${x.name} ${x.cidr} (${x.inUse} in use, ${x.free} free)`).join('; ') || 'none'}`,
    `  Last reconcile: ${s.lastReconcile ? `${s.lastReconcile.at}: ${s.lastReconcile.summary}` : 'not yet'}`,
  ];
  if (s.cluster) {
    const c = s.cluster;
    lines.push(`  Peer:         ${c.peer} (${c.nickname}), listening on ${c.listen}`);
    lines.push(`  Underlay:     ${c.underlay ? `${c.underlay.ip} on ${c.underlay.dev} (MTU ${c.underlay.mtu})` : 'none'}`);
    lines.push(`  Peers:        ${c.peers.known} known, ${c.peers.reachable} reachable, ${c.peers.connected} connections, ${c.targets} targets (weft status peers|connections|targets)`);
    if (c.overlay) lines.push(`  Overlay:      ${c.overlay.enabled ? `VXLAN to ${c.overlay.peers} peers (${c.overlay.relayed} relayed), ${c.overlay.endpoints} remote containers${c.overlay.lastSync ? `, last applied ${c.overlay.lastSync}` : ''}${c.overlay.pathMtuFailures ? `, ${c.overlay.pathMtuFailures} path MTU black holes` : ''}${c.overlay.relayOnly?.length ? `, relaying for others: ${c.overlay.relayOnly.join(', ')}` : ''}` : `disabled: ${c.overlay.reason}`}`);
    if (c.ipam) lines.push(`  IPAM ring:    ${c.ipam.state}, owns ${c.ipam.owned} addresses (${c.ipam.free} free) (weft status ipam)`);
  }
  for (const w of s.warnings) lines.push(`  Warning: ${w}`);
  return lines.join('\n');
}

export function registerStatus(cli: CAC, ctx: Ctx): void {
  cli.command('status [view]', `Explain the router's state: readiness, kernel features, subnets, containers, peers, warnings; VIEW: ${VIEWS.join(', ')}`).option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .example('weft status peers -o json')
    .action(async (view: string | undefined, opts: Record<string, unknown>) => {
      const format = ctx.format(opts);
      if (view === undefined) {
        const s = await ctx.api(opts).get<RouterStatus>('/v1/status');
        emit(ctx.io, format, s, () => explain(s));
        return;
      }
      if (!(VIEWS as readonly string[]).includes(view)) throw new UsageError(`unknown status view "${view}": use one of ${VIEWS.join(', ')}`);
      if (view === 'ipam') {
        const r = await ctx.api(opts).get<RingNodeStatus>('/v1/ipam/ring');
        emit(ctx.io, format, r, () => ipamText(r));
        return;
      }
      const api = ctx.api(opts);
      const [m, hosts] = await Promise.all([api.get<MeshView>('/v1/mesh'), api.get<ClusterHost[]>('/v1/cluster/hosts')]);
      if (view === 'peers') emit(ctx.io, format, hosts.map((h) => ({ ...h, endpoints: h.endpoints.length, ...(h.self ? {} : { topology: m.peers.find((p) => p.peer === h.peer) }) })), () => peersTable(m, hosts));
      else if (view === 'connections') emit(ctx.io, format, { connections: m.connections, relayed: m.peers.filter((p) => p.reachable && !p.direct).map((p) => ({ peer: p.peer, nickname: p.nickname, via: p.nextHop })) }, () => connectionsTable(m, hosts));
      else emit(ctx.io, format, m.targets, () => targetsTable(m));
    });
  cli.command('ps', 'List the container interfaces weft attached on this host (--cluster: on every host)').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .option('--cluster', 'list the containers of every host in the cluster, as announced through gossip')
    .action(async (opts: Record<string, unknown>) => {
      if (opts.cluster) {
        const hosts = await ctx.api(opts).get<ClusterHost[]>('/v1/cluster/hosts');
        const rows = hosts.flatMap((h) => h.endpoints.map((e) => ({ host: h.nickname, peer: h.peer, local: h.self, reachable: h.reachable, ...e })));
        emit(ctx.io, ctx.format(opts), rows, () => table(['HOST', 'CONTAINER', 'IFNAME', 'NETWORK', 'IDENTITY', 'MAC', 'ADDRESSES'],
          rows.map((r) => [`${r.host}${r.local ? ' (this host)' : r.reachable ? '' : ' (unreachable)'}`, r.containerId.slice(0, 12), r.ifname, r.network, r.identity, r.mac, r.ips.join(',')])));
        return;
      }
      const list = await ctx.api(opts).get<Attachment[]>('/v1/attachments');
      emit(ctx.io, ctx.format(opts), list, () => table(['CONTAINER', 'IFNAME', 'NETWORK', 'MODE', 'IDENTITY', 'MAC', 'ADDRESSES', 'STATE'],
        list.map((a) => [a.containerId.slice(0, 12), a.ifname, a.network, a.mode, a.identity, a.mac, a.ips.map((i) => i.address).join(','), a.state])));
    });
}
