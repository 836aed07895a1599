import { MeshMalformedError, MeshProtocolError } from '../../errors.js';

/**
 * Decoders promise to throw nothing but MeshProtocolError. Anything else
 * (a RangeError from a Buffer method we did not foresee) still means "this
 * peer sent bytes we cannot use", so it is reported as malformed rather than
 * escaping into the router as a crash.
 */
export function asProtocolError(e: unknown): MeshProtocolError {
  if (e instanceof MeshProtocolError) return e;
  return new MeshMalformedError(`undecodable message: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
