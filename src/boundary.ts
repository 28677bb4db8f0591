// Where a user's call enters xpr. An XprError that leaves a public function, method or constructor
// is reported at the user's call: its message and hint, then the user's own frames from that call
// outwards (forUser in errors.ts). xpr's internal frames say nothing about a user's mistake, so
// they are shown only with XPR_DEBUG=1.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { forUser } from './errors.js';
import { PACKAGE_ROOT } from './util/paths.js';

type AnyFunction = (this: unknown, ...args: never[]) => unknown;
/** A public function or method, or a class (`new.target` in its constructor). */
type Entry = AnyFunction | (abstract new (...args: never[]) => unknown);

/** xpr's own code, as paths and as file URLs: its frames are not the user's. */
const OWN_PREFIXES = ['src', 'dist'].flatMap((d) => {
  const dir = path.join(PACKAGE_ROOT, d) + path.sep;
  return [dir, pathToFileURL(dir).href];
});

function isOwnFrame(line: string): boolean {
  return OWN_PREFIXES.some((p) => line.includes(p));
}

/**
 * The frames of whoever called `entry`, taken now and formatted only if needed. Frames of xpr
 * itself are left out: a user's callback that calls xpr again is still the user's call.
 */
function callerFrames(entry: Entry): () => string {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, entry);
  return () => (holder.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l) && !isOwnFrame(l)).join('\n');
}

/** The error as the user of `entry` should read it; unchanged when no frame of theirs is known. */
function reported(err: unknown, frames: () => string): unknown {
  const site = frames();
  // Called from inside xpr (e.g. Job.create calling Job.createMany): the entry point the user
  // called reports it, with their frames.
  return site ? forUser(err, site) : err;
}

/**
 * Runs `body` on behalf of `entry`, the public function or the constructor (`new.target`) that the
 * user called. The caller's frames are taken when `body` throws, or when it returns a promise
 * (after its first await the caller is gone from the stack), so a sync call that succeeds costs
 * nothing.
 */
export function asEntry<R>(entry: Entry, body: () => R): R {
  let result: R;
  try {
    result = body();
  } catch (err) {
    throw reported(err, callerFrames(entry));
  }
  if (!(result instanceof Promise)) return result;
  const frames = callerFrames(entry);
  return result.catch((err: unknown) => {
    throw reported(err, frames);
  }) as R;
}

/**
 * Makes the named methods of `owner` (a class, for static methods, or its prototype) entry points,
 * as `asEntry` does: one line after a class instead of a try/catch in every public method.
 */
export function userEntryPoints<T extends object>(owner: T, names: ReadonlyArray<keyof T & string>): void {
  for (const name of names) {
    const method = owner[name] as unknown;
    if (typeof method !== 'function') throw new TypeError(`userEntryPoints: ${name} is not a method`);
    const entry = function (this: unknown, ...args: unknown[]): unknown {
      return asEntry(entry, () => (method as AnyFunction).apply(this, args as never[]));
    };
    Object.defineProperty(entry, 'name', { value: name });
    Object.defineProperty(owner, name, { value: entry, writable: true, configurable: true, enumerable: false });
  }
}
