// What `import ... from 'xpr'` gives an op module inside a job. The job only needs the op itself,
// so `autoparallelize` returns a wrapper that carries the op without any of the job machinery
// (no SQLite, no SSH), keeping bundles small and free of native addons. This file imports nothing:
// it is inlined into every bundle.

export interface RemoteWrapper {
  (...args: unknown[]): never;
  op: (...args: never[]) => unknown;
  opName: string;
}

export function autoparallelize(op: (...args: never[]) => unknown, defaults: { name?: string } = {}): RemoteWrapper {
  const wrapper = (() => {
    throw new Error('xpr: an autoparallelized operation cannot be called from inside a job; call its op directly');
  }) as unknown as RemoteWrapper;
  wrapper.op = op;
  wrapper.opName = defaults.name ?? op.name;
  return wrapper;
}

// remoteCall inside a job. The rule (as wfl's nested fits): a wrapped function called in a job runs
// in that job, unless its own variable is set in the job's environment (the outer call's env_vars).
// Then it would have to submit a job from the job, and this shim has no job database and no SSH to
// do it with: it says so, and what to change, rather than quietly running the call here.

/** The same symbol as the full library's (Symbol.for is shared by every copy of xpr in a process). */
const CALL_OPTIONS = Symbol.for('xpr.remoteCallOptions');

interface CallOptionsShape {
  remoteInfo?: unknown;
  remoteLabel?: string;
}

export function remoteCallOptions<T extends CallOptionsShape>(options: T): T {
  return Object.defineProperty({ ...options }, CALL_OPTIONS, { value: true, enumerable: false });
}

function isCallOptions(v: unknown): v is CallOptionsShape {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[CALL_OPTIONS] === true;
}

export interface RemoteCallShim {
  (...args: unknown[]): Promise<unknown>;
  impl: (...args: never[]) => unknown;
  callName: string;
  remoteInfoEnv: string | undefined;
}

export function remoteCall(
  fn: (...args: never[]) => unknown, options: { name?: string; remoteInfoEnv?: string } = {},
): RemoteCallShim {
  const name = options.name ?? fn.name;
  const variable = options.remoteInfoEnv;
  const wrapper = (async (...args: unknown[]) => {
    const last = args[args.length - 1];
    const call = isCallOptions(last) ? last : undefined;
    if (call) args = args.slice(0, -1);
    const value = variable === undefined ? undefined : process.env[variable];
    const fromCall = call?.remoteInfo;
    const remote = fromCall !== undefined ? fromCall !== null : value !== undefined && value.trim() !== '';
    if (!remote) return (fn as (...a: unknown[]) => unknown)(...args);
    const why = fromCall !== undefined ? 'its call passes a remoteInfo' : `${variable} is set in this job's environment`;
    throw new Error(`xpr: ${name} was called inside a job and would run as a job of its own (${why}), ` +
      'but a job cannot submit jobs: inside a job xpr has no job database and no SSH. ' +
      `To run ${name} inside this job, leave ${variable ?? 'its variable'} out of the env_vars of the outer call's RemoteInfo; ` +
      `to run each ${name} as its own job, leave the outer call's variable unset, so that the outer function runs in the driver.`);
  }) as RemoteCallShim;
  wrapper.impl = fn;
  wrapper.callName = name;
  wrapper.remoteInfoEnv = variable;
  return wrapper;
}

// An executor's workflow inside a worker. The executor checked it with the full `workflow` when it
// launched; the worker only needs the stage functions, under the same shape.
export interface WorkflowShim {
  readonly kind: 'xpr-workflow';
  readonly name: string;
  readonly stages: readonly { stage: string; run: (...args: never[]) => unknown; each?: boolean }[];
}

export function workflow(name: string, stages: WorkflowShim['stages']): WorkflowShim {
  return Object.freeze({ kind: 'xpr-workflow', name, stages: Object.freeze(stages.map((s) => Object.freeze({ ...s, each: s.each === true }))) });
}
