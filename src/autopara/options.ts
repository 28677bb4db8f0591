// The autopara options of a call and their precedence: what the call passes, else what the wrapper
// was made with, else the built-in defaults. Options objects are only read, never changed, so one
// object can be reused for many calls and means the same every time (wfl clears remote_info in the
// object it was given, turning the next call local).
import { XprError } from '../errors.js';
import { RemoteInfo, type RemoteInfoFields } from './remoteinfo.js';
import { poolSizeFromEnv } from '../runner/pool-size.js';

export type AnyFunction = (...args: never[]) => unknown;

/** A function run once in each worker process before any item; with its arguments as `[fn, args]`. */
export type Initializer = AnyFunction | readonly [AnyFunction, readonly unknown[]];

export interface AutoparaOptions {
  /** Items per call of the op, and per task sent to a worker. Default 1. */
  numInputsPerSubprocess?: number;
  /** Worker processes; 0 runs in this process. Default: XPR_NUM_SUBPROCESSES / WFL_NUM_PYTHON_SUBPROCESSES, else 0. */
  numSubprocesses?: number;
  /** Leave out items the op gave nothing for (null/undefined); when false that is an error. Default true. */
  skipFailed?: boolean;
  initializer?: Initializer;
  /** Run as queued jobs: a RemoteInfo or its fields. Default: from WFL_EXPYRE_INFO. */
  remoteInfo?: RemoteInfo | RemoteInfoFields;
  /** Pick the WFL_EXPYRE_INFO entry with exactly this key, instead of matching the call stack. */
  remoteLabel?: string;
  /** false: submit the jobs and return undefined; a later call with the same inputs collects. Default true. */
  waitForResults?: boolean;
}

export interface AutoparaDefaults extends AutoparaOptions {
  /** Name of the operation (default: the op's function name): job names, and `<file>::<name>` in stack keys. */
  name?: string;
}

export const AUTOPARA_KEYS = [
  'numInputsPerSubprocess', 'numSubprocesses', 'skipFailed', 'initializer', 'remoteInfo', 'remoteLabel', 'waitForResults',
] as const;

/** wfl's names, answered with xpr's. */
const WFL_NAMES: Record<string, string> = {
  num_inputs_per_python_subprocess: 'numInputsPerSubprocess', num_python_subprocesses: 'numSubprocesses',
  skip_failed: 'skipFailed', remote_info: 'remoteInfo', remote_label: 'remoteLabel', wait_for_results: 'waitForResults',
  iterable_arg: '(none: the op always takes the items as its first argument)',
};

export interface ResolvedOptions {
  numInputsPerSubprocess: number;
  /** Explicitly asked for (by the call or the wrapper); undefined: from the environment. */
  numSubprocesses: number | undefined;
  skipFailed: boolean;
  initializer: { fn: AnyFunction; args: readonly unknown[] } | undefined;
  remoteInfo: RemoteInfo | undefined;
  remoteLabel: string | undefined;
  waitForResults: boolean;
}

function fail(where: string, message: string): never {
  throw new XprError(`${where}: ${message}`, {
    hint: `Valid autopara options: ${AUTOPARA_KEYS.join(', ')}${where.includes('autoparallelize(') ? ', name' : ''}.`,
  });
}

/** Check an options object's keys and value types; `where` names it in errors. */
export function checkOptions(o: unknown, where: string, allowName = false): void {
  if (o === undefined || o === null) return;
  if (typeof o !== 'object' || Array.isArray(o)) fail(where, `expected an object of options, got ${Array.isArray(o) ? 'an array' : typeof o}`);
  const opts = o as Record<string, unknown>;
  for (const key of Object.keys(opts)) {
    if ((AUTOPARA_KEYS as readonly string[]).includes(key) || (allowName && key === 'name')) continue;
    const hint = WFL_NAMES[key];
    fail(where, `unknown option "${key}"${hint ? ` (wfl's ${key} is ${hint} here)` : ''}; valid: ${[...AUTOPARA_KEYS, ...(allowName ? ['name'] : [])].join(', ')}`);
  }
  const posInt = (k: string, min: number) => {
    const v = opts[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min)) {
      fail(where, `${k} must be a whole number ≥ ${min}, got ${JSON.stringify(v)}`);
    }
  };
  posInt('numInputsPerSubprocess', 1);
  posInt('numSubprocesses', 0);
  for (const k of ['skipFailed', 'waitForResults']) {
    if (opts[k] !== undefined && typeof opts[k] !== 'boolean') fail(where, `${k} must be true or false, got ${JSON.stringify(opts[k])}`);
  }
  for (const k of allowName ? ['remoteLabel', 'name'] : ['remoteLabel']) {
    if (opts[k] !== undefined && (typeof opts[k] !== 'string' || opts[k] === '')) fail(where, `${k} must be a non-empty string`);
  }
  const init = opts.initializer;
  if (init !== undefined && typeof init !== 'function' &&
    !(Array.isArray(init) && init.length === 2 && typeof init[0] === 'function' && Array.isArray(init[1]))) {
    fail(where, 'initializer must be a function or [function, [args...]]');
  }
  const ri = opts.remoteInfo;
  if (ri !== undefined && ri !== null && !(ri instanceof RemoteInfo) && (typeof ri !== 'object' || Array.isArray(ri))) {
    fail(where, 'remoteInfo must be a RemoteInfo or an object of its fields (sys_name, resources, ...)');
  }
}

/** Merge call options over wrapper defaults over built-in defaults. */
export function resolveOptions(call: AutoparaOptions | undefined, defaults: AutoparaOptions): ResolvedOptions {
  const c = call ?? {};
  const pick = <K extends keyof AutoparaOptions>(k: K): AutoparaOptions[K] => (c[k] !== undefined ? c[k] : defaults[k]);
  const init = pick('initializer');
  const ri = pick('remoteInfo');
  return {
    numInputsPerSubprocess: pick('numInputsPerSubprocess') ?? 1,
    numSubprocesses: pick('numSubprocesses'),
    skipFailed: pick('skipFailed') ?? true,
    initializer: init === undefined ? undefined
      : typeof init === 'function' ? { fn: init, args: [] } : { fn: init[0], args: init[1] },
    // Validated here (not at the wrapper's definition) so a plain object's errors name the call.
    remoteInfo: ri === undefined || ri === null ? undefined : RemoteInfo.from(ri, { where: 'remoteInfo' }),
    remoteLabel: pick('remoteLabel'),
    waitForResults: pick('waitForResults') ?? true,
  };
}

/** Worker processes for a local run: the option, else the environment, else 0 (in-process). */
export function localPoolSize(resolved: ResolvedOptions, env: NodeJS.ProcessEnv = process.env): number {
  if (resolved.numSubprocesses !== undefined) return resolved.numSubprocesses;
  try {
    return poolSizeFromEnv(env) ?? 0;
  } catch (e) {
    throw new XprError((e as Error).message, { hint: 'Set it to the number of worker processes, or 0 to run in this process.' });
  }
}
