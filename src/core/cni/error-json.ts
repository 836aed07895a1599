/**
 * The CNI error object (`{cniVersion, code, msg, details?}`, SPEC.md §5
 * "Error"), printed on stdout with a non-zero exit. The same WeftError is
 * also carried from the daemon to the plugin as a CniResponseError; both
 * directions live here so that the plugin and the daemon agree on how a
 * hint is folded into `details` (CNI has no hint field, and runtimes print
 * "msg: details", so the hint reaches the user there).
 */
import type { WeftError } from '../errors.js';
import type { CniResponseError } from './protocol.js';

export interface CniErrorJson {
  readonly cniVersion: string;
  readonly code: number;
  readonly msg: string;
  readonly details?: string;
}

/** `details` and `hint` joined into the one free-text field CNI has. */
export function detailsWithHint(details: string | undefined, hint: string | undefined): string | undefined {
  if (details && hint) return `${details} (hint: ${hint})`;
  if (hint) return `hint: ${hint}`;
  return details || undefined;
}

export function cniErrorObject(cniVersion: string, code: number, msg: string, details?: string): CniErrorJson {
  return { cniVersion, code, msg, ...(details ? { details } : {}) };
}

/** The error object for `err`, labelled with the configuration's cniVersion. */
export function cniErrorFromWeftError(err: WeftError, cniVersion: string): CniErrorJson {
  return cniErrorObject(cniVersion, err.cniCode, err.message, detailsWithHint(err.details, err.hint));
}

/** The text a plugin prints for `err` (one line, newline-terminated). */
export function renderCniError(err: WeftError, cniVersion: string): string {
  return `${JSON.stringify(cniErrorFromWeftError(err, cniVersion))}\n`;
}

/** What the daemon answers (non-2xx) for `err` on POST /v1/cni. */
export function toCniResponseError(err: WeftError): CniResponseError {
  const details = detailsWithHint(err.details, err.hint);
  return { error: { cniCode: err.cniCode, code: err.code, message: err.message, ...(details ? { details } : {}) } };
}
