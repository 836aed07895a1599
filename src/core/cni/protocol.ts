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
/**
 * How long the plugin waits for the daemon's answer: ADD may wait for an
 * address claim from other peers, and runtimes have their own, longer
 * deadlines. The daemon applies the same deadline on CNI_RAW_ENDPOINT.
 */
export const DAEMON_TIMEOUT_MS = 120_000;

/**
 * POST /v1/cni/raw: the whole plugin run in the daemon, for the sh launcher
 * (src/core/cni/launcher.ts), which cannot parse JSON. The body is the
 * runtime's stdin, byte for byte; the CNI_* variables travel in the headers
 * below (absent header = unset variable) and the plugin kind and the socket
 * the launcher used in RAW_PLUGIN_HEADER / RAW_SOCKET_HEADER. The answer is
 * 200 with content type `RAW_OUTPUT_TYPE; exit=N` (also in RAW_EXIT_HEADER)
 * and, as the body, exactly what the plugin prints; any other answer means
 * "run the Node plugin instead" (421: the configuration names another socket).
 */
export const CNI_RAW_ENDPOINT = '/v1/cni/raw';
export const RAW_OUTPUT_TYPE = 'application/vnd.weft.cni-output';
export const RAW_EXIT_HEADER = 'X-Cni-Exit';
export const RAW_PLUGIN_HEADER = 'X-Weft-Plugin';
export const RAW_SOCKET_HEADER = 'X-Weft-Socket';
/** CNI_* variable → request header, in the order the launcher sends them. */
export const RAW_ENV_HEADERS: readonly (readonly [env: string, header: string])[] = [
  ['CNI_COMMAND', 'X-Cni-Command'],
  ['CNI_CONTAINERID', 'X-Cni-Containerid'],
  ['CNI_NETNS', 'X-Cni-Netns'],
  ['CNI_IFNAME', 'X-Cni-Ifname'],
  ['CNI_ARGS', 'X-Cni-Args'],
  ['CNI_PATH', 'X-Cni-Path'],
];
/**
 * The only characters the launcher puts into a header value; a CNI_* value
 * with anything else goes to the Node plugin. Listed, not ranges, so that no
 * locale can widen a `case` pattern. No space (HTTP trims it), no CR/LF.
 */
export const RAW_HEADER_SAFE_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/:;=,@+%-';
