/** The stored shape of a CNI result (the 1.1.0 form); kept opaque to IPAM. */
export type CniResultLike = Record<string, unknown>;
