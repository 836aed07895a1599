/**
 * The mesh's public surface: what the daemon, the TCP adapter, the state
 * machines that gossip and the benchmark import. docs/mesh.md is the
 * specification.
 */
export { Router } from './router.js';
export type {
  ConnHandle, ConnSink, ConnectionStatus, MeshEvent, MeshHost, MeshStats, MeshStatus, PeerStatus, RouterOptions, TargetStatus,
} from './router-types.js';
export { DEFAULT_MESH_CONFIG, meshConfig, type BackoffConfig, type MeshConfig, type MeshConfigInput } from './config.js';
export { clusterFingerprint, formatClusterId } from './cluster-id.js';
export { DEFAULT_MESH_PORT, formatPeerAddress, normalizePeerAddress, tryParsePeerAddress, type PeerAddress } from './address.js';
export { isNickname, isPeerId, peerIdFromBytes, tryParsePeerId, type PeerId } from './peer-id.js';
export type { GossipChannelState, GossipData, GossipReceiver, GossipSender } from './gossip/interfaces.js';
export { GCounter, GCounterData } from './gossip/g-counter.js';
export { LwwMap, LwwMapData } from './gossip/lww-map.js';
export { CloseCode, PROTOCOL_MAX_VERSION, PROTOCOL_MIN_VERSION, closeCodeName } from './wire/constants.js';
export { simulateConvergence, type ConvergenceOptions, type ConvergenceResult } from './sim/simulate.js';
