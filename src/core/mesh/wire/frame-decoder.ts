import { MeshFrameTooLargeError, MeshMalformedError, MeshTruncatedError, type MeshProtocolError } from '../../errors.js';
import { FRAME_HEADER_BYTES } from './constants.js';

export interface FramePush {
  /** Complete frame payloads, in order. */
  readonly frames: Buffer[];
  /** Set once the stream is known bad; every later push returns it again with no frames. */
  readonly error: MeshProtocolError | undefined;
}

/**
 * Turns a byte stream that arrives in arbitrary chunks into frame payloads.
 *
 * It never allocates from a declared length: the 4-byte header is checked
 * against the limit before anything is buffered for it, and the payload is
 * only assembled once all of its bytes have actually arrived, so a peer
 * that announces 4 GiB costs us four bytes. Errors are returned, not thrown,
 * so frames that arrived intact before the bad one are still delivered.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: MeshProtocolError | undefined;

  constructor(private maxFrameBytes: number) {}

  /** The limit can change after the handshake (the hello has a smaller one). */
  setMaxFrameBytes(n: number): void {
    this.maxFrameBytes = n;
  }

  get error(): MeshProtocolError | undefined {
    return this.failed;
  }

  /** Bytes received but not yet part of a complete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): FramePush {
    if (this.failed) return { frames: [], error: this.failed };
    if (chunk.length > 0) {
      this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.buffered += chunk.length;
    }
    const frames: Buffer[] = [];
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const len = this.peekLength();
      if (len === 0) return this.fail(frames, new MeshMalformedError('empty frame (every frame starts with a kind byte)'));
      if (len > this.maxFrameBytes) {
        return this.fail(frames, new MeshFrameTooLargeError(`peer announced a ${len}-byte frame; the maximum is ${this.maxFrameBytes}`));
      }
      if (this.buffered < FRAME_HEADER_BYTES + len) break;
      this.consume(FRAME_HEADER_BYTES);
      frames.push(this.consume(len));
    }
    return { frames, error: undefined };
  }

  /** Call when the stream ends: a partial frame left over means the peer was cut off mid-message. */
  end(): MeshProtocolError | undefined {
    if (this.failed) return this.failed;
    if (this.buffered > 0) this.failed = new MeshTruncatedError(`stream ended inside a frame (${this.buffered} bytes pending)`);
    return this.failed;
  }

  private fail(frames: Buffer[], e: MeshProtocolError): FramePush {
    this.failed = e;
    this.chunks = [];
    this.buffered = 0;
    return { frames, error: e };
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= FRAME_HEADER_BYTES) return first.readUInt32BE(0);
    const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    let got = 0;
    for (const c of this.chunks) {
      const n = Math.min(c.length, FRAME_HEADER_BYTES - got);
      c.copy(head, got, 0, n);
      got += n;
      if (got === FRAME_HEADER_BYTES) break;
    }
    return head.readUInt32BE(0);
  }

  /** Removes `n` buffered bytes (n ≤ buffered); zero-copy when they lie in one chunk. */
  private consume(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const c = this.chunks[0]!;
      const take = Math.min(c.length, n - got);
      c.copy(out, got, 0, take);
      got += take;
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
    }
    return out;
  }
}
