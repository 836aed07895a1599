/**
 * The CNI plugin executable (bundled into dist/weft-cni.cjs). One binary
 * serves both plugin types; which one it is comes from, in order:
 * `--kind=<weft|weft-ipam>`, $WEFT_PLUGIN_KIND (set by the sh launcher), or
 * the name it was invoked as (`/opt/cni/bin/weft-ipam`).
 * All logic is in src/cni/plugin.ts; this file only does process I/O.
 */
import path from 'node:path';
import { InvalidEnvError } from '../core/errors.js';
import { renderCniError } from '../core/cni/error-json.js';
import { CNI_ENDPOINT, DAEMON_TIMEOUT_MS, type PluginKind } from '../core/cni/protocol.js';
import { CURRENT_VERSION } from '../core/cni/versions.js';
import { type PluginOutput, runPlugin, stdinFailure } from '../cni/plugin.js';
import { request } from '../client/unix-http.js';

const KINDS: readonly PluginKind[] = ['weft', 'weft-ipam'];
const isKind = (s: string | undefined): s is PluginKind => s !== undefined && (KINDS as readonly string[]).includes(s);

function pickKind(argv: readonly string[], env: NodeJS.ProcessEnv): PluginKind | undefined {
  const i = argv.findIndex((a) => a === '--kind' || a.startsWith('--kind='));
  if (i >= 0) {
    const a = argv[i]!;
    const v = a === '--kind' ? argv[i + 1] : a.slice('--kind='.length);
    return isKind(v) ? v : undefined;
  }
  const fromEnv = env['WEFT_PLUGIN_KIND'];
  if (fromEnv !== undefined && fromEnv !== '') return isKind(fromEnv) ? fromEnv : undefined;
  const base = path.basename(argv[1] ?? '').replace(/\.(c?js|mjs)$/, '');
  return isKind(base) ? base : undefined;
}

async function readStdin(): Promise<string> {
  // A terminal would block forever; a runtime always gives a pipe or file.
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<PluginOutput> {
  const kind = pickKind(process.argv, process.env);
  if (!kind) {
    return {
      stdout: renderCniError(new InvalidEnvError(`cannot tell which weft plugin to run: set WEFT_PLUGIN_KIND (or --kind) to ${KINDS.join(' or ')}, or install the plugin under one of those names`), CURRENT_VERSION),
      exitCode: 1,
    };
  }
  let stdin: string;
  try {
    stdin = await readStdin();
  } catch (e) {
    return stdinFailure(e);
  }
  return runPlugin(kind, process.env, stdin, {
    send: (socketPath, req) => request({ socketPath, method: 'POST', path: CNI_ENDPOINT, body: req, timeoutMs: DAEMON_TIMEOUT_MS }),
  });
}

main().then(
  (out) => {
    // exitCode rather than process.exit(): let stdout drain into the pipe.
    if (out.stdout) process.stdout.write(out.stdout);
    process.exitCode = out.exitCode;
  },
  (e: unknown) => {
    process.stdout.write(`${JSON.stringify({ cniVersion: CURRENT_VERSION, code: 999, msg: `weft plugin crashed: ${e instanceof Error ? e.message : String(e)}` })}\n`);
    process.exitCode = 1;
  },
);
