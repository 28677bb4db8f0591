// One function call as one batch job, in the manner of ExPyRe: `Job.create` stages the call (or
// re-attaches to an identical earlier one), `start` submits it, `getResults` waits and returns the
// value or throws the remote error, then `markProcessed` / `clean`.
import fs from 'node:fs';
import path from 'node:path';
import { userEntryPoints } from '../boundary.js';
import { JobDiedError, JobTimeoutError, RemoteError, XprError, type JobContext } from '../errors.js';
import {
  CALL_FILE, CODE_DIR, FN_STDERR, FN_STDOUT, JOB_STDERR, RESULT_FILE, type AutoparaCallSpec, type CallSpec,
} from '../runner/protocol.js';
import { RESULT_LOST_REASONS, type FailureReason } from '../schedulers/types.js';
import { writeJobFile } from '../store/job-file.js';
import type { JobRecord, NewJob } from '../store/jobstore.js';
import { REATTACHABLE, type JobStatus } from '../store/status.js';
import { decode } from '../util/codec.js';
import { shWord } from '../util/shell.js';
import { cancelJobs, whyNotCancellable } from './cancel.js';
import { bundleModule, callerFile, checkCalls, locateFunction, runnerBundle, writeBundle, type AnyFunction } from './code.js';
import { readResult, refreshJobs, submitJobs } from './engine.js';
import { callHash, encodeCall, hashDiff, newJobId, validateJobName } from './identity.js';
import { currentProject, type Project } from './project.js';
import { askInfo, describeChange, planStart, recordedAsk, sameAsk, type StartOptions, type StartPlan } from './start-plan.js';
import { applyTransition, changedMeanwhile, type JobEvent, type Transition } from './transitions.js';

export type { StartOptions } from './start-plan.js';

export interface JobOptions {
  /** Job name: the start of its id; any characters but `/`, NUL and line breaks. */
  name: string;
  /** The function to run; must be a named export of a module (see code.ts). */
  fn: AnyFunction;
  /** Module exporting `fn` (path or file URL); default: the file that calls `Job.create`. */
  module?: string | URL;
  exportName?: string;
  args?: readonly unknown[];
  /** Passed as the last argument, after `args`; `hashIgnore` names keys of it. */
  kwargs?: Record<string, unknown>;
  /** Files or dirs copied into the job dir (by base name) before it runs; part of the hash. */
  inputFiles?: readonly string[];
  /** Files (globs allowed) the job writes in its dir that are brought back with the results. */
  outputFiles?: readonly string[];
  /** Keys of `kwargs` that do not change the result. */
  hashIgnore?: readonly string[];
  preCmds?: readonly string[];
  postCmds?: readonly string[];
  envVars?: Readonly<Record<string, string>>;
  project?: Project;
  /**
   * Run `fn` (an autoparallelize wrapper) as one chunk of items, `args[0]`, through a pool in the job
   * (see runner/protocol). How the pool is sized is not part of the restart hash.
   */
  autopara?: AutoparaCallSpec;
}

export interface ResultsOptions {
  /** Give up waiting after this many seconds (the job goes on). Default: wait for ever. */
  timeout?: number;
  /** Longest pause between status checks, in seconds; checks start fast and back off to this. */
  checkInterval?: number;
}

export interface WaitOptions extends ResultsOptions {
  onProgress?: (counts: Partial<Record<JobStatus, number>>) => void;
  /** Return as soon as a job has failed or died, without waiting for the others. */
  stopOnFailure?: boolean;
  /** Statuses still waited for; default submitted and started. */
  ongoing?: readonly JobStatus[];
  /**
   * How the pause between rounds is chosen: 'adaptive' (the default) looks again soon while jobs
   * change state and backs off while nothing moves; 'growing' starts at 0.1 s and grows by half each
   * round. Both stop at the check interval.
   */
  pauses?: 'adaptive' | 'growing';
}

export interface JobResults<T = unknown> {
  result: T;
  /** What the function printed. */
  stdout: string;
  stderr: string;
}

const STDERR_TAIL_LINES = 20;

export class Job {
  private constructor(
    readonly project: Project,
    private record: JobRecord,
    private origin: Origin,
  ) {}

  /**
   * True when `create` found an identical earlier call and attached to it instead of staging anew;
   * false again once `start` has replaced a died job by a new one.
   */
  get reattached(): boolean { return this.origin.reattached; }
  /**
   * For a job this process made: why no earlier job was re-attached (no earlier job of that name,
   * the earlier one failed or was processed, which parts of the call changed: code, args, inputs, or
   * that the earlier one died and this call asks for other resources).
   */
  get missReason(): string | undefined { return this.origin.missReason; }
  get id(): string { return this.record.id; }
  get name(): string { return this.record.name; }
  get stageDir(): string { return this.record.stageDir; }
  get status(): JobStatus { return this.record.status; }
  /** The stored record as of the last call that touched it. */
  get info(): JobRecord { return this.record; }

  private get callOptions(): CallOptions {
    return this.origin.prepared?.options ?? {};
  }

  /** Re-read the record from the database. */
  reload(): JobRecord {
    const r = this.project.store.get(this.id);
    if (!r && this.origin.discardedBecause) {
      throw new XprError(`Job ${this.id} was removed when its start failed (${this.origin.discardedBecause})`, {
        hint: 'Nothing of it was kept: fix what the start said and start it again (it is staged anew).',
      });
    }
    if (!r) throw new XprError(`Job ${this.id} is no longer in ${this.project.store.path}`, { hint: 'It was removed, e.g. by xpr rm.' });
    this.record = r;
    return r;
  }

  /** An existing job by id. */
  static get(id: string, project: Project = currentProject()): Job {
    const r = project.store.get(id);
    if (!r) throw new XprError(`No job with id ${id} in ${project.store.path}`);
    return new Job(project, r, { reattached: true });
  }

  /**
   * Stage a call as a job, or attach to an identical earlier one that can still give its result
   * (created, submitted, started, succeeded or died). After failed/processed/cleaned a new job is made.
   */
  static async create(options: JobOptions): Promise<Job> {
    return (await Job.createMany([options], callerFile()))[0]!;
  }

  /**
   * `create` for many calls at once: hashes them all, then in one IMMEDIATE transaction looks the
   * hashes up in one query, stages the new ones and records them, so that two drivers of the same
   * script can never both make a job for one call. Identical calls in the batch share one job.
   * With `checkStart` (the options the jobs will be started with), a start that would fail is
   * reported before anything is staged or recorded.
   */
  static async createMany(
    calls: readonly JobOptions[], caller: string | undefined = callerFile(), options: { checkStart?: StartOptions } = {},
  ): Promise<Job[]> {
    checkCalls(calls);
    if (calls.length === 0) return [];
    const project = calls[0]!.project ?? currentProject();
    const prepared: PreparedCall[] = [];
    for (const options of calls) prepared.push(await prepareCall(options, caller));
    if (options.checkStart && wouldStage(project, prepared)) await planStart(project, options.checkStart).system.ensureRundir();
    // Also for calls that re-attach: a job made before the project moved may be started now, and
    // its source map must name the files where they are now.
    for (const p of prepared) writeBundle(path.join(project.stageRoot, CODE_DIR), p.codeFile, p.bundle);
    const { found, fresh, earlier } = project.store.transaction(() => {
      const found = liveJobs(project, prepared.map((p) => p.hash));
      const fresh = stageAll(project.stageRoot, prepared.filter((p) => !found.has(p.hash)));
      const earlier = project.store.latestByNames([...new Set([...fresh.values()].map((j) => j.name))]);
      project.store.insertMany([...fresh.values()]);
      return { found, fresh, earlier };
    });
    const created = new Set<string>();
    return prepared.map((p) => {
      const record = found.get(p.hash) ?? project.store.get(fresh.get(p.hash)!.id)!;
      const isNew = fresh.has(p.hash) && !created.has(p.hash);
      created.add(p.hash);
      const miss = isNew ? missReason(earlier.get(p.options.name), p.hash, p.parts) : undefined;
      return new Job(project, record, { reattached: !isNew, missReason: miss, prepared: p });
    });
  }

  /** Submit the job (a no-op for a job already submitted or done, e.g. after re-attaching). */
  async start(options: StartOptions): Promise<void> {
    await Job.startMany([this], options);
  }

  /**
   * Submit several jobs with the same resources on one system: they go out as one job array
   * (split by the system's max_array_size), each element in its own job dir. Jobs already submitted
   * or done are left as they are, except a re-attached job that cannot give its result any more:
   * one that died with a named reason while this start asks for other resources, or whose result
   * is lost (RESULT_MISSING, RESULT_CORRUPT), is replaced by a new job for the same call.
   * If the start fails before the scheduler has the jobs, the jobs this process made are removed
   * (record and stage dir); re-attached ones are left as they were.
   */
  static async startMany(jobs: readonly Job[], options: StartOptions): Promise<void> {
    if (jobs.length === 0) return;
    const plan = await Job.prepareStart(jobs, options);
    if (!plan) return;
    const project = jobs[0]!.project;
    const runner = await runnerBundle();
    const runnerFile = `runner-${runner.hash}.mjs`;
    const codeDir = path.join(project.stageRoot, CODE_DIR);
    writeBundle(codeDir, runnerFile, runner);
    const records = jobs.map((j) => j.reload());
    const codeFiles = new Set([runnerFile]);
    for (const r of records) if (typeof r.info.codeFile === 'string') codeFiles.add(r.info.codeFile);
    // Source maps go along so remote stacks name the user's files (code staged by an older xpr has none).
    for (const f of [...codeFiles]) if (fs.existsSync(path.join(codeDir, `${f}.map`))) codeFiles.add(`${f}.map`);
    const first = jobs[0]!.callOptions;
    await submitJobs(project, plan.system, records, {
      node: plan.ask.node,
      codeFiles: [...codeFiles],
      headerExtra: plan.ask.headerExtra,
      preCmds: first.preCmds ?? [],
      postCmds: first.postCmds ?? [],
      envVars: first.envVars ?? {},
      runnerHash: runner.hash,
      info: askInfo(plan.ask),
    });
    for (const j of jobs) j.reload();
  }

  /**
   * Everything a start does before it claims jobs for submission: check its options and the rundir,
   * and put new jobs in place of died ones that must be replaced. Returns undefined when there is
   * nothing to submit. If any of it fails, the jobs this process made are removed again (record and
   * stage dir), and jobs that were there before are left as they were.
   */
  private static async prepareStart(jobs: readonly Job[], options: StartOptions): Promise<StartPlan | undefined> {
    try {
      const plan = planStart(jobs[0]!.project, options);
      Job.restageDiscarded(jobs);
      for (const j of jobs) j.reload();
      for (const j of jobs) j.noteLostResult();
      await Job.refreshIfAskChanged(jobs, plan);
      const replace = jobs.filter((j) => j.mustReplace(plan));
      if (!replace.length && !jobs.some((j) => j.status === 'created')) return undefined;
      await plan.system.ensureRundir();
      Job.replaceDied(replace, plan);
      return plan;
    } catch (err) {
      Job.discardUnsubmitted(jobs, err);
      throw err;
    }
  }

  /**
   * Jobs a failed start of this process removed are staged again for this one, so that a Job
   * object stays usable after a start failed: as a new job, or attached to an identical call's job
   * made since. Identical calls sharing a job share its new one.
   */
  private static restageDiscarded(jobs: readonly Job[]): void {
    const again = new Map<string, JobRecord>();
    for (const job of jobs) {
      const { discardedBecause, ...origin } = job.origin;
      if (discardedBecause === undefined || !origin.prepared) continue;
      const shared = again.get(job.id);
      const { record, made } = shared ? { record: shared, made: false } : job.stageAgain(origin.prepared);
      again.set(job.id, record);
      job.record = record;
      job.origin = { ...origin, reattached: !made };
    }
  }

  private stageAgain(p: PreparedCall): { record: JobRecord; made: boolean } {
    const { store, stageRoot } = this.project;
    return store.transaction(() => {
      const live = liveJobs(this.project, [p.hash]).get(p.hash);
      if (live) return { record: live, made: false };
      const fresh = stageCall(stageRoot, p);
      store.insertMany([fresh]);
      return { record: store.get(fresh.id)!, made: true };
    });
  }

  /**
   * Whether this re-attached job must give way to a new one for this start: it died with a named
   * reason (the scheduler's, so its files will not change) and either its result is lost or this
   * start asks for something else. A job that died with no reason named stays, as in ExPyRe: its
   * files may yet show up. Only a job whose call this process staged can be staged again.
   */
  private mustReplace(plan: StartPlan): boolean {
    const r = this.record;
    if (r.status !== 'died' || !r.remoteReason || !this.origin.prepared) return false;
    if (RESULT_LOST_REASONS.includes(r.remoteReason)) return true;
    const asked = recordedAsk(r);
    // Asked for what, nobody knows (recorded by an older xpr): as before, it is re-attached.
    return asked !== undefined && !sameAsk(asked, plan.ask);
  }

  /**
   * A succeeded job whose result file is gone (its stage dir deleted, say) can no longer give its
   * result: it is recorded as died (RESULT_MISSING), which a start replaces and getResults explains.
   */
  private noteLostResult(): void {
    const r = this.record;
    if (r.status === 'succeeded' && !fs.existsSync(path.join(r.stageDir, RESULT_FILE))) this.markLost('RESULT_MISSING', lostResultDetail(r.stageDir));
  }

  /** Record a succeeded job as died for want of its result; a processed one stays (a rerun runs anew anyway). */
  private markLost(reason: FailureReason, detail: string): void {
    const r = this.record;
    // Another process that got there first has recorded the same loss.
    applyTransition(this.project.store, r.id, {
      event: 'lose_result', from: 'succeeded', fields: { remoteReason: reason, info: { ...r.info, diedDetail: detail } },
    });
    this.reload();
  }

  /**
   * Jobs still recorded as queued or running that asked for something else may have died meanwhile
   * (of the very limit the new call raises, say): one look at their systems tells before deciding.
   * Jobs asked for the same are left to `getResults` to look at, as ever.
   */
  private static async refreshIfAskChanged(jobs: readonly Job[], plan: StartPlan): Promise<void> {
    const stale = uniqueById(jobs).filter((j) => {
      if (j.status !== 'submitted' && j.status !== 'started') return false;
      const asked = recordedAsk(j.record);
      return asked !== undefined && !sameAsk(asked, plan.ask);
    });
    if (stale.length === 0) return;
    await refreshJobs(jobs[0]!.project, stale.map((j) => j.record));
    for (const j of jobs) j.reload();
  }

  /**
   * Put a new job for the same call in place of each of these died jobs, and say why on stderr. The
   * old one stays in the history as it ended, marked `replacedBy`, and no longer re-attaches. Identical
   * calls sharing a died job share its replacement.
   */
  private static replaceDied(jobs: readonly Job[], plan: StartPlan): void {
    const done = new Map<string, JobRecord>();
    for (const job of jobs) {
      const old = job.record;
      const shared = done.get(old.id);
      const { record, made } = shared ? { record: shared, made: false } : job.stageReplacement();
      done.set(old.id, record);
      const { said, now } = replacementNote(old, plan);
      if (made) process.stderr.write(`xpr: job ${old.id} ${said}; resubmitting ${now} as job ${record.id}\n`);
      job.origin = {
        ...job.origin, reattached: !made, missReason: `the same call ran as ${old.id}, which ${said}`,
        previous: { record: old, origin: job.origin },
      };
      job.record = record;
    }
  }

  /**
   * Stage this job's call again as a new job and record it, in one transaction with marking this
   * one replaced; or, when another run of the script replaced it first, that run's job.
   */
  private stageReplacement(): { record: JobRecord; made: boolean } {
    const store = this.project.store;
    return store.transaction(() => {
      const old = store.get(this.id);
      const successorId = old?.info.replacedBy;
      const successor = typeof successorId === 'string' ? store.get(successorId) : undefined;
      if (successor && REATTACHABLE.includes(successor.status)) return { record: successor, made: false };
      const fresh = stageCall(this.project.stageRoot, this.origin.prepared!, { replaces: this.id });
      store.insertMany([fresh]);
      if (old) store.update(old.id, { info: { ...old.info, replacedBy: fresh.id } }, [old.status]);
      return { record: store.get(fresh.id)!, made: true };
    });
  }

  /**
   * After a failed start: remove each job this process made that no scheduler has heard of (still
   * created, no submit intent held), its record and its stage dir, so a failed start leaves nothing
   * half made; a job it put in place of a died one gives the place back. A job whose submission
   * may have reached the scheduler keeps its intent, for the next run to resolve.
   */
  private static discardUnsubmitted(jobs: readonly Job[], err: unknown): void {
    const store = jobs[0]!.project.store;
    const because = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    const made = uniqueById(jobs.filter((j) => !j.origin.reattached));
    const removed = store.transaction(() => made.flatMap((j) => {
      const r = store.get(j.id);
      if (!r || r.status !== 'created' || r.submitIntent !== null) return [];
      store.delete([r.id]);
      giveBackPlace(store, r);
      return [r];
    }));
    for (const r of removed) fs.rmSync(r.stageDir, { recursive: true, force: true });
    const gone = new Set(removed.map((r) => r.id));
    for (const j of jobs) {
      if (!gone.has(j.id)) continue;
      const previous = j.origin.previous;
      if (previous) {
        j.record = store.get(previous.record.id) ?? previous.record;
        j.origin = previous.origin;
      } else {
        j.origin = { ...j.origin, discardedBecause: because };
      }
    }
  }

  /**
   * Wait for many jobs at once: each round is one status query per system, however many jobs.
   * Calls `onProgress` with the count of jobs in each status after every round. Returns when none
   * is still submitted or started (or in `ongoing`), or with `stopOnFailure` as soon as one has failed
   * or died; throws JobTimeoutError after `timeout` seconds. The records of `jobs` are kept up to date.
   */
  static async waitAll(jobs: readonly Job[], options: WaitOptions = {}): Promise<void> {
    if (jobs.length === 0) return;
    const project = jobs[0]!.project;
    const deadline = options.timeout === undefined ? Infinity : Date.now() + options.timeout * 1000;
    const inPlace = () => jobs.every((j) => !j.record.system || project.system(j.record.system).inPlace);
    // Looked up only when needed: a caller that gives the interval may have jobs on systems gone from the config.
    const maxPause = (options.checkInterval ?? (inPlace() ? 2 : 30)) * 1000;
    const ongoing = options.ongoing ?? ['submitted', 'started'];
    const nextPause = options.pauses === 'growing' ? growingPauses(maxPause) : adaptivePauses(maxPause);
    for (;;) {
      const records = await refreshJobs(project, jobs.map((j) => j.reload()));
      records.forEach((r, i) => { jobs[i]!.record = r; });
      const counts: Partial<Record<JobStatus, number>> = {};
      for (const r of records) counts[r.status] = (counts[r.status] ?? 0) + 1;
      options.onProgress?.(counts);
      if (options.stopOnFailure && (counts.failed || counts.died)) return;
      const waiting = records.filter((r) => ongoing.includes(r.status));
      if (waiting.length === 0) return;
      if (Date.now() >= deadline) throw new JobTimeoutError(waiting[0]!.id, options.timeout ?? 0, waiting[0]!.status);
      await new Promise((r) => setTimeout(r, Math.min(nextPause(counts), Math.max(0, deadline - Date.now()))));
    }
  }

  /** Check the job's state once (one scheduler query) and return its status. */
  async sync(): Promise<JobStatus> {
    const [r] = await refreshJobs(this.project, [this.reload()]);
    this.record = r!;
    return this.record.status;
  }

  /**
   * Wait for the job to end and return its result and the function's output. Throws RemoteError
   * (the remote exception, its stack and stderr) if the function threw, JobDiedError if the job
   * ended without a result, JobTimeoutError if `timeout` passed first.
   */
  async getResults<T = unknown>(options: ResultsOptions = {}): Promise<JobResults<T>> {
    if (this.reload().status === 'created') {
      throw new XprError(`Job ${this.id} has not been started`, { hint: 'Call start() first.' });
    }
    await Job.waitAll([this], options);
    return this.outcome<T>();
  }

  private outcome<T>(): JobResults<T> {
    const r = this.record;
    const read = (f: string) => readIfExists(path.join(r.stageDir, f));
    switch (r.status) {
      case 'succeeded':
      case 'processed': {
        const res = readResult(path.join(r.stageDir, RESULT_FILE));
        if ('problem' in res) throw this.lostResult(res.problem);
        if (!res.ok) throw new RemoteError(res.error, this.context());
        return { result: decode(res.value) as T, stdout: read(FN_STDOUT) ?? '', stderr: read(FN_STDERR) ?? '' };
      }
      case 'failed': {
        const res = read(RESULT_FILE) === undefined ? undefined : readResult(path.join(r.stageDir, RESULT_FILE));
        if (res && 'problem' in res) {
          throw new XprError(`Job ${r.id} failed, and ${res.problem}`, {
            hint: `An identical call runs afresh: run it again. What it printed: xpr logs ${shWord(r.id)}`,
          });
        }
        if (res && !res.ok) throw new RemoteError(res.error, this.context());
        const code = read('_xpr_exit_code')?.trim();
        throw new RemoteError({
          name: 'JobScriptError',
          message: `the job script ended (exit code ${code ?? 'unknown'}) before the function could report`,
          stack: '(no remote stack: node did not get to run the function; see the stderr below)',
        }, this.context());
      }
      case 'died':
        throw this.diedError();
      default:
        throw new XprError(`Job ${r.id} is ${r.status}; its results are gone`);
    }
  }

  private context(): JobContext {
    const r = this.record;
    return { jobId: r.id, jobDir: r.stageDir, stderrTail: stderrTail(r.stageDir) };
  }

  private diedError(): JobDiedError {
    const r = this.record;
    const detail = typeof r.info.diedDetail === 'string' ? r.info.diedDetail : undefined;
    return new JobDiedError(this.context(), r.remoteReason ?? undefined, {
      ...(detail ? { detail } : {}), autopara: this.callOptions.autopara !== undefined,
    });
  }

  /**
   * The result of a succeeded job cannot be had: its file is gone (with the stage dir, say) or
   * cannot be parsed. The job is recorded as died for that reason, so that a rerun resubmits it.
   */
  private lostResult(problem: string): JobDiedError {
    const r = this.record;
    const missing = !fs.existsSync(path.join(r.stageDir, RESULT_FILE));
    const detail = missing ? lostResultDetail(r.stageDir) : problem;
    if (r.status === 'succeeded') this.markLost(missing ? 'RESULT_MISSING' : 'RESULT_CORRUPT', detail);
    return new JobDiedError(this.context(), missing ? 'RESULT_MISSING' : 'RESULT_CORRUPT', {
      detail, autopara: this.callOptions.autopara !== undefined,
    });
  }

  /**
   * Cancel the job as `xpr cancel` does: on its system, where it then ends as died (CANCELLED); one
   * never submitted is marked failed (CANCELLED). Nothing happens to a job that has ended, or whose
   * submission was cut short (the next start resolves that).
   */
  async cancel(): Promise<void> {
    const r = this.reload();
    if (whyNotCancellable(r) !== undefined) return;
    const { failures } = await cancelJobs(this.project, [r]);
    this.reload();
    if (failures.length) throw failures[0]!.error;
  }

  /** Mark the job's results as consumed: an identical new call then runs afresh. */
  markProcessed(): void {
    this.moveOn('process', 'marked processed');
  }

  /** Apply a transition from the status the job is in now; another process changing it first is an error. */
  private moveOn(event: JobEvent, doing: string, fields?: Transition['fields']): void {
    const r = this.reload();
    const moved = applyTransition(this.project.store, r.id, { event, from: r.status, ...(fields ? { fields } : {}) });
    if (!moved.applied) throw changedMeanwhile(r.id, r.status, moved.record, doing);
    this.record = moved.record;
  }

  /**
   * Remove the job's dir on the system and its staged inputs; with `wipe`, the whole local stage
   * dir too. The job is then `cleaned`.
   */
  async clean(options: { wipe?: boolean } = {}): Promise<void> {
    const r = this.reload();
    if (r.status === 'submitted' || r.status === 'started') {
      throw new XprError(`Job ${r.id} is still ${r.status}`, { hint: 'Cancel it first, or wait for it to end.' });
    }
    if (r.system) await this.project.system(r.system).removeRemote(r);
    if (options.wipe) {
      fs.rmSync(r.stageDir, { recursive: true, force: true });
    } else {
      fs.rmSync(path.join(r.stageDir, CALL_FILE), { force: true });
    }
    this.moveOn('clean', 'cleaned', { info: { ...r.info, wiped: options.wipe ?? false } });
  }
}

// A mistake in a call shows the user's own line, not xpr's insides (see boundary.ts).
userEntryPoints(Job, ['get', 'create', 'createMany', 'startMany', 'waitAll']);
userEntryPoints(Job.prototype, ['start', 'sync', 'getResults', 'cancel', 'clean', 'markProcessed']);

/**
 * Adaptive pauses: while jobs are changing state more changes are near, so look again soon; while
 * nothing moves, back off towards the check interval.
 */
function adaptivePauses(maxPause: number): (counts: Partial<Record<JobStatus, number>>) => number {
  let pause = Math.min(100, maxPause);
  let lastShape = '';
  return (counts) => {
    const shape = JSON.stringify(counts);
    pause = shape === lastShape ? Math.min(maxPause, pause * 1.5) : Math.min(250, maxPause);
    lastShape = shape;
    return pause;
  };
}

/** Pauses from 0.1 s growing by half each round, up to the check interval, whatever the jobs do. */
function growingPauses(maxPause: number): () => number {
  let pause = Math.min(100, maxPause);
  let first = true;
  return () => {
    if (!first) pause = Math.min(maxPause, pause * 1.5);
    first = false;
    return pause;
  };
}

/** Why a new call did not re-attach to the newest earlier job of the same name. */
function missReason(earlier: JobRecord | undefined, hash: string, parts: Record<string, string>): string {
  if (!earlier) return 'no earlier job of this name';
  if (earlier.hash === hash) return `the same call ran as ${earlier.id}, which is ${earlier.status}`;
  const changed = hashDiff(earlier.hashParts, parts);
  return `the call differs from ${earlier.id} in: ${changed.length ? changed.join(', ') : 'its hash'}`;
}

type PreparedCall = Awaited<ReturnType<typeof prepareCall>>;

/** The options of a call that its start needs, or that say how it was made. */
type CallOptions = Partial<Pick<JobOptions, 'preCmds' | 'postCmds' | 'envVars' | 'autopara'>>;

/** How a Job object came to hold its record. */
interface Origin {
  /** An identical earlier call was attached to; false for the job this process made. */
  reattached: boolean;
  missReason?: string | undefined;
  /** The call as this process staged it; kept to stage it again if the job must be replaced. */
  prepared?: PreparedCall;
  /** Before `start` replaced a died job: what this object held, given back if the start fails. */
  previous?: { record: JobRecord; origin: Origin };
  /** Why the job was removed: its start failed before any scheduler had it. */
  discardedBecause?: string;
}

function uniqueById(jobs: readonly Job[]): Job[] {
  return [...new Map(jobs.map((j) => [j.id, j])).values()];
}

/**
 * Whether creating these calls would stage any: true unless each re-attaches. With no database yet
 * nothing can be re-attached, and none is made just to look.
 */
function wouldStage(project: Project, prepared: readonly PreparedCall[]): boolean {
  if (!fs.existsSync(project.paths.dbPath)) return true;
  const found = liveJobs(project, prepared.map((p) => p.hash));
  return prepared.some((p) => !found.has(p.hash));
}

/**
 * The job each hash re-attaches to: the newest in a re-attachable status, unless that is a died job
 * a start has replaced. Then its replacement has failed, been processed or been removed since, and
 * the call runs afresh as after any of those.
 */
function liveJobs(project: Project, hashes: readonly string[]): Map<string, JobRecord> {
  const found = project.store.findByHashes(hashes, REATTACHABLE);
  for (const [hash, r] of found) if (r.status === 'died' && typeof r.info.replacedBy === 'string') found.delete(hash);
  return found;
}

/** Stage each call once (identical calls share one); if one cannot be staged, none is left. */
function stageAll(stageRoot: string, prepared: readonly PreparedCall[]): Map<string, NewJob> {
  const fresh = new Map<string, NewJob>();
  try {
    for (const p of prepared) if (!fresh.has(p.hash)) fresh.set(p.hash, stageCall(stageRoot, p));
  } catch (err) {
    for (const j of fresh.values()) fs.rmSync(j.stageDir, { recursive: true, force: true });
    throw err;
  }
  return fresh;
}

/** Write a new job's stage dir (call file, input files); returns its record to insert. */
function stageCall(stageRoot: string, p: PreparedCall, extraInfo: Record<string, unknown> = {}): NewJob {
  const id = newJobId(p.options.name, p.hash);
  const stageDir = path.join(stageRoot, `run_${id}`);
  const job: NewJob = {
    id, name: p.options.name, hash: p.hash, hashParts: p.parts, stageDir,
    info: {
      codeFile: p.codeFile, module: p.ref.modulePath, export: p.ref.exportName,
      ...(p.options.outputFiles?.length ? { outputFiles: [...p.options.outputFiles] } : {}),
      ...extraInfo,
    },
  };
  try {
    fs.mkdirSync(stageDir, { recursive: true });
    for (const f of p.inputFiles) fs.cpSync(f, path.join(stageDir, path.basename(f)), { recursive: true });
    // The record as made, beside the call: a lost or damaged jobs.db is rebuilt from it (xpr db_rebuild).
    writeJobFile(job);
    fs.writeFileSync(path.join(stageDir, CALL_FILE), JSON.stringify(p.call));
  } catch (err) {
    fs.rmSync(stageDir, { recursive: true, force: true });
    throw new XprError(`Cannot stage job ${id} in ${stageDir}: ${(err as Error).message}`, {
      hint: `The project's _expyre dir (${stageRoot}) must be writable.`, cause: err,
    });
  }
  return job;
}

/** A discarded job that had replaced a died one: the died one is this call's job again. */
function giveBackPlace(store: Project['store'], discarded: JobRecord): void {
  const oldId = discarded.info.replaces;
  const old = typeof oldId === 'string' ? store.get(oldId) : undefined;
  if (!old || old.info.replacedBy !== discarded.id) return;
  const { replacedBy: _gone, ...info } = old.info;
  store.update(old.id, { info }, [old.status]);
}

/**
 * How a died job is told apart from its replacement, for the log line and `missReason`:
 * `said` ("died (TIMEOUT) with max_time 60 s") and what the new one does ("with max_time 120 s").
 */
function replacementNote(old: JobRecord, plan: StartPlan): { said: string; now: string } {
  const reason = old.remoteReason!;
  const asked = recordedAsk(old);
  if (RESULT_LOST_REASONS.includes(reason) || !asked) {
    const detail = typeof old.info.diedDetail === 'string' ? `: ${old.info.diedDetail}` : '';
    return { said: `died (${reason})${detail}`, now: 'it' };
  }
  const change = describeChange(asked, plan.ask);
  return { said: `died (${reason}) ${change.was}`, now: change.now };
}

/** What is gone when a succeeded job's result file is: the whole stage dir, or the file. */
function lostResultDetail(stageDir: string): string {
  if (!fs.existsSync(stageDir)) return `its stage dir ${stageDir} is gone, and its result with it`;
  return `its result file ${path.join(stageDir, RESULT_FILE)} is gone`;
}

/** Everything about a call that does not need the database: code, hash, the staged call file. */
async function prepareCall(options: JobOptions, caller: string | undefined) {
  validateJobName(options.name);
  const ref = await locateFunction(options.fn, {
    ...(options.module !== undefined ? { module: options.module } : {}),
    ...(options.exportName !== undefined ? { exportName: options.exportName } : {}),
    ...(caller !== undefined ? { callerFile: caller } : {}),
  });
  const bundle = await bundleModule(ref.modulePath);
  const inputFiles = (options.inputFiles ?? []).map((f) => path.resolve(f));
  for (const f of inputFiles) {
    if (!fs.existsSync(f)) throw new XprError(`Input file ${f} does not exist`, { hint: 'Check input_files / inputFiles.' });
  }
  // Encoded once: the job gets, and the hash sees, the same thing.
  const encoded = encodeCall(options.args ?? [], options.kwargs, options.hashIgnore ?? []);
  const { hash, parts } = callHash({ codeHash: bundle.hash, exportName: ref.exportName, call: encoded, inputFiles });
  const codeFile = `op-${bundle.hash}.mjs`;
  const call: CallSpec = {
    version: 1,
    code: { file: `../${CODE_DIR}/${codeFile}` },
    export: ref.exportName,
    args: encoded.args,
    ...(encoded.kwargs !== undefined ? { kwargs: encoded.kwargs } : {}),
    ...(options.autopara ? { invoke: 'autopara' as const, autopara: options.autopara } : {}),
  };
  return { options, ref, bundle, codeFile, inputFiles, hash, parts, call };
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Last lines of the function's stderr, then of the job script's: what a user reads first. */
export function stderrTail(stageDir: string, lines = STDERR_TAIL_LINES): string {
  const parts = [FN_STDERR, JOB_STDERR].map((f) => {
    const t = readIfExists(path.join(stageDir, f))?.trimEnd();
    return t ? `[${f}]\n${t.split('\n').slice(-lines).join('\n')}` : '';
  }).filter(Boolean);
  return parts.join('\n');
}
