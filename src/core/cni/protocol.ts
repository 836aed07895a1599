/**
 * The contract between the CNI plugin executables and the daemon:
 * POST /v1/cni with a CniRequest body. The daemon answers 200 with
 * CniResponseOk (the result already rendered in the config's cniVersion, or
 * no result for DEL/CHECK/GC/STATUS) or a non-2xx with CniResponseError.
 */
export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS';
export type PluginKind = 'weft' | 'weft-ipam';

export interface CniRequest {
  readonly plugin: PluginKind;
  readonly command: CniCommand;
  readonly env: {
    readonly containerId?: string;
    readonly netns?: string;
    readonly ifname?: string;
    readonly args?: string;
    readonly path?: string;
  };
  /** The decoded stdin network configuration, unvalidated. */
  readonly config: unknown;
}

export interface CniResponseOk {
  readonly result?: unknown;
}

export interface CniResponseError {
  readonly error: { readonly cniCode: number; readonly code: string; readonly message: string; readonly details?: string };
}

export const CNI_ENDPOINT = '/v1/cni';
export const DEFAULT_SOCKET = '/run/weft/weft.sock';
