/**
 * Tiny typed readers for decoded JSON. Each takes the JSON path of the value
 * so that a wrong type is reported as InvalidConfigError (CNI code 7) saying
 * exactly where, e.g. `runtimeConfig.portMappings[1].hostPort: expected an
 * integer from 1 to 65535, got 0`. Hand-written rather than a schema library
 * because the CNI spec needs two different codes (2 for unknown keys, 7 for
 * wrong values) and messages that name the key and the value.
 */
import { tryParseIp } from '../ip/addr.js';
import { tryParseIpWithPrefix } from '../ip/cidr.js';
import { InvalidConfigError, UnsupportedFieldError } from '../errors.js';
import { cniNameProblem, describeValue, ifnameProblem, macProblem } from './syntax.js';

export type JsonObject = Record<string, unknown>;

/** `path` + `.key` (or just `key` at the root). */
export function at(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function invalid(path: string, expected: string, got: unknown): never {
  throw new InvalidConfigError(`${path || 'network configuration'}: expected ${expected}, got ${describeValue(got)}`);
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: unknown, path: string): JsonObject {
  if (!isObject(v)) invalid(path, 'an object', v);
  return v;
}

export function str(v: unknown, path: string): string {
  if (typeof v !== 'string') invalid(path, 'a string', v);
  return v;
}

export function nonEmptyStr(v: unknown, path: string): string {
  if (typeof v !== 'string' || v === '') invalid(path, 'a non-empty string', v);
  return v;
}

export function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') invalid(path, 'true or false', v);
  return v;
}

export function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) invalid(path, `an integer from ${min} to ${max}`, v);
  return v;
}

export function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) invalid(path, 'an array', v);
  return v;
}

export function strArray(v: unknown, path: string): string[] {
  return arr(v, path).map((item, i) => str(item, at(path, i)));
}

/** Reads an optional key: undefined (absent) passes through, anything else goes to `read`. */
export function opt<T>(o: JsonObject, key: string, path: string, read: (v: unknown, p: string) => T): T | undefined {
  const v = o[key];
  return v === undefined ? undefined : read(v, at(path, key));
}

export function ipAddr(v: unknown, path: string): string {
  const s = str(v, path);
  if (!tryParseIp(s)) invalid(path, 'an IP address', v);
  return s;
}

/** "addr" or "addr/prefix", the form of runtimeConfig.ips and args.cni.ips. */
export function ipMaybePrefix(v: unknown, path: string): string {
  const s = str(v, path);
  if (!tryParseIp(s) && !tryParseIpWithPrefix(s)) invalid(path, 'an IP address, optionally with /prefix', v);
  return s;
}

export function mac(v: unknown, path: string): string {
  const s = str(v, path);
  const problem = macProblem(s);
  if (problem) throw new InvalidConfigError(`${path}: "${s}" ${problem}`);
  return s.toLowerCase();
}

export function cniName(v: unknown, path: string): string {
  const s = str(v, path);
  const problem = cniNameProblem(s);
  if (problem) throw new InvalidConfigError(`${path}: "${s}" ${problem}`);
  return s;
}

export function ifname(v: unknown, path: string): string {
  const s = str(v, path);
  const problem = ifnameProblem(s);
  if (problem) throw new InvalidConfigError(`${path}: interface name "${s}" ${problem}`);
  return s;
}

export function absolutePath(v: unknown, path: string): string {
  const s = str(v, path);
  if (!s.startsWith('/')) invalid(path, 'an absolute path', v);
  return s;
}

/**
 * Code 2 for the first key of `o` that is neither in `known` nor accepted by
 * `alsoAllowed`. The spec requires the message to contain the key and value.
 */
export function rejectUnknownKeys(o: JsonObject, known: ReadonlySet<string>, path: string, where: string, alsoAllowed: (key: string) => boolean = () => false): void {
  for (const [key, value] of Object.entries(o)) {
    if (known.has(key) || alsoAllowed(key)) continue;
    throw new UnsupportedFieldError(`unsupported field "${at(path, key)}" with value ${describeValue(value)} in ${where}`);
  }
}
