// The options argument a caller may add, last, to one call of a remoteCall wrapper. It is branded
// (made by `remoteCallOptions`) because the wrapped function's own arguments may be any objects: a
// plain `{ remoteInfo }` could be a real argument. The brand is a registered symbol, so the one the
// remote-side shim checks is the same.
import type { RemoteInfo, RemoteInfoFields } from '../autopara/remoteinfo.js';

export const CALL_OPTIONS = Symbol.for('xpr.remoteCallOptions');

export interface RemoteCallOptions {
  /** Run this call as a job with this RemoteInfo (wins over the variable); null runs it in this process. */
  remoteInfo?: RemoteInfo | RemoteInfoFields | null;
  /** Pick the key of a stack-keyed variable equal to this, instead of matching the call stack. */
  remoteLabel?: string;
}

/** Mark `options` as the options of a call, to pass as its last argument. */
export function remoteCallOptions(options: RemoteCallOptions): RemoteCallOptions {
  return Object.defineProperty({ ...options }, CALL_OPTIONS, { value: true, enumerable: false });
}

export function isCallOptions(v: unknown): v is RemoteCallOptions {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[CALL_OPTIONS] === true;
}

/** The call's own arguments, and its options when the last argument is one. */
export function splitCallArgs(args: readonly unknown[]): { args: unknown[]; options: RemoteCallOptions } {
  const last = args[args.length - 1];
  return isCallOptions(last) ? { args: args.slice(0, -1), options: last } : { args: [...args], options: {} };
}
