// The files a job dir holds, shared by the side that stages a job and the runner that executes it.

/** The call: written at create, read by the runner. */
export const CALL_FILE = '_xpr_call.json';
/**
 * The job's record as created (`StagedJob`): written at create beside the call, read back only by
 * `xpr db_rebuild`, so that a lost or damaged jobs.db can be rebuilt with every restart hash.
 */
export const JOB_FILE = '_xpr_job.json';
/** The outcome: written by the runner, atomically, as `CallResult`. */
export const RESULT_FILE = '_xpr_result.json';
/** Written by the job script when the job starts running. */
export const STARTED_FILE = '_xpr_started';
/** Written by the job script, atomically, with the runner's exit code when it ends. */
export const EXIT_CODE_FILE = '_xpr_exit_code';
/** Output of the whole job script (commands, pre/post commands). */
export const JOB_STDOUT = 'job.stdout';
export const JOB_STDERR = 'job.stderr';
/** Output of the function itself (the node process). */
export const FN_STDOUT = 'fn.stdout';
export const FN_STDERR = 'fn.stderr';
/** Dirs beside the run dirs: bundled code by hash, and submitted scripts. */
export const CODE_DIR = '_xpr_code';
export const SUBMIT_DIR = '_xpr_submit';

export interface CallSpec {
  version: 1;
  /** Where the function's module is: a bundled file relative to the job dir, or an absolute path. */
  code: { file: string } | { path: string };
  export: string;
  /** Encoded (util/codec) positional arguments. */
  args: unknown[];
  /** Encoded options object passed as the last argument, when given. */
  kwargs?: unknown;
  /**
   * How to call the export: 'direct' (default) calls it with args and kwargs; 'autopara' takes the
   * op an autoparallelize wrapper carries (`export.op`), runs the items in `args[0]` through a local
   * pool of worker processes and returns the op's results aligned with the items.
   */
  invoke?: 'direct' | 'autopara';
  autopara?: AutoparaCallSpec;
}

/** How a remote autoparallelize chunk runs inside its job (not part of the restart hash). */
export interface AutoparaCallSpec {
  /** Items per call of the op (and per task sent to a worker). */
  numInputsPerSubprocess: number;
  /**
   * Worker processes: a number; 'env' reads WFL_NUM_PYTHON_SUBPROCESSES (set by the job's env_vars);
   * 'cores_per_node' uses EXPYRE_NUM_CORES_PER_NODE, which every job script exports.
   */
  poolSize: number | 'env' | 'cores_per_node';
  /** An initializer exported by the same module, run once in each worker. */
  initializer?: { export: string; args: unknown[] };
}

/** What `JOB_FILE` holds: the fields of the job's record that only its creation knew. */
export interface StagedJob {
  version: 1;
  id: string;
  name: string;
  /** The restart hash, and its parts (code, args, inputs) that explain a restart miss. */
  hash: string;
  hashParts: Record<string, string>;
  /** The record's info at create: code file, module, export, output files. */
  info: Record<string, unknown>;
}

/** Set in the environment of a pool worker: the runner then serves pool tasks instead of a call. */
export const POOL_WORKER_ENV = 'XPR_POOL_WORKER';

export type CallResult =
  | { ok: true; value: unknown }
  | { ok: false; error: import('../util/codec.js').SerializedError };
