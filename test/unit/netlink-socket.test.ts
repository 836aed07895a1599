/**
 * RtnlSocket against a fake `netlink` package: no kernel, no root. Checks the
 * in-flight cap, that a batch keeps its order, and how NLMSG_ERROR replies
 * become NetlinkErrors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NLMSG_ERROR, getLinkByName, appendRoute, newVeth } from '../../src/adapters/kernel/netlink-codec.js';
import { isNetlinkErrno, MAX_IN_FLIGHT, NetlinkError, type NetlinkPackage, errnoName, RtnlSocket } from '../../src/adapters/kernel/netlink-socket.js';
import { NetnsSwitcher } from '../../src/adapters/kernel/netns-addon.js';
import { KernelError } from '../../src/core/errors.js';
import { parseIp } from '../../src/core/ip/addr.js';

interface Pending { type: number; resolve: (m: [{ type: number; flags: number; seq: number; data: Buffer }[], unknown]) => void; reject: (e: Error) => void }

function fakePackage() {
  const pending: Pending[] = [];
  const sent: number[] = [];
  const listeners = new Map<string, ((...a: unknown[]) => void)[]>();
  let closed = false;
  const pkg: NetlinkPackage = {
    createNetlink: () => ({
      request: (type: number) => new Promise((resolve, reject) => { sent.push(type); pending.push({ type, resolve, reject }); }),
      on: (ev: string, fn: (...a: unknown[]) => void) => { listeners.set(ev, [...(listeners.get(ev) ?? []), fn]); },
      close: () => { closed = true; },
    }),
  };
  const errno = (n: number) => { const b = Buffer.alloc(20); b.writeInt32LE(-n, 0); return [{ type: NLMSG_ERROR, flags: 0, seq: 0, data: b }]; };
  return { pkg, pending, sent, listeners, errno, isClosed: () => closed };
}

// The switcher is not used for the caller's own netns (netns undefined).
const switcher = new NetnsSwitcher({ setns: () => { throw new Error('no setns in unit tests'); }, CLONE_NEWNET: 0x40000000 });

const tick = () => new Promise((r) => setImmediate(r));

test('at most MAX_IN_FLIGHT requests are in flight; the rest go out in order as replies come back', async () => {
  const f = fakePackage();
  const s = RtnlSocket.open(f.pkg, switcher, undefined, 1000);
  const reqs = Array.from({ length: MAX_IN_FLIGHT + 10 }, (_, i) => ({ ...getLinkByName(`l${i}`), type: 1000 + i }));
  const all = s.batch(reqs);
  await tick();
  assert.equal(f.pending.length, MAX_IN_FLIGHT);
  for (let answered = 0; answered < reqs.length; answered++) {
    const p = f.pending.shift()!;
    p.resolve([[{ type: 16, flags: 0, seq: 0, data: Buffer.from([p.type & 0xff]) }], {}]);
    await tick();
    assert.ok(f.pending.length <= MAX_IN_FLIGHT);
  }
  const out = await all;
  assert.deepEqual(f.sent, reqs.map((r) => r.type), 'sent in request order');
  assert.deepEqual(out.map((o) => o[0]![0]), reqs.map((r) => r.type & 0xff), 'replies matched to their requests');
  s.close();
  assert.ok(f.isClosed());
  await assert.rejects(s.request(getLinkByName('x')), NetlinkError);
});

test('an ACK is no payload; an NLMSG_ERROR is a NetlinkError (a KernelError) naming the request, errno and netns', async () => {
  const f = fakePackage();
  const s = RtnlSocket.open(f.pkg, switcher, undefined, 1000);
  const ack = s.request(getLinkByName('a'));
  f.pending.shift()!.resolve([f.errno(0), {}]);
  assert.deepEqual(await ack, []);

  const bad = s.request(appendRoute({ family: 4, dst: parseIp('10.99.0.0'), dstLen: 16, via: parseIp('203.0.113.1'), index: 3, ifname: 'eth0' }));
  f.pending.shift()!.resolve([f.errno(101), {}]); // ENETUNREACH
  const e = await bad.then(() => undefined, (x: unknown) => x);
  assert.ok(e instanceof NetlinkError && e instanceof KernelError);
  assert.equal(e.errno, 'ENETUNREACH');
  assert.equal(e.cniCode, 107);
  assert.equal(e.message, 'netlink: "route append 10.99.0.0/16 via 203.0.113.1 dev eth0" failed: Nexthop has invalid gateway (ENETUNREACH)');

  const gone = s.request(getLinkByName('nope'));
  f.pending.shift()!.resolve([f.errno(19), {}]);
  await assert.rejects(gone, (x: unknown) => isNetlinkErrno(x, 'ENODEV') && /No such device \(ENODEV\)/.test((x as Error).message));
});

test('batch: every request is sent; the first failure in request order is thrown', async () => {
  const f = fakePackage();
  const s = RtnlSocket.open(f.pkg, switcher, undefined, 1000);
  const b = s.batch([getLinkByName('a'), getLinkByName('b'), getLinkByName('c')]);
  assert.equal(f.pending.length, 3, 'all three sent at once');
  const [a, bb, c] = f.pending.splice(0);
  c!.resolve([f.errno(17), {}]); // the third fails first
  bb!.resolve([f.errno(19), {}]);
  a!.resolve([f.errno(0), {}]);
  await assert.rejects(b, (x: unknown) => isNetlinkErrno(x, 'ENODEV') && /"link show dev b"/.test((x as Error).message));
});

test('a timeout or a send error is a NetlinkError too; socket errors are swallowed and mark it unusable', async () => {
  const f = fakePackage();
  const s = RtnlSocket.open(f.pkg, switcher, undefined, 5);
  const r = s.request(getLinkByName('a'));
  f.pending.shift()!.reject(new Error('Timeout has been reached'));
  await assert.rejects(r, (x: unknown) => x instanceof NetlinkError && x.errno === 'ETIMEDOUT' && /no answer within 5 ms/.test(x.message));
  assert.equal(s.usable, true);
  for (const fn of f.listeners.get('error') ?? []) fn(Object.assign(new Error('recvmsg: ENOBUFS'), { code: 'ENOBUFS' }));
  assert.equal(s.usable, false);
  for (const ev of ['message', 'invalid']) assert.ok((f.listeners.get(ev) ?? []).length > 0, `a ${ev} listener swallows stray ACKs`);
});

test('a socket error fails the requests in flight at once (not at their timeout) and closes the socket', async () => {
  const f = fakePackage();
  const s = RtnlSocket.open(f.pkg, switcher, undefined, 60_000);
  const r1 = s.request(getLinkByName('a'));
  const r2 = s.request(getLinkByName('b'));
  await tick();
  assert.equal(f.pending.length, 2, 'both sent; the fake never answers them');
  for (const fn of f.listeners.get('error') ?? []) fn(Object.assign(new Error('recvmsg: ENOBUFS'), { code: 'ENOBUFS' }));
  for (const r of [r1, r2]) await assert.rejects(r, (x: unknown) => x instanceof NetlinkError && x.errno === 'ENOBUFS' && /"link show dev [ab]"/.test(x.message));
  assert.ok(f.isClosed(), 'the failed socket is closed');
  await assert.rejects(s.request(getLinkByName('c')), (x: unknown) => x instanceof NetlinkError && x.errno === 'EBADF');
});

test('an ECHOed request waits for the verdict that follows the echo: an echoed link can still be refused', async () => {
  const f = fakePackage();
  const s = RtnlSocket.open(f.pkg, switcher, undefined, 1000);
  const veth = newVeth({ name: 'wv1', mtu: 1500, master: 9, peer: { name: 'eth0', mtu: 1500, netnsFd: 3, netnsLabel: '/run/netns/x' } });
  const echoed = (seq: number) => [{ type: 16, flags: 0, seq, data: Buffer.from('link') }];
  const ack = (seq: number, errno: number) => f.errno(errno).map((m) => ({ ...m, seq }));
  const stray = (msgs: unknown[]) => { for (const fn of f.listeners.get('message') ?? []) fn(msgs, {}); };

  // Verdict after the echo: refused (the kernel created the link, then could not set its master, and undid it).
  const a = s.request(veth);
  f.pending.shift()!.resolve([echoed(7), {}]);
  await tick();
  stray(ack(7, 22));
  await assert.rejects(a, (e: unknown) => isNetlinkErrno(e, 'EINVAL'));

  // Verdict already in before the echo was handled: accepted.
  const b = s.request(veth);
  stray(ack(8, 0));
  f.pending.shift()!.resolve([echoed(8), {}]);
  assert.deepEqual(await b, [Buffer.from('link')]);

  // A kernel without echo answers with the ACK alone: nothing more to wait for.
  const c = s.request(veth);
  f.pending.shift()!.resolve([ack(9, 0), {}]);
  assert.deepEqual(await c, []);

  // No verdict at all: a timeout, not a hang.
  const t = RtnlSocket.open(f.pkg, switcher, undefined, 20);
  const d = t.request(veth);
  f.pending.shift()!.resolve([echoed(10), {}]);
  await assert.rejects(d, (e: unknown) => e instanceof NetlinkError && e.errno === 'ETIMEDOUT');
});

test('errnoName: libuv\'s names, and the Linux-only ones rtnetlink uses (EXFULL: a full bridge)', () => {
  assert.equal(errnoName(17).name, 'EEXIST');
  assert.deepEqual(errnoName(54), { name: 'EXFULL', text: 'Exchange full' });
});
