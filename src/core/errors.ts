/**
 * One error type per condition, each with a stable string `code` (for the
 * HTTP API, the CLI and logs) and the CNI spec's numeric code it maps to when
 * it crosses the plugin boundary. Plugin-specific CNI codes are >= 100 and are
 * documented in docs/errors.md.
 */
export type CniCode = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 11 | 50 | 51 | 100 | 101 | 102 | 103 | 104 | 105 | 106 | 107 | 108 | 109 | 999;

export class WeftError extends Error {
  /** Stable machine-readable code, e.g. `SUBNET_EXHAUSTED`. */
  readonly code: string;
  /** CNI error code used when this error is reported by a plugin. */
  readonly cniCode: CniCode;
  /** HTTP status used by the daemon API. */
  readonly status: number;
  /** What the user can do about it (CLI prints it). */
  readonly hint: string | undefined;
  /** Extra detail; becomes CNI `details`. */
  readonly details: string | undefined;

  constructor(code: string, cniCode: CniCode, status: number, message: string, opts: { hint?: string; details?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.cniCode = cniCode;
    this.status = status;
    this.hint = opts.hint;
    this.details = opts.details;
  }

  toJSON(): { code: string; cniCode: number; message: string; hint?: string; details?: string } {
    return { code: this.code, cniCode: this.cniCode, message: this.message, ...(this.hint ? { hint: this.hint } : {}), ...(this.details ? { details: this.details } : {}) };
  }
}

type Opts = { hint?: string; details?: string; cause?: unknown };

// ---- CNI protocol conditions (spec codes) ----
export class IncompatibleVersionError extends WeftError { constructor(m: string, o?: Opts) { super('INCOMPATIBLE_CNI_VERSION', 1, 400, m, o); } }
export class UnsupportedFieldError extends WeftError { constructor(m: string, o?: Opts) { super('UNSUPPORTED_FIELD', 2, 400, m, o); } }
export class UnknownContainerError extends WeftError { constructor(m: string, o?: Opts) { super('UNKNOWN_CONTAINER', 3, 404, m, o); } }
export class InvalidEnvError extends WeftError { constructor(m: string, o?: Opts) { super('INVALID_ENVIRONMENT', 4, 400, m, o); } }
export class IoFailureError extends WeftError { constructor(m: string, o?: Opts) { super('IO_FAILURE', 5, 500, m, o); } }
export class DecodeError extends WeftError { constructor(m: string, o?: Opts) { super('DECODE_FAILED', 6, 400, m, o); } }
export class InvalidConfigError extends WeftError { constructor(m: string, o?: Opts) { super('INVALID_CONFIG', 7, 400, m, o); } }
export class TryAgainError extends WeftError { constructor(m: string, o?: Opts) { super('TRY_AGAIN', 11, 503, m, o); } }
export class NotAvailableError extends WeftError { constructor(m: string, o?: Opts) { super('NOT_AVAILABLE', 50, 503, m, o); } }
export class DegradedError extends WeftError { constructor(m: string, o?: Opts) { super('DEGRADED', 51, 503, m, o); } }

// ---- weft-specific conditions (CNI codes >= 100) ----
export class SubnetExhaustedError extends WeftError { constructor(m: string, o?: Opts) { super('SUBNET_EXHAUSTED', 100, 409, m, o); } }
export class AddressUnavailableError extends WeftError { constructor(m: string, o?: Opts) { super('ADDRESS_UNAVAILABLE', 101, 409, m, o); } }
/** In a cluster: this host's share of a ring-managed subnet is full (the router asks peers for more and retries once). */
export class ShareExhaustedError extends WeftError { constructor(m: string, o?: Opts) { super('SUBNET_SHARE_EXHAUSTED', 100, 409, m, o); } }
/** In a cluster: an explicit or reserved address lies in another host's share (the router claims it from the owner and retries once). */
export class AddressElsewhereError extends WeftError { constructor(m: string, readonly address: string, o?: Opts) { super('ADDRESS_OWNED_ELSEWHERE', 101, 409, m, o); } }
export class QuotaExceededError extends WeftError { constructor(m: string, o?: Opts) { super('QUOTA_EXCEEDED', 102, 409, m, o); } }
export class PermissionDeniedError extends WeftError { constructor(m: string, o?: Opts) { super('PERMISSION_DENIED', 103, 403, m, o); } }
export class NotFoundError extends WeftError { constructor(m: string, o?: Opts) { super('NOT_FOUND', 104, 404, m, o); } }
export class ConflictError extends WeftError { constructor(m: string, o?: Opts) { super('CONFLICT', 105, 409, m, o); } }
export class InterfaceExistsError extends WeftError { constructor(m: string, o?: Opts) { super('INTERFACE_EXISTS', 106, 409, m, o); } }
export class KernelError extends WeftError { constructor(m: string, o?: Opts) { super('KERNEL_FAILED', 107, 500, m, o); } }
export class FeatureUnavailableError extends WeftError { constructor(m: string, o?: Opts) { super('FEATURE_UNAVAILABLE', 107, 501, m, o); } }
export class CheckFailedError extends WeftError { constructor(m: string, o?: Opts) { super('CHECK_FAILED', 108, 409, m, o); } }
/** A Linux bridge takes at most 1023 ports: the network is full on this host. */
export class BridgeFullError extends WeftError { constructor(m: string, o?: Opts) { super('BRIDGE_FULL', 109, 409, m, o); } }
export class BadRequestError extends WeftError { constructor(m: string, o?: Opts) { super('BAD_REQUEST', 7, 400, m, o); } }
export class InternalError extends WeftError { constructor(m: string, o?: Opts) { super('INTERNAL', 999, 500, m, o); } }

// ---- mesh: the router-to-router control protocol (src/core/mesh, docs/mesh.md) ----
// A peer that sends one of these gets its connection closed with the reason;
// the router keeps running. They never reach a CNI caller, hence cniCode 5
// (I/O failure), and 502 because a peer, not the API client, misbehaved.
export class MeshProtocolError extends WeftError { constructor(code: string, m: string, o?: Opts) { super(code, 5, 502, m, o); } }
/** A frame declared longer than the configured maximum (rejected before allocating it). */
export class MeshFrameTooLargeError extends MeshProtocolError { constructor(m: string, o?: Opts) { super('MESH_FRAME_TOO_LARGE', m, o); } }
/** The stream ended inside a frame, or a field runs past the end of its frame. */
export class MeshTruncatedError extends MeshProtocolError { constructor(m: string, o?: Opts) { super('MESH_TRUNCATED', m, o); } }
/** Bytes that are not a valid frame or message: bad magic, unknown kind, out-of-range field, trailing bytes. */
export class MeshMalformedError extends MeshProtocolError { constructor(m: string, o?: Opts) { super('MESH_MALFORMED', m, o); } }
/** The two peers share no protocol version. */
export class MeshVersionError extends MeshProtocolError { constructor(m: string, o?: Opts) { super('MESH_VERSION_MISMATCH', m, o); } }
/** The peer answered our hello with CLOSE: it refused the connection (self, other cluster, name collision, limit, duplicate). */
export class MeshHandshakeRejectedError extends MeshProtocolError { constructor(m: string, o?: Opts) { super('MESH_HANDSHAKE_REJECTED', m, o); } }

// ---- cluster IPAM ring (src/core/ring, docs/ring.md) ----
/** Ring or consensus state from a peer (or a file) that is not well-formed; nothing of it was applied. */
export class RingInvalidError extends WeftError { constructor(m: string, o?: Opts) { super('RING_INVALID', 6, 400, m, o); } }
/** Two rings over different --ipalloc-range values: a configuration error, never merged. */
export class RingRangeMismatchError extends WeftError { constructor(m: string, o?: Opts) { super('RING_RANGE_MISMATCH', 7, 409, m, o); } }
/** A ring change attempted by a peer that does not own the addresses concerned. */
export class NotOwnerError extends WeftError { constructor(m: string, o?: Opts) { super('RING_NOT_OWNER', 105, 409, m, o); } }
/** The peer was retired from the ring (reclaimed, rmpeer, reset); it must rejoin under a new peer id. */
export class PeerRetiredError extends WeftError { constructor(m: string, o?: Opts) { super('PEER_RETIRED', 105, 409, m, o); } }
/** A ring gossip payload that does not fit one mesh frame (too many tokens or peers); it is not sent (src/core/ipam-ring, docs/ring.md). */
export class RingTooLargeError extends WeftError { constructor(m: string, o?: Opts) { super('RING_TOO_LARGE', 5, 413, m, o); } }

export function isWeftError(e: unknown): e is WeftError {
  return e instanceof WeftError;
}

/** Wraps anything thrown into a WeftError so boundaries can report it in protocol form. */
export function toWeftError(e: unknown): WeftError {
  if (e instanceof WeftError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new InternalError(msg, { cause: e });
}

// ---- overlay data plane (src/core/dataplane/overlay-*.ts, docs/overlay.md) ----
/** The kernel cannot create VXLAN devices (module missing or not permitted): no cross-host data plane on this host. */
export class VxlanUnavailableError extends WeftError { constructor(m: string, o?: Opts) { super('VXLAN_UNAVAILABLE', 107, 501, m, o); } }
/** Two networks would use the same VNI (hash collision or an override): one of them needs another `vni`. */
export class VniConflictError extends WeftError { constructor(m: string, o?: Opts) { super('VNI_CONFLICT', 7, 409, m, o); } }
/** Some overlay changes failed in the kernel; the rest were applied. `report` says what was done. */
export class OverlayApplyError extends WeftError {
  readonly report: unknown;
  constructor(m: string, report: unknown, o?: Opts) { super('OVERLAY_APPLY_FAILED', 107, 500, m, o); this.report = report; }
}
