/**
 * The Store on LMDB (lmdb-js): a memory-mapped B+tree with serialized,
 * copy-on-write write transactions. A commit is durable when it returns
 * (overlappingSync off), a reader never sees half a transaction, and a
 * process killed mid-transaction leaves the previous committed state — the
 * properties the allocator relies on. See docs/design.md "Why LMDB".
 */
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { Attachment } from '../../core/ipam/attachment.js';
import type { Allocation, Pool, Reservation, Subnet } from '../../core/ipam/model.js';
import { ipKey, parseIp } from '../../core/ip/addr.js';
import { InternalError } from '../../core/errors.js';
import { SCHEMA_VERSION, type Store, type StoreTx } from './store.js';

type Any = Database<unknown, string>;

function allocKey(subnet: string, ip: string): string {
  return `${subnet}/${ipKey(parseIp(ip))}`;
}

function identityKeyOf(a: Allocation): string {
  return `${a.subnet}/${a.identity}/${ipKey(parseIp(a.ip))}`;
}

function* valuesWithPrefix<T>(db: Any, prefix: string): Generator<T> {
  for (const { value } of db.getRange({ start: prefix, end: `${prefix}\uffff` })) yield value as T;
}

function* allValues<T>(db: Any): Generator<T> {
  for (const { value } of db.getRange({})) yield value as T;
}

export class LmdbStore implements Store {
  readonly path: string;
  private readonly root: RootDatabase<unknown, string>;
  private readonly meta: Any;
  private readonly subnets: Any;
  private readonly pools: Any;
  private readonly reservations: Any;
  private readonly allocations: Any;
  /** Index `<subnet>/<identity>/<ip key>` → ip: sticky and reservation look-ups per ADD without a scan. */
  private readonly byIdentity: Any;
  private readonly cursors: Any;
  private readonly attachments: Any;
  private readonly tx: StoreTx;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.path = `${dir}/weft.mdb`;
    this.root = open<unknown, string>({ path: this.path, overlappingSync: false, compression: false, maxDbs: 16 });
    const sub = (name: string): Any => this.root.openDB<unknown, string>({ name });
    this.meta = sub('meta');
    this.subnets = sub('subnets');
    this.pools = sub('pools');
    this.reservations = sub('reservations');
    this.allocations = sub('allocations');
    this.byIdentity = sub('allocationsByIdentity');
    this.cursors = sub('cursors');
    this.attachments = sub('attachments');
    this.tx = this.makeTx();
    this.migrate();
  }

  private migrate(): void {
    const v = this.meta.get('schemaVersion') as number | undefined;
    if (v === undefined) {
      this.root.transactionSync(() => { this.meta.putSync('schemaVersion', SCHEMA_VERSION); });
      return;
    }
    if (v > SCHEMA_VERSION) throw new InternalError(`database ${this.path} has schema version ${v}, newer than this weft (${SCHEMA_VERSION})`, { hint: 'run the newer weft, or restore a backup' });
    // Schema 1 is the first; migrations from older versions go here, each in its own transaction.
  }

  private makeTx(): StoreTx {
    // The transaction object closes over the sub-databases, not over `this`.
    const s = { subnets: this.subnets, pools: this.pools, reservations: this.reservations, allocations: this.allocations, byIdentity: this.byIdentity, cursors: this.cursors, attachments: this.attachments, meta: this.meta };
    const allocsOf = (subnet: string): Generator<Allocation> => valuesWithPrefix<Allocation>(s.allocations, `${subnet}/`);
    return {
      getSubnet: (name) => s.subnets.get(name) as Subnet | undefined,
      listSubnets: () => [...allValues<Subnet>(s.subnets)],
      putSubnet: (x) => { s.subnets.putSync(x.name, x); },
      deleteSubnet: (name) => { s.subnets.removeSync(name); },

      getPool: (name) => s.pools.get(name) as Pool | undefined,
      listPools: (subnet) => [...allValues<Pool>(s.pools)].filter((p) => subnet === undefined || p.subnet === subnet),
      putPool: (p) => { s.pools.putSync(p.name, p); },
      deletePool: (name) => { s.pools.removeSync(name); },

      listReservations: (subnet) => (subnet === undefined ? [...allValues<Reservation>(s.reservations)] : [...valuesWithPrefix<Reservation>(s.reservations, `${subnet}/`)]),
      putReservation: (r) => { s.reservations.putSync(allocKey(r.subnet, r.ip), r); },
      deleteReservation: (subnet, ip) => { s.reservations.removeSync(allocKey(subnet, ip)); },
      reservationAt: (subnet, ip) => s.reservations.get(allocKey(subnet, ip)) as Reservation | undefined,
      reservationsOf: (subnet, owner) => [...valuesWithPrefix<Reservation>(s.reservations, `${subnet}/`)].filter((r) => r.owner === owner),

      listAllocations: (subnet) => (subnet === undefined ? [...allValues<Allocation>(s.allocations)] : [...allocsOf(subnet)]),
      putAllocation: (a) => {
        const key = allocKey(a.subnet, a.ip);
        const old = s.allocations.get(key) as Allocation | undefined;
        if (old?.identity && old.identity !== a.identity) s.byIdentity.removeSync(identityKeyOf(old));
        if (a.identity) s.byIdentity.putSync(identityKeyOf(a), a.ip);
        s.allocations.putSync(key, a);
      },
      deleteAllocation: (subnet, ip) => {
        const key = allocKey(subnet, ip);
        const old = s.allocations.get(key) as Allocation | undefined;
        if (old?.identity) s.byIdentity.removeSync(identityKeyOf(old));
        s.allocations.removeSync(key);
      },
      allocationAt: (subnet, ip) => s.allocations.get(allocKey(subnet, ip)) as Allocation | undefined,
      allocationsOf: (subnet, identity) => {
        const out: Allocation[] = [];
        for (const ip of valuesWithPrefix<string>(s.byIdentity, `${subnet}/${identity}/`)) {
          const a = s.allocations.get(allocKey(subnet, ip)) as Allocation | undefined;
          if (a && a.identity === identity) out.push(a);
        }
        return out;
      },
      countInUse: (subnet) => s.allocations.getKeysCount({ start: `${subnet}/`, end: `${subnet}/\uffff` }),
      countInPool: (subnet, pool) => { let n = 0; for (const a of allocsOf(subnet)) if (a.pool === pool) n++; return n; },
      cursor: (subnet, scope) => { const c = s.cursors.get(`${subnet}/${scope}`) as string | undefined; return c === undefined ? undefined : BigInt(c); },
      setCursor: (subnet, scope, value) => { s.cursors.putSync(`${subnet}/${scope}`, value.toString()); },
      clearCursors: (subnet) => { for (const { key } of s.cursors.getRange({ start: `${subnet}/`, end: `${subnet}/\uffff` })) s.cursors.removeSync(key); },

      getAttachment: (cid, ifname) => s.attachments.get(`${cid}/${ifname}`) as Attachment | undefined,
      listAttachments: () => [...allValues<Attachment>(s.attachments)],
      putAttachment: (a) => { s.attachments.putSync(`${a.containerId}/${a.ifname}`, a); },
      deleteAttachment: (cid, ifname) => { s.attachments.removeSync(`${cid}/${ifname}`); },

      getMeta: <T>(key: string) => s.meta.get(key) as T | undefined,
      putMeta: (key, value) => { s.meta.putSync(key, value); },
      deleteMeta: (key) => { s.meta.removeSync(key); },
      listMeta: <T>(prefix: string) => [...s.meta.getRange({ start: prefix, end: `${prefix}\uffff` })].map(({ key, value }) => ({ key, value: value as T })),
    };
  }

  /** Node runs this synchronously between events, so reads never see another request's half-done work. */
  read<T>(fn: (tx: StoreTx) => T): T {
    return fn(this.tx);
  }

  write<T>(fn: (tx: StoreTx) => T): T {
    return this.root.transactionSync(() => fn(this.tx));
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
