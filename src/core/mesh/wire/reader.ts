import { MeshMalformedError, MeshTruncatedError } from '../../errors.js';
import { ipFromValue } from '../../ip/addr.js';
import type { PeerAddress } from '../address.js';
import { peerIdAt, type PeerId } from '../peer-id.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A bounds-checked cursor over one frame's payload. Every read checks the
 * remaining length first, so a lying length field can only ever produce a
 * MeshTruncatedError, and every value is range-checked where it is read, so
 * callers never see a half-valid message.
 */
export class WireReader {
  private off: number;

  constructor(private readonly buf: Buffer, offset = 0) {
    this.off = offset;
  }

  get remaining(): number {
    return this.buf.length - this.off;
  }

  private need(n: number, what: string): void {
    if (this.remaining < n) throw new MeshTruncatedError(`${what}: needs ${n} bytes, ${this.remaining} left in frame`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.off++]!;
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }

  /** A u64 that must fit a JavaScript safe integer (< 2^53); the schema requires senders to keep it there. */
  u64(what: string): number {
    this.need(8, what);
    const hi = this.buf.readUInt32BE(this.off);
    const lo = this.buf.readUInt32BE(this.off + 4);
    if (hi >= 0x200000) throw new MeshMalformedError(`${what}: ${hi}·2^32+${lo} exceeds 2^53-1`);
    this.off += 8;
    return hi * 0x100000000 + lo;
  }

  peerId(what: string): PeerId {
    this.need(8, what);
    const id = peerIdAt(this.buf, this.off);
    if (id === undefined) throw new MeshMalformedError(`${what}: peer ID 0 is reserved`);
    this.off += 8;
    return id;
  }

  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }

  /** All bytes up to the end of the frame (opaque payloads are last, so need no length). */
  rest(): Buffer {
    const b = this.buf.subarray(this.off);
    this.off = this.buf.length;
    return b;
  }

  private utf8(n: number, what: string): string {
    const b = this.bytes(n, what);
    try {
      return utf8.decode(b);
    } catch {
      throw new MeshMalformedError(`${what}: not valid UTF-8`);
    }
  }

  /** u8 length + UTF-8, checked against `re`. */
  str8(what: string, re: RegExp): string {
    const n = this.u8(`${what} length`);
    const s = this.utf8(n, what);
    if (!re.test(s)) throw new MeshMalformedError(`${what}: ${JSON.stringify(s.slice(0, 80))} is not allowed`);
    return s;
  }

  /** u16 length + UTF-8, at most `max` bytes. */
  str16(what: string, max: number): string {
    const n = this.u16(`${what} length`);
    if (n > max) throw new MeshMalformedError(`${what}: ${n} bytes exceeds ${max}`);
    return this.utf8(n, what);
  }

  /** u8 family (0 = none, 4, 6), then the address bytes and a u16 port ≠ 0. */
  address(what: string): PeerAddress | undefined {
    const family = this.u8(`${what} family`);
    if (family === 0) return undefined;
    if (family !== 4 && family !== 6) throw new MeshMalformedError(`${what}: unknown address family ${family}`);
    const raw = this.bytes(family === 4 ? 4 : 16, what);
    const value = BigInt('0x' + raw.toString('hex'));
    const port = this.u16(`${what} port`);
    if (port === 0) throw new MeshMalformedError(`${what}: port 0`);
    return { ip: ipFromValue(family, value), port };
  }

  /** The schema is strict: bytes after the last field are an error, not an extension point. */
  end(what: string): void {
    if (this.remaining !== 0) throw new MeshMalformedError(`${what}: ${this.remaining} unexpected trailing bytes`);
  }
}
