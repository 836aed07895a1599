import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LmdbStore } from '../../src/adapters/store/lmdb-store.js';
import { IpamService } from '../../src/daemon/ipam-service.js';

test('rollback of an interrupted ADD on a sticky subnet: a fresh address is freed, a reused held one is held again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-rb-'));
  const store = new LmdbStore(dir);
  let t = 0;
  const ipam = new IpamService(store, () => new Date(Date.UTC(2026, 0, 1, 0, 0, t++)));
  try {
    ipam.createSubnet({ name: 's', cidr: '10.50.0.0/29', sticky: true });
    const identity = { namespace: 'default', name: 'db-0' };
    const args = { subnet: 's', identity, ifname: 'eth0', network: 'n' };
    // First ADD of db-0: fresh address; a crash before `ready` must not leave it held.
    const first = store.write((tx) => ipam.allocate(tx, { ...args, containerId: 'c1' }));
    assert.equal(store.write((tx) => ipam.rollbackBound(tx, 's', first.allocation.ip, 'c1')), 'freed');
    assert.equal(store.read((tx) => tx.allocationAt('s', first.allocation.ip)), undefined);
    // db-0 gets an address, releases it (sticky: held), comes back (reuse), and that ADD is interrupted.
    const a = store.write((tx) => ipam.allocate(tx, { ...args, containerId: 'c2' }));
    assert.equal(store.write((tx) => ipam.releaseBound(tx, 's', a.allocation.ip, 'c2')), 'held');
    const again = store.write((tx) => ipam.allocate(tx, { ...args, containerId: 'c3' }));
    assert.equal(again.allocation.ip, a.allocation.ip, 'the sticky address comes back');
    assert.equal(store.write((tx) => ipam.rollbackBound(tx, 's', again.allocation.ip, 'c3')), 'held');
    const rec = store.read((tx) => tx.allocationAt('s', a.allocation.ip));
    assert.equal(rec?.state, 'held');
    assert.equal(rec?.identity, 'default/db-0');
    assert.equal(rec?.containerId, undefined);
    // Someone else's container ID never touches it.
    assert.equal(store.write((tx) => ipam.rollbackBound(tx, 's', a.allocation.ip, 'other')), 'absent');
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
