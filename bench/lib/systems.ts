/**
 * The two systems under test, each driven the way a container runtime on
 * its host drives it: exec the plugin binary with the CNI environment and
 * the network configuration on stdin, from inside the host's netns.
 *
 *  - weft: the sh launcher `weft install-cni` writes (VERSION answered by sh,
 *    the other verbs sent with curl to `weft launch` running in the same host
 *    netns; Node only as the fallback).
 *  - reference: Debian's containernetworking-plugins `bridge` with
 *    `host-local` IPAM, the configuration of the research baseline
 *    (docs: /work/shared/research/real-clients.md §2).
 */
import type { Netns } from '../../test/helpers/world.js';
import type { ExecResult, ExecRunner } from './runner.js';

export type CniVerb = 'ADD' | 'CHECK' | 'DEL';
export type SystemName = 'weft' | 'reference';

export const PLUGIN_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface CniSystem {
  readonly name: SystemName;
  readonly host: Netns;
  readonly runner: ExecRunner;
  /** Runs one verb for one container; throws with the plugin's output on failure. */
  call(verb: CniVerb, containerId: string, netns: Netns, prevResult?: unknown): Promise<ExecResult>;
}

function cniEnv(verb: string, containerId: string, netns: Netns, cniPath: string): Record<string, string> {
  return {
    PATH: PLUGIN_PATH_ENV,
    CNI_COMMAND: verb,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: netns.path,
    CNI_IFNAME: 'eth0',
    CNI_PATH: cniPath,
    // What podman 4 sends (real-clients.md §1); weft takes the pod name as the container's identity.
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAME=${containerId}`,
  };
}

function withPrev(conf: Record<string, unknown>, prevResult: unknown): string {
  return JSON.stringify(prevResult === undefined ? conf : { ...conf, prevResult });
}

export function weftSystem(opts: { host: Netns; runner: ExecRunner; binDir: string; socket: string; ipMasq: boolean }): CniSystem {
  // The plugin entry of the conflist `weft install-cni` writes, as a runtime hands it to the plugin.
  const conf = { cniVersion: '1.0.0', name: 'weft', type: 'weft', socket: opts.socket, ipMasq: opts.ipMasq };
  return {
    name: 'weft',
    host: opts.host,
    runner: opts.runner,
    call: (verb, containerId, netns, prev) => opts.runner.execOk(
      { file: `${opts.binDir}/weft`, env: cniEnv(verb, containerId, netns, opts.binDir), input: withPrev(conf, prev) },
      `weft ${verb} ${containerId}`,
    ),
  };
}

export function referenceSystem(opts: { host: Netns; runner: ExecRunner; pluginDir: string; dataDir: string; ipMasq: boolean; subnet: string; gateway: string }): CniSystem {
  const conf = {
    cniVersion: '1.0.0',
    name: 'refbench',
    type: 'bridge',
    bridge: 'wtbr0',
    isGateway: true,
    ipMasq: opts.ipMasq,
    hairpinMode: true,
    ipam: { type: 'host-local', dataDir: opts.dataDir, ranges: [[{ subnet: opts.subnet, gateway: opts.gateway }]], routes: [{ dst: '0.0.0.0/0' }] },
  };
  return {
    name: 'reference',
    host: opts.host,
    runner: opts.runner,
    call: (verb, containerId, netns, prev) => opts.runner.execOk(
      { file: `${opts.pluginDir}/bridge`, env: cniEnv(verb, containerId, netns, opts.pluginDir), input: withPrev(conf, prev) },
      `reference bridge ${verb} ${containerId}`,
    ),
  };
}
