/**
 * The `weft` CLI against a real router: every command's --help, `-o json`
 * on every read command (and that it is exactly the API's answer), usage
 * errors (exit 2 with a helpful message), router errors (exit 1 with
 * `Error:` and `Hint:`), and the subnet / pool / ip commands end to end.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { exec } from '../helpers/exec.js';
import { type Kit, cid, cniOk, startKit, weftJson } from '../helpers/it-kit.js';
import { WEFT_BIN } from '../helpers/router.js';
import { canCreateNetns } from '../helpers/world.js';
import type { SubnetUsage } from '../../src/daemon/ipam-service.js';
import type { Pool } from '../../src/core/ipam/model.js';

const skip = canCreateNetns() ? false : 'needs root on Linux (creates network namespaces)';

interface Run { code: number; stdout: string; stderr: string }

describe('weft CLI on a real router', { skip }, () => {
  let kit: Kit;
  before(async () => {
    kit = await startKit('cli', { ipallocRange: '10.82.0.0/24' });
  });
  after(async () => {
    await kit?.world.cleanup();
  });

  /** The CLI without --socket (help, version, usage errors), run from the router's netns. */
  async function bare(...args: string[]): Promise<Run> {
    const r = await exec(process.execPath, [WEFT_BIN, ...args], { netns: kit.host.name, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
  }
  const weft = (...args: string[]): Promise<Run> => kit.router.weft(...args);

  /** Runs `fn` over `items` with at most 4 at a time (each is a Node process). */
  async function limited<T, R>(items: readonly T[], fn: (t: T) => Promise<R>): Promise<R[]> {
    const out: R[] = new Array<R>(items.length);
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < items.length) { const i = next++; out[i] = await fn(items[i]!); }
    }));
    return out;
  }

  function usageError(r: Run, message: string, group = 'weft'): void {
    assert.equal(r.code, 2, `exit status; stderr: ${r.stderr}`);
    assert.equal(r.stderr, `Error: ${message}\nRun \`${group} --help\` for usage.\n`);
    assert.equal(r.stdout, '');
  }
  function routerError(r: Run, message: string, hint?: string): void {
    assert.equal(r.code, 1, `exit status; stdout: ${r.stdout} stderr: ${r.stderr}`);
    assert.equal(r.stderr, `Error: ${message}\n${hint === undefined ? '' : `Hint: ${hint}\n`}`);
    assert.equal(r.stdout, '');
  }

  test('every command has --help and it exits 0', async () => {
    const commands: [string[], string][] = [
      [[], 'weft <command> [options]'],
      [['launch'], 'weft launch'], [['status'], 'weft status'], [['ps'], 'weft ps'], [['install-cni'], 'weft install-cni'],
      [['version'], 'weft version'], [['demo'], 'weft demo'],
      [['subnet'], 'weft subnet <command> [options]'], [['subnet', 'create'], 'weft subnet create <name>'], [['subnet', 'list'], 'weft subnet list'],
      [['subnet', 'show'], 'weft subnet show <name>'], [['subnet', 'update'], 'weft subnet update <name>'], [['subnet', 'delete'], 'weft subnet delete <name>'],
      [['pool'], 'weft pool <command> [options]'], [['pool', 'create'], 'weft pool create <name>'], [['pool', 'list'], 'weft pool list'], [['pool', 'delete'], 'weft pool delete <name>'],
      [['ip'], 'weft ip <command> [options]'], [['ip', 'reserve'], 'weft ip reserve <subnet> <ip>'], [['ip', 'release'], 'weft ip release <subnet> <ip>'], [['ip', 'list'], 'weft ip list'],
    ];
    const runs = await limited(commands, ([c]) => bare(...c, '--help'));
    for (const [i, [c, usage]] of commands.entries()) {
      const r = runs[i]!;
      assert.equal(r.code, 0, `weft ${c.join(' ')} --help: ${r.stderr}`);
      assert.equal(r.stderr, '');
      assert.ok(r.stdout.includes(`$ ${usage}`), `weft ${c.join(' ')} --help shows its usage line "${usage}":\n${r.stdout}`);
    }
    const v = await bare('--version');
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^weft\/0\.1\.0 /);
  });

  test('-o json on every read command parses and is the API\'s answer', async () => {
    const api = kit.router.api();
    const [status, ps, subnets, show, pools, ips] = await Promise.all([
      weftJson<Record<string, unknown>>(kit.router, 'status'), weftJson(kit.router, 'ps'), weftJson(kit.router, 'subnet', 'list'),
      weftJson(kit.router, 'subnet', 'show', 'default'), weftJson(kit.router, 'pool', 'list'), weftJson(kit.router, 'ip', 'list'),
    ]);
    assert.equal(status['ready'], true);
    assert.equal(status['socket'], kit.router.socket);
    assert.equal(status['ipallocRange'], '10.82.0.0/24');
    assert.deepEqual(ps, await api.get('/v1/attachments'));
    assert.deepEqual(subnets, await api.get('/v1/subnets'));
    assert.deepEqual(show, await api.get('/v1/subnets/default'));
    assert.deepEqual(pools, await api.get('/v1/pools'));
    assert.deepEqual(ips, await api.get('/v1/ips'));
    const v = await bare('version', '-o', 'json');
    assert.equal(v.code, 0, v.stderr);
    assert.deepEqual(JSON.parse(v.stdout), { weft: '0.1.0', node: process.version, cniVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    const human = await bare('version');
    assert.equal(human.stdout, `weft 0.1.0 (node ${process.version}; CNI 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)\n`);
    // The table form works too and -o wide is an alias of it.
    for (const c of [['status'], ['ps', '-o', 'wide'], ['subnet', 'list'], ['ip', 'list'], ['pool', 'list']]) {
      const r = await weft(...c);
      assert.equal(r.code, 0, `weft ${c.join(' ')}: ${r.stderr}`);
    }
  });

  test('bad arguments exit 2 with a helpful message', async () => {
    const scratch = kit.world.tempDir('weft-cli');
    const cases: [string[], string, string?][] = [
      [['nosuch'], 'unknown command "nosuch"'],
      [['subnet', 'frobnicate'], 'unknown command "frobnicate"', 'weft subnet'],
      [['subnet', 'create', 'x'], '--cidr is required, e.g. --cidr 10.40.0.0/24', 'weft subnet'],
      [['subnet', 'create', 'x', '--cidr', '10.83.0.0/24', '--quota', 'many'], '--quota needs a whole number, got "many"', 'weft subnet'],
      [['subnet', 'update', 'default'], 'nothing to update: give at least one option (see --help)', 'weft subnet'],
      [['ip', 'reserve'], 'missing required args for command `reserve <subnet> <ip>`', 'weft ip'],
      [['ip', 'reserve', 'default', '10.82.0.9'], '--owner NAMESPACE/NAME is required', 'weft ip'],
      [['pool', 'create', 'p'], '--subnet is required', 'weft pool'],
      [['pool', 'create', 'p', '--subnet', 'default'], '--addresses is required, e.g. --addresses 10.40.0.10-10.40.0.20', 'weft pool'],
      [['ps', '--frob'], 'Unknown option `--frob`'],
      [['ps', '-o', 'yaml'], 'unknown output format "yaml": use -o json or -o table'],
      [['subnet', 'list', '-o', 'xml'], 'unknown output format "xml": use -o json or -o table', 'weft subnet'],
      // (a temp --data-dir, should a regression ever let these start a router)
      [['launch', '--data-dir', scratch, '--mtu', '10'], '--mtu must be between 576 and 65535'],
      [['launch', '--data-dir', scratch, '--ipalloc-range', '10.0.0.1/8'], '--ipalloc-range "10.0.0.1/8" is not a prefix like 10.32.0.0/12'],
    ];
    const runs = await limited(cases, ([args]) => weft(...args));
    for (const [i, [, message, group]] of cases.entries()) usageError(runs[i]!, message, group);
    // Checked before the router is asked: the same answer when no router is there.
    usageError(await bare('ps', '-o', 'yaml', '--socket', '/run/weft-no-such-router.sock'), 'unknown output format "yaml": use -o json or -o table');
    usageError(await bare('version', '-o', 'yaml'), 'unknown output format "yaml": use -o json or -o table');
    const noCmd = await bare('subnet');
    assert.equal(noCmd.code, 2, 'a group without a command prints its help and exits 2');
    assert.match(noCmd.stdout, /\$ weft subnet <command>/);
  });

  test('router errors exit 1 with Error: and Hint:', async () => {
    routerError(await weft('subnet', 'show', 'nope'), 'subnet "nope" does not exist', 'list subnets with `weft subnet list`');
    routerError(await weft('subnet', 'create', 'dup', '--cidr', '10.82.0.0/25'), 'subnet 10.82.0.0/25 overlaps subnet "default" (10.82.0.0/24)', 'choose a prefix that does not overlap, or delete the other subnet');
    routerError(await weft('subnet', 'create', 'default', '--cidr', '10.84.0.0/24'), 'subnet "default" already exists', 'use `weft subnet update` to change it');
    routerError(await weft('subnet', 'create', 'hb', '--cidr', '10.84.0.1/24'), 'cidr "10.84.0.1/24" has host bits set; did you mean 10.84.0.0/24?');
    routerError(await weft('pool', 'create', 'p', '--subnet', 'nope', '--addresses', '10.82.0.9'), 'pool "p": subnet "nope" does not exist', 'create it first with `weft subnet create`');
    routerError(await weft('ip', 'reserve', 'default', '10.82.0.9', '--owner', 'nobody'), 'owner "nobody" must be NAMESPACE/NAME, e.g. default/etcd-0');
    const down = await bare('status', '--socket', '/run/weft-no-such-router.sock');
    assert.equal(down.code, 1);
    assert.equal(down.stderr, 'Error: weft router is not reachable at /run/weft-no-such-router.sock: /run/weft-no-such-router.sock: connect ENOENT /run/weft-no-such-router.sock\nHint: start the router with `weft launch`, or point --socket (or WEFT_SOCKET) at it\n');
  });

  test('subnet create with every option, show, update, and delete refused while in use', async () => {
    const created = await weft('subnet', 'create', 'db', '--cidr', '10.93.0.0/24', '--gateway', '10.93.0.254', '--exclude', '10.93.0.2', '--exclude', '10.93.0.10-10.93.0.12', '--quota', '50', '--sticky', '--tenant', 'prod', '--tenant', 'staging');
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout, 'subnet db created: 10.93.0.0/24, gateway 10.93.0.254\n');
    const u = await weftJson<SubnetUsage>(kit.router, 'subnet', 'show', 'db');
    const { createdAt: _c, ...s } = u.subnet;
    assert.deepEqual(s, {
      name: 'db', cidr: '10.93.0.0/24', gateway: '10.93.0.254', ranges: [],
      exclude: [{ start: '10.93.0.2', end: '10.93.0.2' }, { start: '10.93.0.10', end: '10.93.0.12' }],
      routes: [{ dst: '0.0.0.0/0' }], dns: { nameservers: [], search: [], options: [] },
      tenants: ['prod', 'staging'], quota: 50, sticky: true,
    });
    assert.deepEqual({ inUse: u.inUse, bound: u.bound, held: u.held, reserved: u.reserved, capacity: u.capacity }, { inUse: 0, bound: 0, held: 0, reserved: 0, capacity: '249' }, '254 usable minus gateway and 4 excluded');
    const human = await weft('subnet', 'show', 'db');
    assert.match(human.stdout, /^Gateway: +10\.93\.0\.254$/m);
    assert.match(human.stdout, /^Excluded: +10\.93\.0\.2, 10\.93\.0\.10-10\.93\.0\.12$/m);
    assert.match(human.stdout, /^Tenants: +prod, staging$/m);

    // The options take effect for real allocations (weft-ipam: no kernel needed).
    const ns = await kit.world.netns('c');
    const conf = { cniVersion: '1.1.0', name: 'dbnet', type: 'bridge', ipam: { type: 'weft-ipam', subnet: 'db' } };
    const calls = ['a', 'b'].map((n) => ({ command: 'ADD' as const, kind: 'weft-ipam' as const, containerId: cid('cli'), netns: ns.path, ifname: 'eth0', args: `K8S_POD_NAMESPACE=prod;K8S_POD_NAME=db-${n}` }));
    const got: string[] = [];
    for (const c of calls) got.push(((cniOk(await kit.router.cni(c, conf))!['ips'] as { address: string; gateway: string }[])[0]!).address);
    assert.deepEqual(got, ['10.93.0.1/24', '10.93.0.3/24'], 'gateway .254 and excluded .2 are skipped');

    routerError(await weft('subnet', 'update', 'db', '--exclude', '10.93.0.1'), `cannot exclude 10.93.0.1: it is in use by container ${calls[0]!.containerId}`);
    const upd = await weft('subnet', 'update', 'db', '--quota', '60', '--exclude', '10.93.0.20-10.93.0.29');
    assert.equal(upd.code, 0, upd.stderr);
    assert.equal(upd.stdout, 'subnet db updated\n');
    let after = (await weftJson<SubnetUsage>(kit.router, 'subnet', 'show', 'db')).subnet;
    assert.equal(after.quota, 60);
    assert.deepEqual(after.exclude, [{ start: '10.93.0.20', end: '10.93.0.29' }], '--exclude on update replaces the list');
    assert.deepEqual(after.tenants, ['prod', 'staging'], 'options not given are kept');
    assert.equal((await weft('subnet', 'update', 'db', '--quota', 'none')).code, 0);
    after = (await weftJson<SubnetUsage>(kit.router, 'subnet', 'show', 'db')).subnet;
    assert.equal(after.quota, undefined);

    routerError(await weft('subnet', 'delete', 'db'), 'subnet "db" still has 2 address(es) in use', '`weft ip list --subnet NAME` shows them; remove the containers or `weft ip release` held addresses first');
    routerError(await weft('ip', 'release', 'db', '10.93.0.1'), `10.93.0.1 is in use by container ${calls[0]!.containerId}`, 'remove the container; its DEL releases the address');
    for (const c of calls) cniOk(await kit.router.cni({ ...c, command: 'DEL' }, conf));
    // Sticky: the addresses are held now, and still block the delete.
    const held = await weftJson<{ allocations: { ip: string; state: string }[] }>(kit.router, 'ip', 'list', '--subnet', 'db');
    assert.deepEqual(held.allocations.map((a) => `${a.ip} ${a.state}`), ['10.93.0.1 held', '10.93.0.3 held']);
    routerError(await weft('subnet', 'delete', 'db'), 'subnet "db" still has 2 address(es) in use', '`weft ip list --subnet NAME` shows them; remove the containers or `weft ip release` held addresses first');
    for (const ip of ['10.93.0.1', '10.93.0.3']) assert.equal((await weft('ip', 'release', 'db', ip)).code, 0);
    const gone = await weft('subnet', 'delete', 'db');
    assert.equal(gone.code, 0, gone.stderr);
    assert.equal(gone.stdout, 'subnet db deleted\n');
    routerError(await weft('subnet', 'show', 'db'), 'subnet "db" does not exist', 'list subnets with `weft subnet list`');
  });

  test('ip reserve, list and release', async () => {
    assert.equal((await weft('subnet', 'create', 'rs', '--cidr', '10.94.0.0/24')).code, 0);
    const r = await weft('ip', 'reserve', 'rs', '10.94.0.50', '--owner', 'prod/etcd-0');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '10.94.0.50 in subnet rs reserved for prod/etcd-0\n');
    const list = await weftJson<{ allocations: unknown[]; reservations: { subnet: string; ip: string; owner: string; createdAt: string }[] }>(kit.router, 'ip', 'list', '--subnet', 'rs');
    assert.deepEqual(list.allocations, []);
    assert.deepEqual(list.reservations.map(({ createdAt: _c, ...x }) => x), [{ subnet: 'rs', ip: '10.94.0.50', owner: 'prod/etcd-0' }]);
    const table = await weft('ip', 'list', '--subnet', 'rs');
    assert.match(table.stdout, /^rs +10\.94\.0\.50 +reserved +- +- +- +- +prod\/etcd-0 /m);
    routerError(await weft('ip', 'reserve', 'rs', '10.94.0.50', '--owner', 'prod/etcd-1'), '10.94.0.50 is already reserved for prod/etcd-0', 'release it first with `weft ip release`');
    routerError(await weft('ip', 'reserve', 'rs', '10.94.0.51', '--owner', 'prod/etcd-0'), 'prod/etcd-0 already has 10.94.0.50 reserved in subnet "rs"', 'release that reservation first');
    routerError(await weft('ip', 'reserve', 'rs', '10.95.0.1', '--owner', 'prod/x'), '10.95.0.1 is outside subnet "rs" (10.94.0.0/24)');
    routerError(await weft('ip', 'reserve', 'rs', '10.94.0.1', '--owner', 'prod/x'), '10.94.0.1 is the gateway of subnet "rs"');
    const rel = await weft('ip', 'release', 'rs', '10.94.0.50');
    assert.equal(rel.code, 0, rel.stderr);
    assert.equal(rel.stdout, '10.94.0.50 released (reservation removed)\n');
    routerError(await weft('ip', 'release', 'rs', '10.94.0.50'), '10.94.0.50 is neither reserved nor allocated in subnet "rs"');
    assert.equal((await weft('subnet', 'delete', 'rs')).code, 0);
  });

  test('pool create, list, delete', async () => {
    assert.equal((await weft('subnet', 'create', 'pl', '--cidr', '10.96.0.0/24', '--sticky')).code, 0);
    const c = await weft('pool', 'create', 'etcd', '--subnet', 'pl', '--addresses', '10.96.0.100-10.96.0.102', '--match-name', 'etcd-*', '--quota', '2');
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, 'pool etcd created in subnet pl: 10.96.0.100-10.96.0.102\n');
    const c2 = await weft('pool', 'create', 'web', '--subnet', 'pl', '--addresses', '10.96.0.200,10.96.0.201', '--no-sticky', '--tenant', 'prod');
    assert.equal(c2.code, 0, c2.stderr);
    const list = await weftJson<{ pool: Pool; inUse: number; size: string }[]>(kit.router, 'pool', 'list', '--subnet', 'pl');
    assert.deepEqual(list.map(({ pool: { createdAt: _c, ...p }, inUse, size }) => ({ p, inUse, size })), [
      { p: { name: 'etcd', subnet: 'pl', addresses: [{ start: '10.96.0.100', end: '10.96.0.102' }], match: { name: 'etcd-*' }, tenants: [], quota: 2, sticky: true }, inUse: 0, size: '3' },
      { p: { name: 'web', subnet: 'pl', addresses: [{ start: '10.96.0.200', end: '10.96.0.201' }], tenants: ['prod'], sticky: false }, inUse: 0, size: '2' },
    ]);
    const table = await weft('pool', 'list');
    assert.match(table.stdout, /^etcd +pl +10\.96\.0\.100-10\.96\.0\.102 +0 +3 +\*\/etcd-\* +any +2 +yes$/m);
    routerError(await weft('pool', 'create', 'etcd2', '--subnet', 'pl', '--addresses', '10.96.0.102-10.96.0.103'), 'pool "etcd2" overlaps pool "etcd" in subnet "pl"');
    routerError(await weft('pool', 'create', 'gw', '--subnet', 'pl', '--addresses', '10.96.0.1'), 'pool "gw" contains the gateway 10.96.0.1');
    routerError(await weft('subnet', 'delete', 'pl'), 'subnet "pl" still has pools', 'delete them with `weft pool delete`');
    for (const p of ['etcd', 'web']) {
      const d = await weft('pool', 'delete', p);
      assert.equal(d.code, 0, d.stderr);
      assert.equal(d.stdout, `pool ${p} deleted\n`);
    }
    routerError(await weft('pool', 'delete', 'etcd'), 'pool "etcd" does not exist');
    assert.deepEqual(await weftJson(kit.router, 'pool', 'list'), []);
    assert.equal((await weft('subnet', 'delete', 'pl')).code, 0);
  });
});
