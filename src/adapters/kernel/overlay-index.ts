/**
 * The overlay data plane in one import (docs/overlay.md): the pure planner,
 * diff and MTU policy from src/core/dataplane, and the kernel adapter.
 */
export * from '../../core/dataplane/overlay-types.js';
export { planOverlay, vniFor, relayVniFor, containerMtuFor, encapsulatedSize, vxlanOverhead, DATA_PORT_FLAGS, RELAY_PORT_FLAGS } from '../../core/dataplane/overlay-plan.js';
export { diffOverlay, applyOverlayChanges, countChanges, restrictToNetworks, type OverlayChangeCounts } from '../../core/dataplane/overlay-diff.js';
export { renderOverlayChanges } from '../../core/dataplane/overlay-render.js';
export { type OverlayFilterCounters, OVERLAY_NFT_FAMILY, OVERLAY_NFT_TABLE } from '../../core/dataplane/overlay-filter.js';
export {
  type PathMtuPolicy,
  type PathMtuTarget,
  DEFAULT_PATH_MTU_POLICY,
  duePathMtuProbes,
  mergePathMtuResults,
  pathMtuTargets,
} from '../../core/dataplane/overlay-mtu.js';
export { vxlanNameFor, vxlanRelayNameFor } from '../../core/dataplane/names.js';
export {
  type KernelOverlayOptions,
  type OverlayApplyReport,
  type OverlayBatchFailure,
  type OverlayDataPlane,
  type OverlayLogger,
  type OverlayReadResult,
  type OverlaySkip,
  type OverlaySyncResult,
  KernelOverlay,
} from './overlay-kernel.js';
export { checkPathMtu, probePathMtu, type PathMtuProbeOptions } from './overlay-mtu-probe.js';
