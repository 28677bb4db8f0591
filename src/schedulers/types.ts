// The seam between the job engine and a batch scheduler. A scheduler module is pure: it renders
// text and builds command lines, and it parses what those commands print. All I/O goes through a
// Transport, so every scheduler is tested with literal captured output.
import type { NodeChoice } from '../resources/types.js';

/** Remote status names as ExPyRe's. */
export type RemoteStatus = 'queued' | 'held' | 'running' | 'done' | 'failed' | 'timeout' | 'other';

/**
 * xpr's named failure reasons: the scheduler's word (TIMEOUT ... CANCELLED), or xpr's own when a job
 * ended but its result cannot be had: RESULT_MISSING (its dir or result file is gone), RESULT_CORRUPT
 * (its result file cannot be parsed). A named reason is definitive: the job's files will not change.
 */
export type FailureReason = 'TIMEOUT' | 'OUT_OF_MEMORY' | 'PREEMPTED' | 'NODE_FAIL' | 'CANCELLED' | 'RESULT_MISSING' | 'RESULT_CORRUPT';

/** Reasons xpr names itself: a rerun of the call resubmits it, whatever it asks for. */
export const RESULT_LOST_REASONS: readonly FailureReason[] = ['RESULT_MISSING', 'RESULT_CORRUPT'];

export interface RemoteState {
  status: RemoteStatus;
  reason?: FailureReason;
  /** Exit code the scheduler recorded, when it says. */
  exitCode?: number;
  /** The scheduler's own state word, for `xpr ls -l` and debugging. */
  raw?: string;
}

/** Everything a scheduler needs to render the directive part of a job script. */
export interface ScriptContext {
  /** Unique scheduler job name; shell- and scheduler-safe ([A-Za-z0-9_.-]). */
  schedName: string;
  node: NodeChoice;
  /** Number of array tasks; 0 means a plain (non-array) job. */
  arraySize: number;
  /** File names (relative to the submit dir) for the scheduler's own stdout and stderr. */
  stdoutFile: string;
  stderrFile: string;
}

export interface Scheduler {
  /** Registry name: 'slurm', 'pbs', 'torque', 'sge', 'local'. */
  readonly name: string;
  /** Directive prefix, e.g. '#SBATCH'; used to recognise directive lines in user headers. */
  readonly directivePrefix: string;
  /** Directives xpr always needs (job name, output files, array range); rendered literally. */
  directives(ctx: ScriptContext): string[];
  /** Shell expression that expands to the 0-based array index inside an array task. */
  readonly arrayIndexExpr: string;
  /**
   * Shell expression for the dir the job was submitted from, for schedulers that start jobs
   * somewhere else (PBS Pro and Torque start them in $HOME); absent when jobs start in the submit dir.
   */
  readonly submitDirExpr?: string;
  /** Wall time as this scheduler writes it in a header ({max_time}). */
  formatTime(seconds: number): string;
  /**
   * Memory (kB) as this scheduler's own memory request takes it ({max_mem}): `#SBATCH --mem=`,
   * `#PBS -l mem=`, `#$ -l h_vmem=` each read their own units.
   */
  formatMem(kB: number): string;

  /** Command (run in the submit dir) that submits `scriptFile`; prints what `parseSubmit` reads. */
  submitCommand(scriptFile: string): string;
  /** Remote job id from the submit command's stdout; throws if it cannot find one. */
  parseSubmit(stdout: string): string;
  /** Id of array element `index` (0-based) of array job `parentId`. */
  arrayElementId(parentId: string, index: number): string;
  /**
   * Where array element `index` (0-based) finds the scheduler's stdout/stderr, given the
   * `ScriptContext.stdoutFile`/`stderrFile` of the array: each scheduler numbers per-task files its own
   * way (SGE task ids are 1-based, Torque appends `-<index>`). Absent: tasks share the plain files.
   */
  arrayTaskFile?(file: string, index: number): string;

  /** One command that reports on all `ids` (plain or array-element ids) at once. */
  statusCommand(ids: string[]): string;
  /** States by id; an id absent from the map has left the queue (reconcile it from the record). */
  parseStatus(stdout: string, ids: string[]): Map<string, RemoteState>;

  /** Command listing jobs with this scheduler name (to re-find a job after a crash mid-submit). */
  findByNameCommand(schedName: string): string;
  /** Remote id of the job named `schedName`, if listed. */
  parseFindByName(stdout: string, schedName: string): string | undefined;

  /** Command reading the scheduler's record of finished jobs (sacct, qstat -x, qacct), if any. */
  recordCommand(ids: string[]): string | undefined;
  /** Final states by id from the record; used to name TIMEOUT, OUT_OF_MEMORY, CANCELLED. */
  parseRecord(stdout: string, ids: string[]): Map<string, RemoteState>;

  cancelCommand(ids: string[]): string;
}
