// One function call as one batch job, in the manner of ExPyRe: `Job.create` stages the call (or
// re-attaches to an identical earlier one), `start` submits it, `getResults` waits and returns the
// value or throws the remote error, then `markProcessed` / `clean`.
import fs from 'node:fs';
import path from 'node:path';
import { JobDiedError, JobTimeoutError, RemoteError, XprError } from '../errors.js';
import { Resources, type ResourcesSpec } from '../resources/resources.js';
import {
  CALL_FILE, CODE_DIR, FN_STDERR, FN_STDOUT, JOB_STDERR, RESULT_FILE, type AutoparaCallSpec, type CallResult, type CallSpec,
} from '../runner/protocol.js';
import type { JobRecord, NewJob } from '../store/jobstore.js';
import { FINAL, REATTACHABLE, type JobStatus } from '../store/status.js';
import { decode } from '../util/codec.js';
import { bundleModule, callerFile, locateFunction, runnerBundle, writeBundle, type AnyFunction } from './code.js';
import { refreshJobs, submitJobs } from './engine.js';
import { callHash, encodeCall, hashDiff, newJobId, validateJobName } from './identity.js';
import { currentProject, type Project } from './project.js';

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

export interface StartOptions {
  /** System name from config.json, or the built-in 'local'. */
  system?: string;
  resources: ResourcesSpec | Resources;
  headerExtra?: readonly string[];
  exactFit?: boolean;
  partialNode?: boolean;
}

export interface ResultsOptions {
  /** Give up waiting after this many seconds (the job goes on). Default: wait for ever. */
  timeout?: number;
  /** Longest pause between status checks, in seconds; checks start fast and back off to this. */
  checkInterval?: number;
}

export interface JobResults<T = unknown> {
  result: T;
  /** What the function printed. */
  stdout: string;
  stderr: string;
}

const STDERR_TAIL_LINES = 20;

export class Job {
  /** True when `create` found an identical earlier call and attached to it instead of staging anew. */
  readonly reattached: boolean;
  /**
   * For a job `create` made anew: why no earlier job was re-attached (no earlier job of that name,
   * the earlier one failed or was processed, or which parts of the call changed: code, args, inputs).
   */
  readonly missReason: string | undefined;

  private constructor(
    readonly project: Project,
    private record: JobRecord,
    reattached: boolean,
    private readonly callOptions: Pick<JobOptions, 'preCmds' | 'postCmds' | 'envVars'> = {},
    missReason?: string,
  ) {
    this.reattached = reattached;
    this.missReason = missReason;
  }

  get id(): string { return this.record.id; }
  get name(): string { return this.record.name; }
  get stageDir(): string { return this.record.stageDir; }
  get status(): JobStatus { return this.record.status; }
  /** The stored record as of the last call that touched it. */
  get info(): JobRecord { return this.record; }

  /** Re-read the record from the database. */
  reload(): JobRecord {
    const r = this.project.store.get(this.id);
    if (!r) throw new XprError(`Job ${this.id} is no longer in ${this.project.store.path}`, { hint: 'It was removed, e.g. by xpr rm.' });
    this.record = r;
    return r;
  }

  /** An existing job by id. */
  static get(id: string, project: Project = currentProject()): Job {
    const r = project.store.get(id);
    if (!r) throw new XprError(`No job with id ${id} in ${project.store.path}`);
    return new Job(project, r, true);
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
   */
  static async createMany(calls: readonly JobOptions[], caller: string | undefined = callerFile()): Promise<Job[]> {
    if (calls.length === 0) return [];
    const project = calls[0]!.project ?? currentProject();
    const prepared: PreparedCall[] = [];
    for (const options of calls) prepared.push(await prepareCall(options, caller));
    // Also for calls that re-attach: a job made before the project moved may be started now, and
    // its source map must name the files where they are now.
    for (const p of prepared) writeBundle(path.join(project.stageRoot, CODE_DIR), p.codeFile, p.bundle);
    const { found, fresh, earlier } = project.store.transaction(() => {
      const found = project.store.findByHashes(prepared.map((p) => p.hash), REATTACHABLE);
      const fresh = new Map<string, NewJob>();
      for (const p of prepared) {
        if (found.has(p.hash) || fresh.has(p.hash)) continue;
        fresh.set(p.hash, stageCall(project.stageRoot, p));
      }
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
      return new Job(project, record, !isNew, p.options, miss);
    });
  }

  /** Submit the job (a no-op for a job already submitted or done, e.g. after re-attaching). */
  async start(options: StartOptions): Promise<void> {
    await Job.startMany([this], options);
  }

  /**
   * Submit several jobs with the same resources on one system: they go out as one job array
   * (split by the system's max_array_size), each element in its own job dir.
   */
  static async startMany(jobs: readonly Job[], options: StartOptions): Promise<void> {
    if (jobs.length === 0) return;
    const project = jobs[0]!.project;
    const system = project.system(options.system ?? 'local');
    const resources = options.resources instanceof Resources ? options.resources : Resources.parse(options.resources);
    // On the local scheduler the machine is one node that jobs share, so a part of it is the norm.
    const node = resources.findNodes(system.config.partitions, {
      exactFit: options.exactFit ?? true, partialNode: options.partialNode ?? system.config.scheduler === 'local',
    });
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
    await submitJobs(project, system, records, {
      node,
      codeFiles: [...codeFiles],
      headerExtra: options.headerExtra ?? [],
      preCmds: first.preCmds ?? [],
      postCmds: first.postCmds ?? [],
      envVars: first.envVars ?? {},
      runnerHash: runner.hash,
      info: { resources: resources.toSpec(), node },
    });
    for (const j of jobs) j.reload();
  }

  /**
   * Wait for many jobs at once: each round is one status query per system, however many jobs.
   * Calls `onProgress` with the count of jobs in each status after every round. Returns when none
   * is still submitted or started; throws JobTimeoutError after `timeout` seconds.
   */
  static async waitAll(jobs: readonly Job[], options: ResultsOptions & {
    onProgress?: (counts: Partial<Record<JobStatus, number>>) => void;
  } = {}): Promise<void> {
    if (jobs.length === 0) return;
    const project = jobs[0]!.project;
    const deadline = options.timeout === undefined ? Infinity : Date.now() + options.timeout * 1000;
    const inPlace = jobs.every((j) => !j.record.system || project.system(j.record.system).inPlace);
    const maxPause = (options.checkInterval ?? (inPlace ? 2 : 30)) * 1000;
    let pause = Math.min(100, maxPause);
    let lastShape = '';
    for (;;) {
      const records = await refreshJobs(project, jobs.map((j) => j.reload()));
      records.forEach((r, i) => { jobs[i]!.record = r; });
      const counts: Partial<Record<JobStatus, number>> = {};
      for (const r of records) counts[r.status] = (counts[r.status] ?? 0) + 1;
      options.onProgress?.(counts);
      const waiting = records.filter((r) => r.status === 'submitted' || r.status === 'started');
      if (waiting.length === 0) return;
      if (Date.now() >= deadline) throw new JobTimeoutError(waiting[0]!.id, options.timeout ?? 0, waiting[0]!.status);
      // Adaptive: while jobs are changing state more changes are near, so look again soon; while
      // nothing moves, back off towards the check interval.
      const shape = JSON.stringify(counts);
      pause = shape === lastShape ? Math.min(maxPause, pause * 1.5) : Math.min(250, maxPause);
      lastShape = shape;
      await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
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
    const context = () => ({ jobId: r.id, jobDir: r.stageDir, stderrTail: stderrTail(r.stageDir) });
    switch (r.status) {
      case 'succeeded':
      case 'processed': {
        const res = JSON.parse(read(RESULT_FILE) ?? 'null') as CallResult | null;
        if (!res?.ok) throw new XprError(`Job ${r.id} has no result file in ${r.stageDir}`);
        return { result: decode(res.value) as T, stdout: read(FN_STDOUT) ?? '', stderr: read(FN_STDERR) ?? '' };
      }
      case 'failed': {
        const text = read(RESULT_FILE);
        const res = text ? (JSON.parse(text) as CallResult) : undefined;
        if (res && !res.ok) throw new RemoteError(res.error, context());
        const code = read('_xpr_exit_code')?.trim();
        throw new RemoteError({
          name: 'JobScriptError',
          message: `the job script ended (exit code ${code ?? 'unknown'}) before the function could report`,
          stack: '(no remote stack: node did not get to run the function; see the stderr below)',
        }, context());
      }
      case 'died':
        throw new JobDiedError(context(), r.remoteReason ?? undefined);
      default:
        throw new XprError(`Job ${r.id} is ${r.status}; its results are gone`);
    }
  }

  /** Cancel the job on its system; it then ends as died (CANCELLED). */
  async cancel(): Promise<void> {
    const r = this.reload();
    if (FINAL.includes(r.status) || !r.system) return;
    if (r.remoteId) await this.project.system(r.system).cancel([r.remoteId]);
    if (r.status === 'created') {
      this.project.store.update(r.id, { status: 'failed', remoteReason: 'CANCELLED' }, ['created']);
      this.reload();
    }
  }

  /** Mark the job's results as consumed: an identical new call then runs afresh. */
  markProcessed(): void {
    this.project.store.update(this.id, { status: 'processed' });
    this.reload();
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
    this.project.store.update(r.id, { status: 'cleaned', info: { ...r.info, wiped: options.wipe ?? false } });
    this.reload();
  }
}

/** Why a new call did not re-attach to the newest earlier job of the same name. */
function missReason(earlier: JobRecord | undefined, hash: string, parts: Record<string, string>): string {
  if (!earlier) return 'no earlier job of this name';
  if (earlier.hash === hash) return `the same call ran as ${earlier.id}, which is ${earlier.status}`;
  const changed = hashDiff(earlier.hashParts, parts);
  return `the call differs from ${earlier.id} in: ${changed.length ? changed.join(', ') : 'its hash'}`;
}

type PreparedCall = Awaited<ReturnType<typeof prepareCall>>;

/** Write a new job's stage dir (call file, input files); returns its record to insert. */
function stageCall(stageRoot: string, p: PreparedCall): NewJob {
  const id = newJobId(p.options.name, p.hash);
  const stageDir = path.join(stageRoot, `run_${id}`);
  fs.mkdirSync(stageDir, { recursive: true });
  for (const f of p.inputFiles) fs.cpSync(f, path.join(stageDir, path.basename(f)), { recursive: true });
  fs.writeFileSync(path.join(stageDir, CALL_FILE), JSON.stringify(p.call));
  return {
    id, name: p.options.name, hash: p.hash, hashParts: p.parts, stageDir,
    info: {
      codeFile: p.codeFile, module: p.ref.modulePath, export: p.ref.exportName,
      ...(p.options.outputFiles?.length ? { outputFiles: [...p.options.outputFiles] } : {}),
    },
  };
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
