/**
 * The cluster IPAM engine (docs/ring.md, "The engine"): a RingNode per
 * router, plugged into the mesh as the `ipam.ring` and `ipam.consensus`
 * gossip channels. Pure: no I/O; time and randomness are injected.
 */
export {
  type ChangeCause, type ChannelRegistry, type ReplyEvent, type RequestKind, type RequestResult, type RingChange, RingNode, type RingNodeEvent, type RingNodeOptions,
  type RingNodeState, type RingNodeStatus,
} from './node.js';
export {
  CONSENSUS_CHANNEL, ConsensusGossip, DEFAULT_MAX_PAYLOAD_BYTES, type DecodedRingState, PAYLOAD_VERSION, type PersistedRingState, RING_CHANNEL, type RefuseReason, RingGossip,
  type RingMessage, decodeConsensusPayload, decodePersistedState, decodeRingMessage, encodeRingMessage,
} from './payload.js';
export { canApplyDelta, onlyHeartbeatsDiffer, peerDelta, ringDelta, sameGenesis, subRing } from './delta.js';
export { generationOf, nextRingId, nicknameCandidates, ringIdFor } from './ring-id.js';
