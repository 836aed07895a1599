import { MeshMalformedError } from '../../errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The example channels encode their payloads as UTF-8 JSON (documented in
 * docs/mesh.md): easy to read from any language, and their state has no
 * binary fields. Parsing failures surface as MeshMalformedError so the
 * router treats them like any other bad payload.
 */
export function parseJsonPayload(payload: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(utf8.decode(payload));
  } catch {
    throw new MeshMalformedError(`${what}: payload is not UTF-8 JSON`);
  }
}

export function jsonPayload(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function exactKeys(o: Record<string, unknown>, keys: readonly string[], what: string): void {
  const got = Object.keys(o);
  if (got.length !== keys.length || !keys.every((k) => Object.hasOwn(o, k))) {
    throw new MeshMalformedError(`${what}: expected exactly the fields ${keys.join(', ')}`);
  }
}
