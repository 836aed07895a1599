import type { CAC } from 'cac';
import { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FastPathOptions, fastPathSocketProblem, renderLauncher } from '../../core/cni/launcher.js';
import { DEFAULT_SOCKET } from '../../core/cni/protocol.js';
import { cniNameProblem } from '../../core/cni/syntax.js';
import { renderConflist } from '../conflist.js';
import { type Ctx, optInt, optString, strings } from '../context.js';
import { UsageError } from '../output.js';

/** dist/weft-cni.cjs, built by scripts/bundle.mjs next to dist/src. */
export function bundlePath(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../../weft-cni.cjs');
}

/** The first executable `name` on $PATH, as an absolute path (relative PATH entries are skipped). */
export function findOnPath(name: string, pathVar = process.env.PATH ?? ''): string | undefined {
  for (const dir of pathVar.split(':')) {
    if (!isAbsolute(dir)) continue;
    const p = join(dir, name);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, constants.X_OK);
      return p;
    } catch { /* not here */ }
  }
  return undefined;
}

/**
 * The launcher's fast path (sh + curl to POST /v1/cni/raw; see
 * src/core/cni/launcher.ts), or why there is none.
 */
function pickFastPath(wanted: boolean, socket: string): FastPathOptions | string {
  if (!wanted) return 'disabled with --no-curl';
  const curlPath = findOnPath('curl');
  if (!curlPath) return 'no curl on PATH';
  const trPath = findOnPath('tr');
  if (!trPath) return 'no tr on PATH';
  const bad = fastPathSocketProblem(socket);
  if (bad) return `the socket path ${socket} ${bad}`;
  return { curlPath, trPath, socket };
}

/** Writes atomically so a runtime never execs or parses a half-written file. */
function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

export function registerInstallCni(cli: CAC, ctx: Ctx): void {
  cli.command('install-cni', 'Install the weft and weft-ipam CNI plugins and write a network configuration')
    .option('--bin-dir <dir>', 'CNI plugin directory (podman: cni_plugin_dirs; containerd: bin_dir)', { default: '/opt/cni/bin' })
    .option('--conf-dir <dir>', 'CNI configuration directory', { default: '/etc/cni/net.d' })
    .option('--network <name>', 'network name', { default: 'weft' })
    .option('--subnet <name>', 'managed subnet(s) to allocate from (repeatable; default: the router\'s default subnet)', { type: [String] })
    .option('--no-ip-masq', 'do not masquerade traffic leaving the subnet')
    .option('--mtu <n>', 'container MTU (default: the router\'s)')
    .option('--ports <how>', 'port publishing: builtin (weft) or portmap (chain the reference portmap plugin)', { default: 'builtin' })
    .option('--socket <path>', 'router socket the plugins use', { default: DEFAULT_SOCKET })
    .option('--no-conf', 'install the plugins only')
    .option('--no-curl', 'run the Node plugin for every verb but VERSION, even when curl is installed')
    .example('weft install-cni --bin-dir /usr/lib/cni --conf-dir /etc/cni/net.d --network weft')
    .action((opts: Record<string, unknown>) => {
      const binDir = resolve(String(opts.binDir));
      const confDir = resolve(String(opts.confDir));
      const network = String(opts.network);
      const bad = cniNameProblem(network);
      if (bad) throw new UsageError(`--network "${network}" ${bad}`);
      const ports = String(opts.ports);
      if (ports !== 'builtin' && ports !== 'portmap') throw new UsageError('--ports must be "builtin" or "portmap"');
      const socketOpt = optString(opts.socket) ?? DEFAULT_SOCKET;
      if (!socketOpt.startsWith('/')) throw new UsageError(`--socket must be an absolute path, got "${socketOpt}"`);
      const bundle = bundlePath();
      if (!existsSync(bundle)) throw new UsageError(`the plugin bundle ${bundle} is missing: run \`npm run build\` first`);
      mkdirSync(binDir, { recursive: true });
      const installed = join(binDir, '.weft-plugin.cjs');
      copyFileSync(bundle, `${installed}.tmp-${process.pid}`);
      renameSync(`${installed}.tmp-${process.pid}`, installed);
      const socket = optString(opts.socket) ?? DEFAULT_SOCKET;
      const fast = pickFastPath(opts.curl !== false, socket);
      for (const kind of ['weft', 'weft-ipam'] as const) {
        writeAtomic(join(binDir, kind), renderLauncher({ nodePath: process.execPath, bundlePath: installed, kind, ...(typeof fast === 'string' ? {} : { fastPath: fast }) }), 0o755);
      }
      ctx.io.out(`installed plugins weft and weft-ipam in ${binDir}`);
      ctx.io.out(typeof fast === 'string'
        ? `ADD, DEL, CHECK, GC and STATUS start Node (${fast})`
        : `ADD, DEL, CHECK, GC and STATUS go to the router at ${socket} through ${fast.curlPath} (Node only as a fallback)`);
      if (opts.conf === false) return;
      const mtu = optInt(opts.mtu, '--mtu');
      const conf = renderConflist({ network, subnets: strings(opts.subnet), socket, ipMasq: opts.ipMasq !== false, ...(mtu ? { mtu } : {}), ports });
      mkdirSync(confDir, { recursive: true });
      const file = join(confDir, `10-${network}.conflist`);
      writeAtomic(file, `${JSON.stringify(conf, null, 2)}\n`, 0o644);
      ctx.io.out(`wrote ${file}`);
    });
}
