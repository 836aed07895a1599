/** The cluster IPAM ring (docs/ring.md). Pure: no I/O, no clocks — time comes in as arguments. */
export type { Entry, Genesis, PeerId, PeerRecord, RetireReason, Retirement, Ring, Segment } from './types.js';
export { PEER_ID_MAX, comparePeerIds, isValidPeerId } from './types.js';
export { entryIndexAt, isLive, livePeers, totalSize } from './model.js';
export { compareEntries, compareGenesis } from './order.js';
export { merge, mergeAll, sameRange } from './merge.js';
export { type Resolution, orphanedRanges, owner, ownerDetail, ownedRanges, ownedSize, ownedSizes, ownsAll, resolvePeer, segments } from './resolve.js';
export { MAX_FOUNDERS, seedRing, shareOffsets, splitRing } from './seed.js';
export { grant } from './grant.js';
export { adoptInherited, heartbeat, heartbeatOf, isRetired, join } from './membership.js';
export {
  type ReclaimCandidate, type ReclaimOptions, adoptOrphans, defaultHeir, liveMembers, reclaimCandidates, reclaimExpired, reclaimable, removePeer, resetPeer, voteExpired,
} from './retire.js';
export { type LeaseConfig, LeaseTracker, type Reachability } from './lease.js';
export { type AskOptions, blockSizeFromPrefix, choosePeerToAskForSpace, defaultBlockSize, freeByPeer, freeFor, pickDonation, reportFree } from './space.js';
export { type OwnershipChange, disownedAddresses, ownershipChanges } from './diff.js';
export { ringViolations } from './invariants.js';
export { MAX_RING_PEERS, MAX_RING_TOKENS, RING_WIRE_VERSION, type RingWire, decodeRing, encodeRing } from './codec.js';
export {
  type AcceptorRow, type Accepted, type Ballot, type ConsensusState, type ConsensusTable, type ConsensusWire, DEFAULT_CONSENSUS_RETRY_MS, type Decision,
  compareBallots, consensusRing, decodeConsensus, encodeConsensus, mergeTables, quorumSize, receiveConsensus, receiveConsensusWire, startConsensus, stepConsensus,
} from './consensus.js';
export { type InitialClaim, type IpallocInit, claimInitial, parseIpallocInit } from './init.js';
