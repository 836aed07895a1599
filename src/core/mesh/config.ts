import { InvalidConfigError } from '../errors.js';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_TTL, MAX_HELLO_BYTES } from './wire/constants.js';
import { MAX_HEARTBEAT_MS, MIN_HEARTBEAT_MS } from './wire/hello-codec.js';

/** Reconnect schedule for one connection target (conn/backoff.ts). */
export interface BackoffConfig {
  /** First retry delay. Weave: 2 s. */
  readonly initialMs: number;
  /** Growth per consecutive failure. Weave: 1.5. */
  readonly factor: number;
  /** Cap. Weave: 6 min. */
  readonly maxMs: number;
  /** ± fraction of random spread, so peers that lost the same host do not redial in lockstep. */
  readonly jitter: number;
  /** A connection that stayed up this long resets the schedule. Weave: 1 min. */
  readonly resetAfterMs: number;
}

export interface MeshConfig {
  readonly maxFrameBytes: number;
  /** Established connections a router keeps at most (inbound and outbound). */
  readonly connLimit: number;
  /** Dial peers learnt from topology gossip (`--no-discovery` turns it off). */
  readonly discovery: boolean;
  readonly handshakeTimeoutMs: number;
  /** Send something at least this often. Weave: 30 s. */
  readonly heartbeatIntervalMs: number;
  /** Close a connection that was silent this long. Weave: 60 s. */
  readonly deadAfterMs: number;
  /** Batch local connection changes into one topology version per this period. */
  readonly topologyFlushMs: number;
  /** Periodic anti-entropy: full gossip state and a topology digest to a few neighbours. Weave: 30 s. */
  readonly gossipIntervalMs: number;
  /** Routes are recomputed at most this often while topology churns. */
  readonly routeRecalcMs: number;
  /** An unreachable peer is forgotten after this long; its tombstone lives as long again. */
  readonly unreachableRemoveAfterMs: number;
  /** Hop limit put on relayed copies. */
  readonly ttl: number;
  readonly backoff: BackoffConfig;
}

export const DEFAULT_BACKOFF: BackoffConfig = { initialMs: 2_000, factor: 1.5, maxMs: 360_000, jitter: 0.2, resetAfterMs: 60_000 };

export const DEFAULT_MESH_CONFIG: MeshConfig = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  connLimit: 100,
  discovery: true,
  handshakeTimeoutMs: 10_000,
  heartbeatIntervalMs: 30_000,
  deadAfterMs: 60_000,
  topologyFlushMs: 500,
  gossipIntervalMs: 30_000,
  routeRecalcMs: 100,
  unreachableRemoveAfterMs: 600_000,
  ttl: DEFAULT_TTL,
  backoff: DEFAULT_BACKOFF,
};

export type MeshConfigInput = Partial<Omit<MeshConfig, 'backoff'>> & { backoff?: Partial<BackoffConfig> };

function positiveInt(name: string, v: number, min = 1, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new InvalidConfigError(`mesh ${name} must be an integer in ${min}..${max}, got ${v}`);
}

/** Defaults merged with `input`, validated so the router never runs with timers that contradict each other. */
export function meshConfig(input: MeshConfigInput = {}): MeshConfig {
  const c: MeshConfig = { ...DEFAULT_MESH_CONFIG, ...input, backoff: { ...DEFAULT_BACKOFF, ...input.backoff } };
  positiveInt('maxFrameBytes', c.maxFrameBytes, MAX_HELLO_BYTES, 0x7fffffff);
  positiveInt('connLimit', c.connLimit, 1, 10_000);
  positiveInt('handshakeTimeoutMs', c.handshakeTimeoutMs);
  positiveInt('heartbeatIntervalMs', c.heartbeatIntervalMs, MIN_HEARTBEAT_MS, MAX_HEARTBEAT_MS);
  positiveInt('deadAfterMs', c.deadAfterMs);
  if (c.deadAfterMs <= c.heartbeatIntervalMs) throw new InvalidConfigError(`mesh deadAfterMs (${c.deadAfterMs}) must exceed heartbeatIntervalMs (${c.heartbeatIntervalMs})`);
  positiveInt('topologyFlushMs', c.topologyFlushMs);
  positiveInt('gossipIntervalMs', c.gossipIntervalMs);
  positiveInt('routeRecalcMs', c.routeRecalcMs, 0);
  positiveInt('unreachableRemoveAfterMs', c.unreachableRemoveAfterMs);
  positiveInt('ttl', c.ttl, 1, 255);
  const b = c.backoff;
  positiveInt('backoff.initialMs', b.initialMs);
  positiveInt('backoff.maxMs', b.maxMs, b.initialMs);
  positiveInt('backoff.resetAfterMs', b.resetAfterMs);
  if (!(b.factor >= 1 && b.factor <= 10)) throw new InvalidConfigError(`mesh backoff.factor must be in 1..10, got ${b.factor}`);
  if (!(b.jitter >= 0 && b.jitter < 1)) throw new InvalidConfigError(`mesh backoff.jitter must be in [0, 1), got ${b.jitter}`);
  return c;
}
