import { MeshFrameTooLargeError } from '../../errors.js';
import type { PeerAddress } from '../address.js';
import { writePeerIdAt, type PeerId } from '../peer-id.js';
import { FRAME_HEADER_BYTES } from './constants.js';

/**
 * Builds one frame in place: it reserves the 4-byte length header up front
 * and patches it in `finish`, so a message is encoded with one copy.
 */
export class WireWriter {
  private buf: Buffer;
  private len = FRAME_HEADER_BYTES;

  constructor(sizeHint = 256) {
    this.buf = Buffer.allocUnsafe(Math.max(sizeHint + FRAME_HEADER_BYTES, 64));
  }

  /** Payload bytes written so far. */
  get payloadLength(): number {
    return this.len - FRAME_HEADER_BYTES;
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): this {
    this.room(1);
    this.buf[this.len++] = v;
    return this;
  }

  u16(v: number): this {
    this.room(2);
    this.buf.writeUInt16BE(v, this.len);
    this.len += 2;
    return this;
  }

  u32(v: number): this {
    this.room(4);
    this.buf.writeUInt32BE(v, this.len);
    this.len += 4;
    return this;
  }

  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64 field ${v} is not a safe non-negative integer`);
    this.room(8);
    this.buf.writeUInt32BE(Math.floor(v / 0x100000000), this.len);
    this.buf.writeUInt32BE(v % 0x100000000, this.len + 4);
    this.len += 8;
    return this;
  }

  peerId(id: PeerId): this {
    this.room(8);
    if (!writePeerIdAt(id, this.buf, this.len)) throw new RangeError(`bad peer ID ${id}`);
    this.len += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  str8(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    if (n > 255) throw new RangeError('string longer than 255 bytes');
    this.u8(n);
    this.room(n);
    this.buf.write(s, this.len, n, 'utf8');
    this.len += n;
    return this;
  }

  str16(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    if (n > 65535) throw new RangeError('string longer than 65535 bytes');
    this.u16(n);
    this.room(n);
    this.buf.write(s, this.len, n, 'utf8');
    this.len += n;
    return this;
  }

  address(a: PeerAddress | undefined): this {
    if (!a) return this.u8(0);
    this.u8(a.ip.family);
    const hex = a.ip.value.toString(16).padStart(a.ip.family === 4 ? 8 : 32, '0');
    this.bytes(Buffer.from(hex, 'hex'));
    return this.u16(a.port);
  }

  /** The complete frame (length header + payload). */
  finish(maxFrameBytes: number): Buffer {
    const payload = this.len - FRAME_HEADER_BYTES;
    if (payload > maxFrameBytes) throw new MeshFrameTooLargeError(`refusing to send a ${payload}-byte frame (maximum ${maxFrameBytes})`);
    this.buf.writeUInt32BE(payload, 0);
    return this.buf.subarray(0, this.len);
  }
}
