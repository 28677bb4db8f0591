// The remote flow: the items go out as queued jobs of `num_inputs_per_queued_job` items each, one job
// per chunk named `<job_name>_chunk_<i>`, submitted together (one job array where the system allows).
// Each job runs its chunk through a pool on its node and returns one result per item. Back here the
// results are stored at their inputs' locations, chunk by chunk, so outputs land where a local run
// puts them, also when an item gives nothing. Jobs are found again by their restart hash (items, op
// kwargs and code; not the output spec, pool sizes or hash_ignore keys), so a rerun after a kill
// re-attaches instead of submitting again, and they are marked processed only once the output is closed.
import { ConfigSet } from '../configset/configset.js';
import type { Located } from '../configset/loc.js';
import type { OutputSpec } from '../configset/outputspec.js';
import { JobTimeoutError, XprError } from '../errors.js';
import { refreshJobs } from '../job/engine.js';
import { Job, type JobOptions, type StartOptions } from '../job/job.js';
import type { AutoparaCallSpec } from '../runner/protocol.js';
import type { JobStatus } from '../store/status.js';
import { chunk, POOL_SIZE_VARS } from '../runner/pool-size.js';
import { ProgressLine, type JobCounts } from './progress.js';
import type { RemoteInfo } from './remoteinfo.js';
import { storeResult } from './store.js';

/** Set to any value: leave the jobs of a finished call as they are instead of marking them processed. */
export const NO_MARK_PROCESSED_VAR = 'WFL_EXPYRE_NO_MARK_PROCESSED';
export const JOB_FAILED_FLAG = 'EXPYRE_REMOTE_JOB_FAILED';

export interface RemoteRun {
  /** Operation name (default job name, progress label). */
  name: string;
  /** The wrapper and where it is exported: what a job imports. */
  wrapper: (...args: never[]) => unknown;
  module: string;
  exportName: string;
  /** Export name of the initializer in the same module, with its arguments. */
  initializer?: { export: string; args: readonly unknown[] };
  items: readonly Located<unknown>[];
  kwargs: Record<string, unknown>;
  outputs: OutputSpec<unknown>;
  info: RemoteInfo;
  numInputsPerSubprocess: number;
  numSubprocesses: number | undefined;
  skipFailed: boolean;
  waitForResults: boolean;
}

const say = (line: string) => process.stderr.write(`${line}\n`);

/** Items per job: a negative setting is a multiple of the items per op call. */
export function itemsPerJob(info: RemoteInfo, numInputsPerSubprocess: number): number {
  const n = info.num_inputs_per_queued_job;
  return n < 0 ? -n * numInputsPerSubprocess : n;
}

/** A copy of an input without the flag an earlier failed run put on it (so it hashes as before). */
function unflagged(item: unknown): unknown {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return item;
  const o = item as Record<string, unknown>;
  const info = o.info as Record<string, unknown> | undefined;
  if (isFrame(o) && info && JOB_FAILED_FLAG in info) {
    const { [JOB_FAILED_FLAG]: _f, ...rest } = info;
    return { ...o, info: rest };
  }
  if (JOB_FAILED_FLAG in o) {
    const { [JOB_FAILED_FLAG]: _f, ...rest } = o;
    return rest;
  }
  return item;
}

/** An input written in place of the results of a failed job: flagged, where it can carry a flag. */
function flagged(item: unknown): unknown {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return undefined;
  const o = item as Record<string, unknown>;
  if (isFrame(o)) return { ...o, info: { ...(o.info as Record<string, unknown>), [JOB_FAILED_FLAG]: true } };
  return { ...o, [JOB_FAILED_FLAG]: true };
}

function isFrame(o: Record<string, unknown>): boolean {
  return typeof o.natoms === 'number' && o.info !== null && typeof o.info === 'object' && 'arrays' in o;
}

/** The progress line's counts from the count of jobs in each status. */
function jobCounts(c: Partial<Record<JobStatus, number>>): JobCounts {
  const n = (s: JobStatus) => c[s] ?? 0;
  const total = Object.values(c).reduce((a, b) => a + b, 0);
  const queued = n('created') + n('submitted');
  const running = n('started');
  const failed = n('failed') + n('died');
  return { queued, running, done: total - queued - running - failed, failed, total };
}

const ONGOING = new Set<JobStatus>(['created', 'submitted', 'started']);

/** Run the call as jobs; returns the outputs, or undefined when not waiting for results. */
export async function runRemote(run: RemoteRun): Promise<ConfigSet<unknown> | undefined> {
  const { info, outputs } = run;
  const jobName = info.job_name ?? run.name;
  const perJob = itemsPerJob(info, run.numInputsPerSubprocess);
  const chunks = chunk(run.items, perJob);
  const setsPoolSize = POOL_SIZE_VARS.some((v) => v in info.env_vars);
  const autopara: AutoparaCallSpec = {
    numInputsPerSubprocess: run.numInputsPerSubprocess,
    poolSize: run.numSubprocesses ?? (setsPoolSize ? 'env' : 'cores_per_node'),
    ...(run.initializer ? { initializer: { export: run.initializer.export, args: [...run.initializer.args] } } : {}),
  };
  const jobOptions = (i: number): JobOptions => ({
    name: `${jobName}_chunk_${i}`,
    fn: run.wrapper,
    module: run.module,
    exportName: run.exportName,
    args: [chunks[i]!.map((x) => unflagged(x.item))],
    kwargs: run.kwargs,
    hashIgnore: info.hash_ignore,
    inputFiles: info.input_files,
    outputFiles: info.output_files,
    preCmds: info.pre_cmds,
    postCmds: info.post_cmds,
    envVars: info.env_vars,
    autopara,
  });

  const startOptions: StartOptions = {
    system: info.sys_name,
    resources: info.resources,
    headerExtra: info.header_extra,
    exactFit: info.exact_fit,
    ...(info.partial_node !== undefined ? { partialNode: info.partial_node } : {}),
  };
  // One hash lookup for all chunks; identical chunks share one job. A start that cannot work (an
  // unknown system, no partition that fits, a rundir that cannot be made) fails before any is made.
  const jobs: Job[] = await Job.createMany(chunks.map((_c, i) => jobOptions(i)), run.module, { checkStart: startOptions });
  const project = jobs[0]?.project;
  const reattached = jobs.filter((j) => j.reattached).length;

  if (project && info.resubmit_killed_jobs && reattached > 0) {
    // Jobs that died while nobody watched are still "submitted" in the database: look once, for all.
    await refreshJobs(project, jobs.filter((j) => j.reattached).map((j) => j.reload()));
    const replaced = new Map<string, Job>();
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]!;
      const again = replaced.get(job.id);
      if (again) { jobs[i] = again; continue; } // an identical chunk shares the job
      if (job.reload().status !== 'died') continue;
      say(`xpr ${run.name}: job ${job.id} died${job.info.remoteReason ? ` (${job.info.remoteReason})` : ''}; wiping it and submitting again`);
      await job.clean({ wipe: true });
      jobs[i] = await Job.create(jobOptions(i));
      replaced.set(job.id, jobs[i]!);
    }
  }

  // Every job goes to the start, not only new ones: a re-attached job that died of its limits is
  // replaced there when the resources changed, and one whose result was lost in any case.
  const before = jobs.map((j) => ({ id: j.id, created: j.reload().status === 'created' }));
  await Job.startMany(jobs, startOptions);
  const submitted = jobs.filter((j, i) => before[i]!.created || j.id !== before[i]!.id).length;

  say(`xpr ${run.name}: ${chunks.length} job(s) "${jobName}_chunk_<i>" of up to ${perJob} item(s) on "${info.sys_name}": ` +
    `${submitted} submitted, ${jobs.length - submitted} re-attached to earlier runs`);

  if (!run.waitForResults) {
    say(`xpr ${run.name}: submitted; call again with the same inputs (or run the script again) to collect the results`);
    return undefined;
  }
  if (!project) {
    outputs.close();
    return outputs.toConfigSet();
  }

  await waitForJobs(run, jobs);
  if (!info.ignore_failed_jobs) await raiseFirstFailure(run.name, jobs);

  for (let i = 0; i < chunks.length; i++) {
    const job = jobs[i]!;
    const items = chunks[i]!;
    let results: unknown;
    try {
      const got = await job.getResults({ timeout: 0 });
      results = got.result;
      if (got.stdout) process.stdout.write(got.stdout);
      if (got.stderr) process.stderr.write(got.stderr);
    } catch (err) {
      if (!info.ignore_failed_jobs) throw err;
      say(`xpr ${run.name}: job ${job.id} failed (${(err as Error).message.split('\n')[0]}); ` +
        `writing its ${items.length} input(s) flagged ${JOB_FAILED_FLAG} (ignore_failed_jobs)`);
      for (const { item, loc } of items) outputs.store(flagged(item), loc);
      continue;
    }
    if (!Array.isArray(results) || results.length !== items.length) {
      throw new XprError(`Job ${job.id} returned ${Array.isArray(results) ? `${results.length} results` : typeof results} for ${items.length} items`, {
        hint: `Its dir is ${job.stageDir}; it may come from a different version of xpr.`,
      });
    }
    items.forEach(({ loc }, k) => storeResult(outputs, results[k], loc, run.skipFailed, run.name));
  }
  outputs.close();
  if (process.env[NO_MARK_PROCESSED_VAR] === undefined) for (const job of jobs) job.markProcessed();
  return outputs.toConfigSet();
}

/**
 * If a chunk failed, throw its error (RemoteError, JobDiedError), saying which chunk and job it was:
 * the wait stops at the first failure, so other chunks may still be running, and their results are
 * not what went wrong. They are left to run; a rerun re-attaches to them.
 */
async function raiseFirstFailure(name: string, jobs: readonly Job[]): Promise<void> {
  const statuses = jobs.map((j) => j.reload().status);
  const index = statuses.findIndex((s) => s === 'failed' || s === 'died');
  if (index < 0) return;
  const job = jobs[index]!;
  const running = new Set(jobs.filter((j, i) => ONGOING.has(statuses[i]!)).map((j) => j.id)).size;
  const err = await job.getResults({ timeout: 0 }).then(() => undefined, (e: unknown) => e);
  if (err === undefined) return;
  say(`xpr ${name}: chunk ${index} (job ${job.id}) failed` +
    (running ? `; ${running} other job(s) still queued or running are left to finish (a rerun re-attaches to them)` : ''));
  throw err;
}

/**
 * Wait until every job has ended (or, unless failures are ignored, until one fails): one status query
 * per system per round, for all the jobs, with pauses that grow from 0.1 s to check_interval.
 */
async function waitForJobs(run: RemoteRun, jobs: readonly Job[]): Promise<void> {
  const { info } = run;
  const system = jobs[0]!.project.system(info.sys_name);
  const progress = new ProgressLine(run.name);
  try {
    await Job.waitAll(jobs, {
      timeout: info.timeout,
      checkInterval: info.check_interval ?? (system.inPlace ? 2 : 30),
      pauses: 'growing',
      ongoing: [...ONGOING],
      stopOnFailure: !info.ignore_failed_jobs,
      onProgress: (c) => progress.update(jobCounts(c)),
    });
  } catch (err) {
    if (!(err instanceof JobTimeoutError)) throw err;
    const ongoing = jobs.filter((j) => ONGOING.has(j.status)).length;
    throw new JobTimeoutError(err.jobId, info.timeout, `${ongoing} of ${jobs.length} jobs of ${run.name} not finished`);
  } finally {
    progress.end();
  }
}
