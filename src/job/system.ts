// A configured system at work: its config, the transport that reaches it and its scheduler. Moves
// job dirs there and back, submits (one script for one job or one array for many), polls all of a
// system's jobs with one scheduler query, and reconciles jobs that left the queue from the
// scheduler's record. Knows nothing of job statuses; `engine.ts` decides those.
import fs from 'node:fs';
import path from 'node:path';
import { XprError } from '../errors.js';
import { projectRundir } from '../config/rundir.js';
import type { SystemConfig, XprConfig } from '../config/schema.js';
import type { NodeChoice } from '../resources/types.js';
import {
  CODE_DIR, EXIT_CODE_FILE, FN_STDERR, FN_STDOUT, JOB_STDERR, JOB_STDOUT, RESULT_FILE, STARTED_FILE, SUBMIT_DIR,
} from '../runner/protocol.js';
import type { RemoteState, Scheduler } from '../schedulers/types.js';
import { commandTimeouts, CommandTimeoutError } from '../transport/timeouts.js';
import type { Transport } from '../transport/types.js';
import { shQuote } from '../util/shell.js';
import { PollRounds } from './poll-rounds.js';
import { renderScript } from './script.js';

/** Files that tell how a job ended, fetched back into the stage dir. */
export const OUTCOME_FILES = [RESULT_FILE, EXIT_CODE_FILE, STARTED_FILE, JOB_STDOUT, JOB_STDERR, FN_STDOUT, FN_STDERR];

export interface SubmitOptions {
  headerExtra: readonly string[];
  preCmds: readonly string[];
  postCmds: readonly string[];
  envVars: Readonly<Record<string, string>>;
  runnerHash: string;
}

export interface Submission {
  /** Remote id of the plain job or array. */
  remoteId: string;
  /** Remote id of each job, in the order given (array elements for an array). */
  elementIds: string[];
}

/** A job as far as its files on the system go: where it was submitted to. */
export interface RemoteJob {
  id: string;
  /** The job's dir on the system as recorded at submission; null for a job never submitted. */
  remoteDir: string | null;
}

/**
 * The scheduler refused a submission: its command exited non-zero, so nothing was queued. Any
 * other failure of a submission (a lost connection, output without a job id) leaves it open
 * whether the job is queued.
 */
export class SubmitRejectedError extends XprError {}

/** Least time between two status queries to one system: a login node is shared with others. */
const MIN_POLL_INTERVAL_MS = { local: 50, remote: 500 };

export class System {
  /** Dir on the system holding this project's run dirs, code and submit scripts. */
  readonly rundir: string;
  /** Every status query to this system goes through here: one per round, rate limited. */
  readonly polls: PollRounds;
  /** Code files already in place on the system, put there by this process (they are named by content hash). */
  private readonly codeSent = new Set<string>();
  /** Code files uploaded but not yet moved into place, by the prefix that moves them (see `stage`). */
  private readonly codePending = new Map<string, readonly string[]>();
  /** The rundir was made (or found) by this process. */
  private rundirReady: Promise<void> | undefined;

  constructor(
    readonly config: SystemConfig,
    readonly transport: Transport,
    readonly scheduler: Scheduler,
    /** Local project dir holding the stage dirs (`_expyre`). */
    readonly stageRoot: string,
    project: Pick<XprConfig, 'remote_rundir_submit_hostname'>,
  ) {
    this.rundir = projectRundir(config, project, stageRoot);
    this.polls = new PollRounds((ids) => this.queryStates(ids),
      config.host === null ? MIN_POLL_INTERVAL_MS.local : MIN_POLL_INTERVAL_MS.remote);
  }

  get name(): string {
    return this.config.name;
  }

  /** Whether jobs run in their local stage dirs, so nothing needs copying. */
  get inPlace(): boolean {
    return this.config.runsInPlace;
  }

  /** Dir a job submitted now gets on the system; a submitted job's own dir is its recorded `remoteDir`. */
  remoteDirOf(jobId: string): string {
    return path.posix.join(this.rundir, `run_${jobId}`);
  }

  /** Where a job's files are on the system: the dir recorded at submission, wherever this run would put it. */
  dirOf(job: RemoteJob): string {
    return job.remoteDir ?? this.remoteDirOf(job.id);
  }

  /**
   * Run a command on the system; a non-zero exit becomes an XprError with its stderr. With
   * `inRundir` (the default) it runs in this run's rundir, so every path in it must be relative to
   * that dir; scheduler queries run in the login dir instead, and work whether or not that rundir
   * exists (a later run may compute another one than the jobs were submitted to).
   */
  async run(command: string, what: string, options: { idempotent?: boolean; inRundir?: boolean; timeoutMs?: number } = {}): Promise<string> {
    const { inRundir = true, ...execOptions } = options;
    const r = await this.transport.exec(inRundir ? this.inRundir(command) : command, execOptions);
    if (r.code !== 0) throw this.commandFailed(XprError, what, command, r);
    return r.stdout;
  }

  private inRundir(command: string): string {
    return `cd ${shQuote(this.rundir)} && ${command}`;
  }

  private commandFailed(
    kind: typeof XprError, what: string, command: string, r: { code: number | null; stdout: string; stderr: string },
  ): XprError {
    return new kind(`${what} failed on system "${this.name}" (exit ${r.code ?? 'signal'}): ${r.stderr.trim() || r.stdout.trim()}`, {
      hint: `The command was: ${command}`,
    });
  }

  /**
   * Make the rundir if it is not there, once per process: a start that could not stage its jobs
   * fails here, before any job is touched. In place, the stage dirs are the job dirs.
   */
  ensureRundir(): Promise<void> {
    if (this.inPlace) return Promise.resolve();
    this.rundirReady ??= this.makeRundir().catch((err: unknown) => {
      this.rundirReady = undefined;
      throw err;
    });
    return this.rundirReady;
  }

  private async makeRundir(): Promise<void> {
    // Not `run`: that one starts with a cd into the rundir.
    const r = await this.transport.exec(`mkdir -p -- ${shQuote(this.rundir)}`, { idempotent: true });
    if (r.code === 0) return;
    throw new XprError(`Cannot create the rundir ${this.rundir} on system "${this.name}": ${r.stderr.trim() || `exit ${r.code ?? 'signal'}`}`, {
      hint: `Give system "${this.name}" a "rundir" in config.json that its user can create and write (xpr doctor ${this.name} checks it).`,
    });
  }

  /**
   * Copy what a submission needs to the system in as few round trips as the rules allow: the run
   * dirs and submit scripts in one tar stream, code files (once per process) in another. Returns a
   * shell prefix that the first submission must run to put the new code files in place; they count
   * as sent once a submission that ran it has succeeded (until then every `stage` sends them again).
   */
  async stage(jobIds: readonly string[], scripts: readonly string[], codeFiles: readonly string[]): Promise<string> {
    if (this.inPlace) return '';
    await this.transport.upload(this.stageRoot, [...jobIds.map((id) => `run_${id}`), ...scripts], this.rundir,
      { stallTimeoutMs: commandTimeouts().transferStallMs });
    const newCode = codeFiles.filter((f) => !this.codeSent.has(f));
    if (newCode.length === 0) return '';
    // Code files are shared by every job that uses them, and jobs already running may be importing
    // them right now: a copy over one leaves it missing or half written for a moment. So they go to
    // a private dir first and are renamed into place, which replaces a file atomically.
    const incoming = `.incoming-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    await this.transport.upload(path.join(this.stageRoot, CODE_DIR), newCode, path.posix.join(this.rundir, CODE_DIR, incoming),
      { stallTimeoutMs: commandTimeouts().transferStallMs });
    const moves = newCode.map((f) => shQuote(path.posix.join(incoming, f))).join(' ');
    // Runs inside `run`, which is already in the rundir: the code dir is relative to it.
    const prefix = `(cd ${shQuote(CODE_DIR)} && mv -f -- ${moves} . && rmdir -- ${shQuote(incoming)}) && `;
    this.codePending.set(prefix, newCode);
    return prefix;
  }

  /** Write the job script (an array script for several jobs) into the local submit dir; returns its name there. */
  writeScript(jobIds: readonly string[], schedName: string, node: NodeChoice, opts: SubmitOptions): string {
    const part = this.config.partitions[node.partitionKey];
    const scriptName = path.posix.join(SUBMIT_DIR, `${schedName}.sh`);
    const script = renderScript({
      scheduler: this.scheduler,
      schedName,
      node,
      jobDirs: jobIds.map((id) => `run_${id}`),
      stdoutFile: `${SUBMIT_DIR}/${schedName}.out`,
      stderrFile: `${SUBMIT_DIR}/${schedName}.err`,
      header: this.config.header,
      noDefaultHeader: this.config.no_default_header,
      partitionHeader: part?.header ?? [],
      headerExtra: opts.headerExtra,
      commands: this.config.commands,
      preCmds: opts.preCmds,
      postCmds: opts.postCmds,
      envVars: opts.envVars,
      nodeCommand: this.config.node_command,
      shell: this.config.script_exec,
      runnerHash: opts.runnerHash,
    });
    fs.mkdirSync(path.join(this.stageRoot, SUBMIT_DIR), { recursive: true });
    fs.writeFileSync(path.join(this.stageRoot, scriptName), script, { mode: 0o755 });
    return scriptName;
  }

  /**
   * Submit a staged script for `jobCount` jobs (an array when more than one), after `prefix` (see
   * `stage`). Throws on a scheduler error; the caller has recorded the intent beforehand.
   */
  async submit(scriptName: string, jobCount: number, prefix = ''): Promise<Submission> {
    const pre = this.config.pre_submit_cmds.map((c) => `${c} && `).join('');
    const command = `${prefix}${pre}${this.scheduler.submitCommand(scriptName)}`;
    // Never re-run on a dropped connection: a second sbatch could queue the job twice.
    const r = await this.transport.exec(this.inRundir(command), { idempotent: false });
    // An exit code is the scheduler (or a command before it) saying no; killed by a signal, the
    // submission may have got as far as queueing the job.
    if (r.code !== 0) throw this.commandFailed(r.code === null ? XprError : SubmitRejectedError, 'Submitting', command, r);
    // The whole command ran, so the prefix put its code files in place, whatever the output says.
    this.codeInPlace(prefix);
    const remoteId = this.scheduler.parseSubmit(r.stdout);
    const elementIds = jobCount > 1
      ? Array.from({ length: jobCount }, (_v, i) => this.scheduler.arrayElementId(remoteId, i))
      : [remoteId];
    return { remoteId, elementIds };
  }

  private codeInPlace(prefix: string): void {
    for (const f of this.codePending.get(prefix) ?? []) this.codeSent.add(f);
    this.codePending.delete(prefix);
  }

  /** After a crash mid-submit: the remote id of the job submitted under `schedName`, if any. */
  async findSubmitted(schedName: string): Promise<string | undefined> {
    const out = await this.run(this.scheduler.findByNameCommand(schedName), 'Looking up a job by name', { inRundir: false });
    return this.scheduler.parseFindByName(out, schedName);
  }

  /**
   * States of jobs, batched with every other caller's into one query per round. An id missing
   * from the result is unknown to the scheduler: judge it by its files.
   */
  poll(remoteIds: readonly string[]): Promise<Map<string, RemoteState>> {
    return this.polls.states(remoteIds);
  }

  /** One status query for all ids, plus one record query for those that left the queue. */
  private async queryStates(remoteIds: readonly string[]): Promise<Map<string, RemoteState>> {
    if (remoteIds.length === 0) return new Map();
    const out = await this.run(this.scheduler.statusCommand([...remoteIds]), 'Checking job status', { inRundir: false, timeoutMs: commandTimeouts().statusMs });
    const states = this.scheduler.parseStatus(out, [...remoteIds]);
    const gone = remoteIds.filter((id) => !states.has(id));
    const recordCmd = gone.length ? this.scheduler.recordCommand(gone) : undefined;
    if (recordCmd) {
      // The record is best effort (a hung accounting daemon too): a site without accounting still
      // has the job's own files.
      const r = await this.transport.exec(recordCmd, { timeoutMs: commandTimeouts().statusMs }).catch((e: unknown) => {
        if (e instanceof CommandTimeoutError) return { code: null, stdout: '', stderr: '' };
        throw e;
      });
      if (r.code === 0) for (const [id, s] of this.scheduler.parseRecord(r.stdout, gone)) states.set(id, s);
    }
    return states;
  }

  /**
   * Bring the outcome files and declared output files of jobs back into their stage dirs, from the
   * dirs recorded at submission: one transfer per parent dir, so one for all jobs submitted to the
   * same rundir (run dirs sit side by side in the same layout on both ends).
   */
  async fetch(jobs: readonly (RemoteJob & { outputFiles: readonly string[] })[]): Promise<void> {
    if (this.inPlace || jobs.length === 0) return;
    const byParent = new Map<string, string[]>();
    for (const j of jobs) {
      const dir = this.dirOf(j);
      const parent = path.posix.dirname(dir);
      let names = byParent.get(parent);
      if (!names) byParent.set(parent, names = []);
      for (const f of [...OUTCOME_FILES, ...j.outputFiles]) names.push(path.posix.join(path.posix.basename(dir), f));
    }
    for (const [parent, names] of byParent) {
      await this.transport.download(parent, names, this.stageRoot, { stallTimeoutMs: commandTimeouts().transferStallMs });
    }
  }

  async cancel(remoteIds: readonly string[]): Promise<void> {
    if (remoteIds.length) await this.run(this.scheduler.cancelCommand([...remoteIds]), 'Cancelling', { inRundir: false });
  }

  /** Remove a job's dir on the system (never the local stage dir: that is the caller's choice). */
  async removeRemote(job: RemoteJob): Promise<void> {
    if (this.inPlace) return;
    await this.transport.exec(`rm -rf -- ${shQuote(this.dirOf(job))}`);
  }

  /**
   * Ids of the jobs whose dir on the system is gone, in one command for all of them. A command that
   * fails proves nothing, so then none is reported gone.
   */
  async missingDirs(jobs: readonly (RemoteJob & { stageDir: string })[]): Promise<Set<string>> {
    if (jobs.length === 0) return new Set();
    // In place the job dir is the local stage dir.
    if (this.inPlace) return new Set(jobs.filter((j) => !fs.existsSync(j.stageDir)).map((j) => j.id));
    const dirs = jobs.map((j) => this.dirOf(j));
    const command = `for d in ${dirs.map(shQuote).join(' ')}; do [ -d "$d" ] || printf '%s\\n' "$d"; done`;
    const r = await this.transport.exec(command, { idempotent: true, timeoutMs: commandTimeouts().statusMs }).catch((e: unknown) => {
      if (e instanceof CommandTimeoutError) return { code: null, stdout: '', stderr: '' };
      throw e;
    });
    if (r.code !== 0) return new Set();
    const gone = new Set(r.stdout.split('\n'));
    return new Set(jobs.filter((_j, k) => gone.has(dirs[k]!)).map((j) => j.id));
  }

  /** Whether the job's script got as far as starting (its started marker exists on the system). */
  async hasStarted(job: RemoteJob): Promise<boolean> {
    const r = await this.transport.exec(`test -e ${shQuote(path.posix.join(this.dirOf(job), STARTED_FILE))}`);
    return r.code === 0;
  }
}
