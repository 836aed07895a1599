/**
 * The CNI plugin executables (`weft`, `weft-ipam`) are thin clients: they do
 * the checks that need nothing but the environment and stdin (the ones
 * libskel does for Go plugins), then POST a CniRequest to the daemon, which
 * does the work and answers with the result already in the negotiated
 * version. This module is the whole plugin minus process I/O, so it can be
 * tested with a fake `send`.
 *
 * Keep the import graph tiny: this is bundled into dist/weft-cni.cjs and
 * Node's start-up plus module loading is paid on every ADD/DEL. No schema
 * library, no config parser — the daemon validates the configuration.
 */
import { DecodeError, InternalError, InvalidConfigError, IoFailureError, NotAvailableError, PermissionDeniedError, TryAgainError, type WeftError, isWeftError, toWeftError } from '../core/errors.js';
import { parseCniArgs } from '../core/cni/args.js';
import { parseCommand, validateEnv } from '../core/cni/env.js';
import { cniErrorObject, detailsWithHint, renderCniError } from '../core/cni/error-json.js';
import { type CniCommand, type CniRequest, DEFAULT_SOCKET, type PluginKind } from '../core/cni/protocol.js';
import { cniNameProblem } from '../core/cni/syntax.js';
import { CURRENT_VERSION, VERSION_JSON, pickVersion, requireVersionFor } from '../core/cni/versions.js';

export interface PluginDeps {
  /** POSTs `req` to the daemon at `socketPath`; rejects with an error carrying a system `code` when it cannot connect. */
  send(socketPath: string, req: CniRequest): Promise<{ status: number; body: unknown }>;
}

export interface PluginOutput {
  readonly stdout: string;
  readonly exitCode: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Decodes stdin. Runtimes always send one JSON object; anything else is
 * code 6 with a message that says what was received, because "unexpected
 * end of JSON input" alone does not tell an operator that stdin was empty.
 */
export function decodeConfig(stdin: string): Obj {
  if (stdin.trim() === '') throw new DecodeError('no network configuration on stdin: expected a JSON object, got empty input');
  let v: unknown;
  try {
    v = JSON.parse(stdin);
  } catch (e) {
    const head = stdin.length > 60 ? `${stdin.slice(0, 57)}...` : stdin;
    throw new DecodeError(`network configuration on stdin is not valid JSON (${(e as Error).message}): ${JSON.stringify(head)}`);
  }
  if (!isObj(v)) throw new DecodeError(`network configuration on stdin must be a JSON object, got ${Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v}`);
  return v;
}

/**
 * The daemon socket named by the configuration: `socket` for the weft
 * plugin, `ipam.socket` for weft-ipam (the top level belongs to the main
 * plugin there). Must be absolute: the runtime's cwd is arbitrary.
 */
export function socketFromConfig(kind: PluginKind, config: Obj): string {
  let holder = config;
  let path = 'socket';
  if (kind === 'weft-ipam') {
    const ipam = config['ipam'];
    if (!isObj(ipam)) throw new InvalidConfigError(`ipam: expected an object with "type": "weft-ipam", got ${JSON.stringify(ipam) ?? 'nothing'}`);
    holder = ipam;
    path = 'ipam.socket';
  }
  const s = holder['socket'];
  if (s === undefined) return DEFAULT_SOCKET;
  if (typeof s !== 'string' || !s.startsWith('/')) throw new InvalidConfigError(`${path}: expected an absolute path to the weft socket, got ${JSON.stringify(s)}`);
  return s;
}

/** libskel's network-name check (code 7), done here so a bad config never reaches the daemon. */
function checkName(config: Obj): void {
  const name = config['name'];
  if (name === undefined || name === '') throw new InvalidConfigError('name: the network configuration has no name');
  if (typeof name !== 'string') throw new InvalidConfigError(`name: expected a string, got ${JSON.stringify(name)}`);
  const problem = cniNameProblem(name);
  if (problem) throw new InvalidConfigError(`name: network name "${name}" ${problem}`);
}

/** Connection failures that mean "no daemon there" rather than "the daemon failed". */
const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED']);

/** Maps a transport failure to the CNI error the runtime should see. */
export function transportError(command: CniCommand, socket: string, e: unknown): WeftError {
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : '';
  const detail = e instanceof Error ? e.message : String(e);
  if (UNREACHABLE.has(code)) {
    const msg = `weft router not reachable at ${socket}: is \`weft launch\` running?`;
    // STATUS asks exactly "can you do an ADD now?": 50 is the spec's answer.
    // For the other verbs the condition is transient from the runtime's view.
    return command === 'STATUS' ? new NotAvailableError(msg, { details: detail }) : new TryAgainError(msg, { details: detail });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new PermissionDeniedError(`permission denied connecting to the weft router at ${socket}`, { details: detail, hint: 'CNI plugins must run as root (or as a user allowed on the socket)' });
  }
  if (code === 'ETIMEDOUT') return new TryAgainError(`the weft router at ${socket} did not answer in time`, { details: detail });
  if (code === 'ECONNRESET' || code === 'EPIPE') return new TryAgainError(`the weft router at ${socket} closed the connection`, { details: detail });
  if (code === 'EBADRESPONSE') return new InternalError(`the weft router at ${socket} sent an unreadable answer`, { details: detail });
  return new IoFailureError(`talking to the weft router at ${socket} failed`, { details: detail });
}

function ok(stdout: string): PluginOutput {
  return { stdout, exitCode: 0 };
}

function failure(err: WeftError, cniVersion: string): PluginOutput {
  return { stdout: renderCniError(err, cniVersion), exitCode: 1 };
}

/** What to print when stdin could not be read at all (code 5). */
export function stdinFailure(e: unknown): PluginOutput {
  const msg = e instanceof Error ? e.message : String(e);
  return failure(new IoFailureError(`error reading the network configuration from stdin: ${msg}`), CURRENT_VERSION);
}

/** Turns the daemon's answer into the plugin's output. */
function fromDaemon(command: CniCommand, status: number, body: unknown, cniVersion: string): PluginOutput {
  if (status >= 200 && status < 300) {
    if (command !== 'ADD') return ok('');
    const result = isObj(body) ? body['result'] : undefined;
    if (!isObj(result)) return failure(new InternalError(`the weft router answered ADD without a result (HTTP ${status})`), cniVersion);
    return ok(`${JSON.stringify(result)}\n`);
  }
  const e = isObj(body) ? body['error'] : undefined;
  if (isObj(e) && Number.isInteger(e['cniCode']) && typeof e['message'] === 'string') {
    // The API keeps the hint apart; CNI has only `details`, so they travel together.
    const details = detailsWithHint(typeof e['details'] === 'string' ? e['details'] : undefined, typeof e['hint'] === 'string' ? e['hint'] : undefined);
    return { stdout: `${JSON.stringify(cniErrorObject(cniVersion, e['cniCode'] as number, e['message'], details))}\n`, exitCode: 1 };
  }
  return failure(new InternalError(`the weft router answered HTTP ${status} without a CNI error`, { details: JSON.stringify(body)?.slice(0, 500) }), cniVersion);
}

/**
 * Runs one plugin invocation. Order of checks: verb (4), stdin decoding (6),
 * environment (4), network name (7), version (1), CNI_ARGS (4/2), socket
 * (7); stdin is decoded before the environment is checked only so that
 * every later error can carry the configuration's cniVersion.
 */
export async function runPlugin(kind: PluginKind, env: NodeJS.ProcessEnv, stdin: string, deps: PluginDeps): Promise<PluginOutput> {
  let cniVersion: string = CURRENT_VERSION;
  try {
    if (env['CNI_COMMAND'] === 'VERSION') return ok(`${VERSION_JSON}\n`);
    // A missing or unknown verb is reported before stdin is looked at.
    parseCommand(env['CNI_COMMAND']);
    const config = decodeConfig(stdin);
    if (typeof config['cniVersion'] === 'string' && config['cniVersion'] !== '') cniVersion = config['cniVersion'];
    const cniEnv = validateEnv(env);
    const command = cniEnv.command as CniCommand;
    checkName(config);
    const version = pickVersion(config);
    cniVersion = version;
    requireVersionFor(command, version);
    // Not on DEL: a DEL must be able to tear down whatever an ADD refused (e.g. for a bad MAC=).
    if (command === 'ADD' || command === 'CHECK') parseCniArgs(cniEnv.args);
    const socket = socketFromConfig(kind, config);

    const req: CniRequest = {
      plugin: kind,
      command,
      env: {
        ...(cniEnv.containerId === undefined ? {} : { containerId: cniEnv.containerId }),
        ...(cniEnv.netns === undefined ? {} : { netns: cniEnv.netns }),
        ...(cniEnv.ifname === undefined ? {} : { ifname: cniEnv.ifname }),
        ...(cniEnv.args === undefined ? {} : { args: cniEnv.args }),
        ...(cniEnv.path === undefined ? {} : { path: cniEnv.path }),
      },
      config,
    };
    let res: { status: number; body: unknown };
    try {
      res = await deps.send(socket, req);
    } catch (e) {
      return failure(transportError(command, socket, e), cniVersion);
    }
    return fromDaemon(command, res.status, res.body, cniVersion);
  } catch (e) {
    return failure(isWeftError(e) ? e : toWeftError(e), cniVersion);
  }
}
