/**
 * The "outside" of a simulated host: a client namespace joined to the host
 * namespace by a veth on 198.51.100.0/24 (the host end is 198.51.100.1),
 * from which published ports are reached the way a remote client would.
 */
import { exec, execOk } from '../exec.js';
import type { Netns, World } from '../world.js';

export const HOST_OUTSIDE_IP = '198.51.100.1';
export const CLIENT_IP = '198.51.100.2';

/** Creates the client namespace and the veth; both go away with the world's namespaces. */
export async function connectClient(world: World, host: Netns): Promise<Netns> {
  const client = await world.netns('cli');
  const hostEnd = `${client.name}h`;
  const clientEnd = `${client.name}c`;
  await execOk('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', clientEnd, 'netns', client.name], { netns: host.name });
  await execOk('ip', ['addr', 'add', `${HOST_OUTSIDE_IP}/24`, 'dev', hostEnd], { netns: host.name });
  await execOk('ip', ['link', 'set', hostEnd, 'up'], { netns: host.name });
  await execOk('ip', ['addr', 'add', `${CLIENT_IP}/24`, 'dev', clientEnd], { netns: client.name });
  await execOk('ip', ['link', 'set', clientEnd, 'up'], { netns: client.name });
  return client;
}

/**
 * GET `url` from inside `netns` with node's http client, retrying until a
 * 200 arrives or `deadlineMs` passes (a server in a container may still be
 * starting). Returns the body, or throws with the last error.
 */
export async function httpGet(netns: string, url: string, deadlineMs = 30_000): Promise<string> {
  const script = `
const http = require('node:http');
const url = process.argv[1];
const until = Date.now() + Number(process.argv[2]);
let last = 'no attempt';
const attempt = () => {
  const req = http.get(url, { timeout: 3000, agent: false }, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => {
      if (res.statusCode === 200) { process.stdout.write(body); process.exit(0); }
      last = 'HTTP ' + res.statusCode; retry();
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => { last = e.message; retry(); });
};
const retry = () => {
  if (Date.now() > until) { process.stderr.write(last); process.exit(1); }
  setTimeout(attempt, 200);
};
attempt();`;
  const r = await exec(process.execPath, ['-e', script, url, String(deadlineMs)], { netns, timeoutMs: deadlineMs + 10_000 });
  if (r.code !== 0) throw new Error(`GET ${url} from netns ${netns} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Names of the links in a namespace. */
export async function linkNames(netns: string): Promise<string[]> {
  const out = await execOk('ip', ['-j', 'link', 'show'], { netns });
  return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname);
}

/** iptables-save of the nat table inside a namespace ('' when iptables is missing). */
export async function iptablesNat(netns: string): Promise<string> {
  const r = await exec('iptables-save', ['-t', 'nat'], { netns });
  return r.code === 0 ? r.stdout : '';
}
