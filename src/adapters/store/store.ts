import type { AllocationView } from '../../core/ipam/allocator.js';
import type { Attachment } from '../../core/ipam/attachment.js';
import type { Allocation, Pool, Reservation, Subnet } from '../../core/ipam/model.js';

/** Reads and writes of one transaction. All calls are synchronous inside it. */
export interface StoreTx extends AllocationView {
  getSubnet(name: string): Subnet | undefined;
  listSubnets(): Subnet[];
  putSubnet(s: Subnet): void;
  deleteSubnet(name: string): void;

  getPool(name: string): Pool | undefined;
  listPools(subnet?: string): Pool[];
  putPool(p: Pool): void;
  deletePool(name: string): void;

  listReservations(subnet?: string): Reservation[];
  putReservation(r: Reservation): void;
  deleteReservation(subnet: string, ip: string): void;

  listAllocations(subnet?: string): Allocation[];
  putAllocation(a: Allocation): void;
  deleteAllocation(subnet: string, ip: string): void;
  setCursor(subnet: string, scope: string, value: bigint): void;
  clearCursors(subnet: string): void;

  getAttachment(containerId: string, ifname: string): Attachment | undefined;
  listAttachments(): Attachment[];
  putAttachment(a: Attachment): void;
  deleteAttachment(containerId: string, ifname: string): void;

  getMeta<T>(key: string): T | undefined;
  putMeta(key: string, value: unknown): void;
  deleteMeta(key: string): void;
  listMeta<T>(prefix: string): { key: string; value: T }[];
}

/**
 * The embedded database. `write` runs its function in one serialized,
 * durable transaction: when it returns, the change is on disk; when the
 * function throws, nothing of it is.
 */
export interface Store {
  readonly path: string;
  read<T>(fn: (tx: StoreTx) => T): T;
  write<T>(fn: (tx: StoreTx) => T): T;
  close(): Promise<void>;
}

export const SCHEMA_VERSION = 1;
