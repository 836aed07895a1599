/**
 * The executable installed into the runtime's CNI bin directory is this
 * small sh script, not the Node bundle itself: starting Node costs ~50 ms of
 * CPU (~90–175 ms of wall time on a busy box) on every exec, where sh
 * answers in a few.
 *
 * - VERSION is answered by the script itself (podman sends it to every
 *   plugin of every network on nearly every command).
 * - With a fast path (curl and tr found at install time), ADD, DEL, CHECK,
 *   GC and STATUS are sent as they are — stdin as the body, the CNI_*
 *   variables as headers — to the router's POST /v1/cni/raw, which runs the
 *   very plugin code of the bundle and answers with what to print and the
 *   exit status (src/daemon/cni-raw.ts). The script prints that and exits.
 * - Everything else runs the Node bundle with `exec`, so the runtime still
 *   sees one process whose stdin, stdout and exit status are the bundle's:
 *   another verb or none, arguments, stdin on a terminal, curl or the socket
 *   missing, a CNI_* value with a character outside RAW_HEADER_SAFE_CHARS
 *   (CR/LF never reach curl). After stdin has been read, every failure —
 *   curl cannot connect, times out or fails, or the answer is anything but
 *   the raw protocol's (an older router: 404; the configuration names
 *   another socket: 421) — pipes the stdin it read into the bundle, which
 *   then does what it always did (code 11/50 when the router is down, 6 for
 *   garbage, ...). Replaying is safe: every verb may be retried.
 *
 * Known difference: sh variables cannot hold NUL bytes, so tr turns each NUL
 * of stdin into \001. Both are invalid anywhere in JSON, so such stdin is
 * code 6 either way; the message shows \u0001 where the bundle shows \u0000.
 */
import type { PluginKind } from './protocol.js';
import { CNI_RAW_ENDPOINT, DAEMON_TIMEOUT_MS, RAW_ENV_HEADERS, RAW_HEADER_SAFE_CHARS, RAW_OUTPUT_TYPE, RAW_PLUGIN_HEADER, RAW_SOCKET_HEADER } from './protocol.js';
import { VERSION_JSON } from './versions.js';

export interface FastPathOptions {
  /** Absolute path of curl. */
  readonly curlPath: string;
  /** Absolute path of tr. */
  readonly trPath: string;
  /** The router socket baked into the script (install-cni --socket). */
  readonly socket: string;
}

export interface LauncherOptions {
  /** Absolute path of the node binary. */
  readonly nodePath: string;
  /** Absolute path of dist/weft-cni.cjs. */
  readonly bundlePath: string;
  readonly kind: PluginKind;
  /** Serve ADD/DEL/CHECK/GC/STATUS through curl; without it every verb but VERSION runs Node. */
  readonly fastPath?: FastPathOptions;
}

/** Single-quotes `s` for sh ('\'' closes, escapes and reopens). */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** True when every character of `s` may go into a raw request header as is. */
export function headerSafe(s: string): boolean {
  for (const c of s) if (!RAW_HEADER_SAFE_CHARS.includes(c)) return false;
  return true;
}

/** Why `socket` cannot be baked into a fast-path launcher, or undefined. */
export function fastPathSocketProblem(socket: string): string | undefined {
  if (!socket.startsWith('/')) return 'is not an absolute path';
  if (!headerSafe(socket)) return `contains a character other than ${RAW_HEADER_SAFE_CHARS}`;
  return undefined;
}

function checkPath(what: string, p: string): void {
  // The runtime's working directory is arbitrary; a NUL cannot be passed to exec.
  if (!p.startsWith('/') || p.includes('\0') || p.includes('\n')) throw new RangeError(`${what} must be an absolute path without newlines: ${JSON.stringify(p)}`);
}

/** Seconds curl waits: the router answers by DAEMON_TIMEOUT_MS itself; this only catches a hung router. */
const CURL_MAX_TIME_S = Math.ceil(DAEMON_TIMEOUT_MS / 1000) + 10;

function fastPathLines(opts: LauncherOptions, f: FastPathOptions): string[] {
  checkPath('curlPath', f.curlPath);
  checkPath('trPath', f.trPath);
  const bad = fastPathSocketProblem(f.socket);
  if (bad) throw new RangeError(`socket ${JSON.stringify(f.socket)} ${bad}`);
  const curl = shQuote(f.curlPath);
  const sock = shQuote(f.socket);
  // In a bracket expression `;` must be escaped from the shell and `-` must come last.
  const safe = RAW_HEADER_SAFE_CHARS.replace(';', '\\;');
  if (!safe.endsWith('-')) throw new Error('RAW_HEADER_SAFE_CHARS must end with "-"');
  const vars = RAW_ENV_HEADERS.filter(([v]) => v !== 'CNI_COMMAND').map(([v]) => `"\${${v}-}"`).join(' ');
  const headers = RAW_ENV_HEADERS.map(([v, h]) => `-H "${h}: \${${v}-}"`).join(' ');
  const ok = (exit: number): string => `*"\${nl}200 ${RAW_OUTPUT_TYPE}; exit=${exit}") rc=${exit} ;;`;
  return [
    'case ${CNI_COMMAND-} in',
    '  ADD|DEL|CHECK|GC|STATUS) ;;',
    '  *) run_node "$@" ;;',
    'esac',
    '# Node for: arguments (--kind), stdin on a terminal, no curl, no tr, no socket file.',
    `if [ $# -ne 0 ] || [ -t 0 ] || [ ! -x ${curl} ] || [ ! -x ${shQuote(f.trPath)} ] || [ ! -S ${sock} ]; then run_node "$@"; fi`,
    '# Node for a CNI_* value with a character that may not go into a header as is.',
    `for v in ${vars}; do`,
    `  case $v in *[!${safe}]*) run_node ;; esac`,
    'done',
    '# stdin, byte for byte but NUL (sh cannot hold it): \\001, which is as invalid in JSON.',
    `stdin=$(${shQuote(f.trPath)} '\\000' '\\001' && echo .) || run_node`,
    'stdin=${stdin%.}',
    '# From here on, any doubt replays stdin into the Node plugin.',
    'replay() { printf \'%s\' "$stdin" | run_node; exit $?; }',
    `out=$(printf '%s' "$stdin" | ${curl} -q -s --noproxy '*' --unix-socket ${sock} --max-time ${CURL_MAX_TIME_S} \\`,
    `  -H 'Expect:' -H 'Content-Type: application/octet-stream' -H ${shQuote(`${RAW_PLUGIN_HEADER}: ${opts.kind}`)} -H ${shQuote(`${RAW_SOCKET_HEADER}: ${f.socket}`)} \\`,
    `  ${headers} \\`,
    `  --data-binary @- -w '\\n%{http_code} %{content_type}' ${shQuote(`http://weft${CNI_RAW_ENDPOINT}`)}) || replay`,
    'nl=\'',
    '\'',
    'case $out in',
    `  ${ok(0)}`,
    `  ${ok(1)}`,
    '  *) replay ;;',
    'esac',
    'printf \'%s\' "${out%"$nl"*}"',
    'exit $rc',
  ];
}

export function renderLauncher(opts: LauncherOptions): string {
  if (opts.kind !== 'weft' && opts.kind !== 'weft-ipam') throw new RangeError(`unknown plugin kind ${JSON.stringify(opts.kind)}`);
  checkPath('nodePath', opts.nodePath);
  checkPath('bundlePath', opts.bundlePath);
  const node = `${shQuote(opts.nodePath)} ${shQuote(opts.bundlePath)}`;
  const head = [
    '#!/bin/sh',
    `# weft CNI plugin "${opts.kind}" (generated by weft; do not edit).`,
    opts.fastPath
      ? '# VERSION is answered here, ADD/DEL/CHECK/GC/STATUS by the router through curl, the rest by Node; see src/core/cni/launcher.ts.'
      : '# VERSION is answered here without starting Node; see src/core/cni/launcher.ts.',
    ...(opts.fastPath ? ['set -u'] : []),
    'if [ "${CNI_COMMAND-}" = VERSION ]; then',
    // Drain stdin so the runtime never sees EPIPE while writing the config.
    '  cat >/dev/null',
    `  printf '%s\\n' ${shQuote(VERSION_JSON)}`,
    '  exit 0',
    'fi',
    `WEFT_PLUGIN_KIND=${shQuote(opts.kind)}`,
    'export WEFT_PLUGIN_KIND',
  ];
  if (!opts.fastPath) return [...head, `exec ${node} "$@"`, ''].join('\n');
  return [...head, `run_node() { exec ${node} "$@"; }`, ...fastPathLines(opts, opts.fastPath), ''].join('\n');
}
