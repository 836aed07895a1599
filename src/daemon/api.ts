/**
 * The versioned HTTP/JSON API the CLI, the CNI plugins and (later) the Docker
 * driver use, served on a unix socket. Routes map 1:1 onto service calls; see
 * docs/api.md for the reference.
 */
import type { CniRequest } from '../core/cni/protocol.js';
import { CNI_ENDPOINT, CNI_RAW_ENDPOINT } from '../core/cni/protocol.js';
import { BadRequestError } from '../core/errors.js';
import type { IpamService } from './ipam-service.js';
import type { Metrics } from './metrics.js';
import { type Reply, Router } from './http-router.js';
import { serveRawCni } from './cni-raw.js';

export interface CniHandler {
  handle(req: CniRequest): Promise<unknown>;
}

export interface StatusSource {
  status(): Promise<unknown>;
  attachments(): unknown[];
}

/** The cluster side of the API; absent when the router runs without a mesh. */
export interface ClusterApi {
  mesh(): unknown;
  connect(address: string): unknown;
  forget(address: string): unknown;
  hosts(): unknown;
  ring(): unknown;
  overlay(): unknown;
  rmpeer(name: string, force: boolean): unknown;
  reset(): Promise<unknown>;
  acceptRing(): Promise<unknown>;
}

export const API_VERSION = 'v1';

function addressBody(body: unknown): string {
  const b = body as { address?: unknown } | undefined;
  if (typeof b?.address !== 'string' || b.address === '') throw new BadRequestError('expected {"address": "IP[:PORT]"}');
  return b.address;
}

export function buildRouter(deps: { ipam: IpamService; cni: CniHandler; metrics: Metrics; status: StatusSource; reconcile?: () => Promise<unknown>; cluster?: ClusterApi }): Router {
  const { ipam, cni, metrics, status, reconcile, cluster } = deps;
  const r = new Router();
  r.add('GET', '/v1/status', async () => ({ body: await status.status() }));
  r.add('GET', '/v1/attachments', () => ({ body: status.attachments() }));
  // One reconcile pass now (the periodic one, on demand); answers with its report.
  if (reconcile) r.add('POST', '/v1/reconcile', async () => ({ body: await reconcile() }));
  r.add('GET', '/metrics', async () => ({ text: await metrics.registry.metrics(), contentType: metrics.registry.contentType }));

  const cniRoute = async (body: unknown): Promise<Reply> => ({ body: { result: await cni.handle(body as CniRequest) } });
  r.add('POST', CNI_ENDPOINT, (q) => cniRoute(q.body));
  // The same, for the sh launcher: stdin and CNI_* in, what to print and the exit status out (cni-raw.ts).
  r.addRaw('POST', CNI_RAW_ENDPOINT, (q) => serveRawCni(q.headers, q.body as Buffer, cniRoute, q.log));

  r.add('GET', '/v1/subnets', () => ({ body: ipam.listSubnets() }));
  r.add('POST', '/v1/subnets', (q) => ({ status: 201, body: ipam.createSubnet(q.body) }));
  r.add('GET', '/v1/subnets/:name', (q) => ({ body: ipam.subnetUsage(q.params.name!) }));
  r.add('PATCH', '/v1/subnets/:name', (q) => ({ body: ipam.updateSubnet(q.params.name!, q.body) }));
  r.add('DELETE', '/v1/subnets/:name', (q) => { ipam.deleteSubnet(q.params.name!); return { body: { deleted: q.params.name } }; });

  r.add('GET', '/v1/pools', (q) => ({ body: ipam.listPools(q.query.get('subnet') ?? undefined) }));
  r.add('POST', '/v1/pools', (q) => ({ status: 201, body: ipam.createPool(q.body) }));
  r.add('DELETE', '/v1/pools/:name', (q) => { ipam.deletePool(q.params.name!); return { body: { deleted: q.params.name } }; });

  r.add('GET', '/v1/ips', (q) => ({ body: ipam.listAddresses(q.query.get('subnet') ?? undefined) }));
  r.add('POST', '/v1/reservations', (q) => ({ status: 201, body: ipam.reserve(q.body) }));
  r.add('POST', '/v1/ips/release', (q) => {
    const b = q.body as { subnet?: unknown; ip?: unknown } | undefined;
    if (typeof b?.subnet !== 'string' || typeof b.ip !== 'string') throw new BadRequestError('release needs {"subnet": NAME, "ip": ADDRESS}');
    return { body: ipam.release(b.subnet, b.ip) };
  });

  if (cluster) {
    r.add('GET', '/v1/mesh', () => ({ body: cluster.mesh() }));
    r.add('POST', '/v1/mesh/connect', (q) => ({ body: cluster.connect(addressBody(q.body)) }));
    r.add('POST', '/v1/mesh/forget', (q) => ({ body: cluster.forget(addressBody(q.body)) }));
    r.add('GET', '/v1/cluster/hosts', () => ({ body: cluster.hosts() }));
    r.add('GET', '/v1/ipam/ring', () => ({ body: cluster.ring() }));
    r.add('GET', '/v1/overlay', () => ({ body: cluster.overlay() }));
    r.add('POST', '/v1/ipam/rmpeer', (q) => {
      const b = q.body as { name?: unknown; force?: unknown } | undefined;
      if (typeof b?.name !== 'string' || b.name === '') throw new BadRequestError('expected {"name": PEER, "force"?: boolean}');
      if (b.force !== undefined && typeof b.force !== 'boolean') throw new BadRequestError('"force" must be a boolean');
      return { body: cluster.rmpeer(b.name, b.force === true) };
    });
    r.add('POST', '/v1/ipam/reset', async () => ({ body: await cluster.reset() }));
    r.add('POST', '/v1/ipam/accept-ring', async () => ({ body: await cluster.acceptRing() }));
  }
  return r;
}
