/**
 * Validation of the CNI_* environment, per verb, following libskel's table
 * (containernetworking/cni pkg/skel) with two deliberate differences:
 *  - CNI_PATH is never required: weft delegates to no other plugin, and
 *    requiring it would only break hand-driven invocations.
 *  - CNI_NETNS, when given, must be an absolute path: the daemon opens it
 *    from another working directory, so a relative path cannot work.
 * DEL accepts an empty CNI_NETNS because containerd sends one once the task
 * has exited. Every error names the variable (spec: code 4 "must name them").
 */
import { InvalidEnvError } from '../errors.js';
import type { CniCommand } from './protocol.js';
import { cniNameProblem, ifnameProblem } from './syntax.js';

export type CniVerb = CniCommand | 'VERSION';

export const CNI_VERBS: readonly CniVerb[] = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'];

export interface CniEnv {
  readonly command: CniVerb;
  /** Present for ADD/DEL/CHECK. */
  readonly containerId?: string;
  /** Present for ADD/CHECK; for DEL only when the runtime still knows it. */
  readonly netns?: string;
  /** Present for ADD/DEL/CHECK. */
  readonly ifname?: string;
  /** Raw CNI_ARGS when non-empty (parse with parseCniArgs). */
  readonly args?: string;
  /** Raw CNI_PATH when non-empty. */
  readonly path?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

const REQUIRED: Readonly<Record<CniVerb, readonly string[]>> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: [],
  STATUS: [],
  VERSION: [],
};

/** Which verb CNI_COMMAND names; code 4 when it is missing or unknown. */
export function parseCommand(value: string | undefined): CniVerb {
  if (value === undefined || value === '') {
    throw new InvalidEnvError('required environment variable CNI_COMMAND is missing', {
      hint: `weft-cni is a CNI plugin run by a container runtime; set CNI_COMMAND to one of ${CNI_VERBS.join(', ')}`,
    });
  }
  if (!(CNI_VERBS as readonly string[]).includes(value)) {
    throw new InvalidEnvError(`unknown CNI_COMMAND "${value}": expected one of ${CNI_VERBS.join(', ')}`);
  }
  return value as CniVerb;
}

function nonEmpty(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * Validates the environment for the verb in CNI_COMMAND. Variables a verb
 * does not use are not validated (podman sends `CNI_NETNS=dummy` with
 * VERSION, and GC/STATUS get no container at all) and are not returned.
 */
export function validateEnv(env: Env): CniEnv {
  const command = parseCommand(env['CNI_COMMAND']);
  const missing = REQUIRED[command].filter((name) => nonEmpty(env, name) === undefined);
  if (missing.length > 0) {
    const s = missing.length === 1 ? '' : 's';
    throw new InvalidEnvError(`required environment variable${s} ${missing.join(', ')} missing for CNI_COMMAND=${command}`);
  }
  if (command === 'VERSION') return { command };

  const args = nonEmpty(env, 'CNI_ARGS');
  const path = nonEmpty(env, 'CNI_PATH');
  const common = { ...(args === undefined ? {} : { args }), ...(path === undefined ? {} : { path }) };
  if (command === 'GC' || command === 'STATUS') return { command, ...common };

  const containerId = nonEmpty(env, 'CNI_CONTAINERID')!;
  const idProblem = cniNameProblem(containerId);
  if (idProblem) throw new InvalidEnvError(`CNI_CONTAINERID "${containerId}" ${idProblem}`);

  const ifname = nonEmpty(env, 'CNI_IFNAME')!;
  const ifProblem = ifnameProblem(ifname);
  if (ifProblem) throw new InvalidEnvError(`CNI_IFNAME "${ifname}" ${ifProblem}`);

  const netns = nonEmpty(env, 'CNI_NETNS');
  if (netns !== undefined && !netns.startsWith('/')) {
    throw new InvalidEnvError(`CNI_NETNS "${netns}" must be an absolute path to a network namespace (e.g. /run/netns/NAME or /proc/PID/ns/net)`);
  }
  return { command, containerId, ifname, ...(netns === undefined ? {} : { netns }), ...common };
}
