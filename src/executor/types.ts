// The executor's shared vocabulary: what a workflow is, what a submission and a task are, and the
// interfaces between its parts (store, coordinator, gateway, workers). Every part imports these
// types from here and nothing else from another part's internals, so each can change alone.
import type { SerializedError } from '../util/codec.js';

// ---------------------------------------------------------------- workflows (what users write)

/** What a stage function gets besides its input. */
export interface StageContext {
  /** The submission's own input (the first stage's input). */
  readonly input: unknown;
  /** Cores this worker offers (`--cores`, "auto" resolved from affinity/cgroup). */
  readonly cores: number;
  /** Memory per core in kB, when the worker was given `--max-mem` (total / cores); else undefined. */
  readonly maxMemPerCore: number | undefined;
  /** The stage's name. */
  readonly stage: string;
  /** The task's id (its content hash). */
  readonly taskId: string;
  /**
   * A scratch dir of this task's own (QC engines and fitters write many files). It is removed
   * when the task ends, unless the worker keeps temporary files (`--keep-temp-files`).
   */
  readonly tempDir: string;
}

export type StageFunction = (input: unknown, ctx: StageContext) => unknown;

export interface StageSpec {
  /** Queue name: unique within a workflow; workers serve a stage name across workflows. */
  stage: string;
  run: StageFunction;
  /** One task per element of the previous stage's output (an array), gathered in order. */
  each?: boolean;
}

export interface Workflow {
  readonly kind: 'xpr-workflow';
  readonly name: string;
  readonly stages: readonly StageSpec[];
}

// ---------------------------------------------------------------- submissions and tasks

export const SUBMISSION_STATUSES = ['waiting', 'running', 'errored', 'success', 'cancelled'] as const;
export type SubmissionStatus = (typeof SUBMISSION_STATUSES)[number];

/** Where a stage function failed, as the submission reports it. */
export interface StageError {
  stage: string;
  type: string;
  message: string;
  stack?: string;
}

export interface StageProgress {
  stage: string;
  /** Tasks of this stage for this submission (0 until the stage is reached); identical elements of an `each` stage are one task. */
  total: number;
  done: number;
  status: 'waiting' | 'running' | 'errored' | 'success';
}

export interface Submission {
  id: string;
  workflow: string;
  /** sha256 of the workflow module's bundle: the code the stages run. */
  codeHash: string;
  status: SubmissionStatus;
  /** Index of the stage being run (stages.length when done). */
  stageIndex: number;
  stages: StageProgress[];
  createdAt: number;
  updatedAt: number;
  error?: StageError;
  /** Only when asked for (`?results=true`) and only on success; encoded with util/codec. */
  result?: unknown;
}

/** The data of one BullMQ job in a stage's queue. */
export interface TaskData {
  workflow: string;
  stage: string;
  stageIndex: number;
  codeHash: string;
  /** The stage's input, encoded with util/codec's `encode`. */
  input: unknown;
  /** The submission's input, encoded; ctx.input. */
  submissionInput: unknown;
  /** Cache key of the result when the function does not read ctx.input. */
  sharedKey: string;
}

/** What a worker reports for a finished task (the BullMQ job's return value). */
export interface TaskOutcome {
  /** Encoded result. */
  value: unknown;
  /** The function read ctx.input: its result is cached under the task id, not the shared key. */
  readInput: boolean;
}

export type TaskFailure = SerializedError;

// ---------------------------------------------------------------- events pushed to watchers

export type SubmissionEvent =
  | { type: 'progress'; id: string; stage: string; done: number; total: number }
  | { type: 'stage'; id: string; stage: string; status: StageProgress['status'] }
  | { type: 'status'; id: string; status: SubmissionStatus; error?: StageError };

// ---------------------------------------------------------------- settings

export interface StageResources {
  /** Worker processes per stage on the executor's own machine. */
  workers: Record<string, number>;
  /** Cores per worker of each stage; 'auto' = the CPUs this process may use. */
  cores: Record<string, number | 'auto'>;
  /** Memory per worker of each stage, in kB. */
  maxMem: Record<string, number>;
}

export interface ExecutorSettings extends StageResources {
  /** Where Redis data, the token and logs live. */
  directory: string;
  /** Gateway address and port. */
  address: string;
  port: number;
  /** Redis URL (with password); undefined: start a redis-server in `directory` unless one answers. */
  redis?: string;
  /** The API token (generated and stored in the directory when not given). */
  token?: string;
  keepTempFiles: boolean;
}

// ---------------------------------------------------------------- registry and cache records (store.ts)

/** A workflow as the executor registers it: what the coordinator needs without importing its code. */
export interface WorkflowRecord {
  name: string;
  /** sha256 of the bundle of the module that exports it (`xpr:code:<hash>`). */
  codeHash: string;
  stages: { stage: string; each: boolean }[];
  /** The module's export whose value is this workflow. */
  exportName: string;
}

/** A cached stage result (`xpr:cache:<key>`). */
export interface CacheEntry {
  /** Encoded result. */
  value: unknown;
  stage: string;
  /** When it was stored (ms since the epoch). */
  at: number;
}

/** One line of `cache export` / `cache import`. */
export interface CacheRecord extends CacheEntry {
  /** The cache key: a task id or a shared key (sha256 hex). */
  key: string;
}

export interface CacheStats {
  entries: number;
  /** Entries per stage name. */
  stages: Record<string, number>;
}

// ---------------------------------------------------------------- local worker processes

/**
 * What a worker process on the executor's machine is started with. `worker-main` reads it as JSON
 * from the environment variable XPR_WORKER_SETTINGS (not argv: the Redis URL holds the password).
 */
export interface LocalWorkerSettings {
  /** Redis URL, with its password. */
  redisUrl: string;
  stage: string;
  cores: number | 'auto';
  /** Memory for the whole worker, in kB. */
  maxMem?: number;
  /** On SIGTERM, how long the running task may take to finish before it goes back to the queue; default 30 s. */
  graceMs?: number;
  /** BullMQ lock duration: how soon a killed worker's task is taken back; default 30 s. */
  lockDurationMs?: number;
  /** BullMQ stalled-check interval; default 30 s. */
  stalledIntervalMs?: number;
  /** Where bundles are written to be imported; default `<tmp>/xpr-exec-code`. */
  codeDir?: string;
  /** Keep each task's scratch dir (ctx.tempDir) after it ends. */
  keepTempFiles?: boolean;
}
