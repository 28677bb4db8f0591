// The job life cycle over the store: submit created jobs (as arrays where possible) with the intent
// recorded first, refresh ongoing jobs with one scheduler query per system, and judge how a job that
// left the queue ended from its own files. Shared by the Job class, autoparallelize and `xpr sync`.
// Each status it sets goes through transitions.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnreachableError, XprError } from '../errors.js';
import type { NodeChoice } from '../resources/types.js';
import { EXIT_CODE_FILE, RESULT_FILE, type CallResult } from '../runner/protocol.js';
import type { RemoteState } from '../schedulers/types.js';
import type { JobRecord, JobStore } from '../store/jobstore.js';
import type { JobStatus } from '../store/status.js';
import { crashPoint } from '../util/crash-point.js';
import { shWord } from '../util/shell.js';
import { schedulerName } from './identity.js';
import type { Project } from './project.js';
import { SubmitRejectedError, type SubmitOptions, type System } from './system.js';
import { applyTransition, type JobEvent } from './transitions.js';

/**
 * Seconds a job may be gone from the queue with no files before it counts as died: files written on
 * a compute node can take a while to show on the login node of a shared file system.
 */
const DEFAULT_MISSING_JOB_GRACE_S = 60;
/** Overrides every system's `missing_job_grace` (seconds), e.g. for tests. */
const MISSING_JOB_GRACE_VAR = 'XPR_MISSING_JOB_GRACE';

/**
 * Longest wait for another process's submission of the same jobs. A submission in flight is staging
 * and one submit command; an intent this old from a process we cannot check is taken as abandoned.
 */
const OTHER_SUBMITTER_WAIT_MS = 5 * 60_000;

/** This process as recorded on the submit intents it holds. */
const SELF = `${os.hostname()}:${process.pid}`;

/** Jobs this process is submitting right now (its intents that are in flight, not left over). */
const submittingHere = new Set<string>();

export interface StartRequest extends SubmitOptions {
  node: NodeChoice;
  /** Code files (names in the code dir) the jobs need on the system. */
  codeFiles: readonly string[];
  /** Extra info to record on each job (resources, node choice). */
  info: Record<string, unknown>;
}

/**
 * Submit jobs in status `created` on one system: several go out as job arrays of at most the
 * system's `max_array_size`, one as a plain job. Jobs with a pending intent from a crashed run are
 * first looked for by name, so nothing is submitted twice; jobs another live process is submitting
 * are waited for and then re-attached to.
 */
export async function submitJobs(project: Project, system: System, jobs: readonly JobRecord[], req: StartRequest): Promise<void> {
  const store = project.store;
  const deadline = Date.now() + OTHER_SUBMITTER_WAIT_MS;
  let current = [...new Map(jobs.filter((j) => j.status === 'created').map((j) => [j.id, j])).values()];
  while (current.length > 0) {
    const free = current.filter((j) => intentState(j) === 'none');
    const fresh = [...free, ...await recoverIntents(project, system, current.filter((j) => intentState(j) === 'abandoned'))];
    const mine = new Set(await submitFresh(project, system, fresh, req));
    // Whatever is left is someone else's submission in flight (or became one while we looked).
    const left = current.map((j) => j.id).filter((id) => !mine.has(id));
    if (left.length === 0) return;
    await waitForOtherSubmitters(store, left, deadline);
    current = left.map((id) => store.get(id)).filter((r): r is JobRecord => r?.status === 'created');
  }
}

type IntentState = 'none' | 'in-flight' | 'abandoned';

/**
 * Whether a created job's submit intent belongs to a submission going on now (in this process or
 * another live one) or was left by one that ended without recording its outcome.
 */
function intentState(job: JobRecord, now = Date.now()): IntentState {
  if (job.submitIntent === null) return 'none';
  // Recorded by an older xpr, which gave no owner: as then, taken for a crashed run's.
  if (!job.submitOwner) return 'abandoned';
  if (job.submitOwner === SELF) return submittingHere.has(job.id) ? 'in-flight' : 'abandoned';
  const sep = job.submitOwner.lastIndexOf(':');
  const host = job.submitOwner.slice(0, sep);
  const pid = Number(job.submitOwner.slice(sep + 1));
  if (host === os.hostname()) return processAlive(pid) ? 'in-flight' : 'abandoned';
  // Another machine: nothing to ask, so only age tells.
  return now - job.submitIntent * 1000 < OTHER_SUBMITTER_WAIT_MS ? 'in-flight' : 'abandoned';
}

function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Wait until none of the jobs is being submitted by another process any more (each has left
 * `created`, or its intent was dropped or abandoned); the caller then looks at them afresh.
 */
export async function waitForOtherSubmitters(store: JobStore, ids: readonly string[], deadline: number): Promise<void> {
  let pause = 50;
  for (;;) {
    const busy = ids.map((id) => store.get(id)).filter((r): r is JobRecord => r?.status === 'created' && intentState(r) === 'in-flight');
    if (busy.length === 0) return;
    if (Date.now() >= deadline) throw stillSubmittedElsewhere(busy);
    await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
    pause = Math.min(1000, pause * 1.5);
  }
}

function stillSubmittedElsewhere(busy: readonly JobRecord[]): XprError {
  const owners = [...new Set(busy.map((j) => j.submitOwner))].map((o) => `process ${o!.replace(/^(.*):(\d+)$/, '$2 on $1')}`);
  const shown = busy.slice(0, 5).map((j) => j.id).join(', ') + (busy.length > 5 ? `, ... (${busy.length} in all)` : '');
  const nameFilter = busy[0]!.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new XprError(
    `Gave up waiting for ${owners.join(', ')} to submit ${busy.length === 1 ? 'this job' : `these ${busy.length} jobs`}: ${shown}`,
    {
      hint: `See them with: xpr ls -n ${shWord(nameFilter)} -s created. Once that process has ended, run again: ` +
        'what it submitted is re-attached and what it did not is submitted (xpr sync then shows how they are doing).',
    },
  );
}

/**
 * Claim jobs nobody is submitting and submit them, batch by batch. Returns the ids this call
 * submitted (or failed to, with an error thrown); the others went to another process first.
 */
async function submitFresh(project: Project, system: System, fresh: readonly JobRecord[], req: StartRequest): Promise<string[]> {
  if (fresh.length === 0) return [];
  const store = project.store;
  const size = Math.max(1, system.config.max_array_size);
  const batches: { ids: string[]; schedName: string }[] = [];
  crashPoint('before-intent');
  for (let i = 0; i < fresh.length; i += size) {
    const batch = fresh.slice(i, i + size);
    const byId = new Map(batch.map((j) => [j.id, j]));
    const schedName = schedulerName(batch[0]!.name);
    // The intent is on disk before the scheduler hears of the job: after a crash between the two, the
    // next run finds the job by this unique name instead of submitting it again. Taking it is atomic,
    // so of two drivers submitting the same jobs only one gets each.
    const ids = store.claimForSubmit(batch.map((j) => j.id), SELF, (id, k, n) => {
      const { arrayIndex: _old, ...info } = byId.get(id)!.info;
      return {
        system: system.name, schedName, remoteDir: system.remoteDirOf(id),
        info: { ...info, ...req.info, ...(n > 1 ? { arrayIndex: k } : {}) },
      };
    });
    if (ids.length > 0) batches.push({ ids, schedName });
  }
  const claimed = batches.flatMap((b) => b.ids);
  for (const id of claimed) submittingHere.add(id);
  try {
    const takenOver = new Set(await submitBatches(system, store, batches, req));
    return claimed.filter((id) => !takenOver.has(id));
  } finally {
    for (const id of claimed) submittingHere.delete(id);
  }
}

/**
 * Stage and submit claimed batches; on an error, batches not yet tried are released. Returns the
 * ids of batches another process took over before their turn came.
 */
async function submitBatches(system: System, store: JobStore, batches: readonly { ids: string[]; schedName: string }[], req: StartRequest): Promise<string[]> {
  const scripts = batches.map((b) => system.writeScript(b.ids, b.schedName, req.node, req));
  let prefix: string;
  try {
    prefix = await system.stage(batches.flatMap((b) => b.ids), scripts, req.codeFiles);
  } catch (err) {
    store.releaseIntents(batches.flatMap((b) => b.ids), SELF);
    removeScripts(system, scripts);
    throw err;
  }
  const takenOver: string[] = [];
  for (const [k, batch] of batches.entries()) {
    try {
      if (await submitBatch(system, store, batch, scripts[k]!, prefix)) prefix = '';
      else takenOver.push(...batch.ids);
    } catch (err) {
      store.releaseIntents(batches.slice(k + 1).flatMap((b) => b.ids), SELF);
      // A refused batch and those never tried have no scheduler name any more: their scripts are dead.
      removeScripts(system, scripts.slice(err instanceof SubmitRejectedError ? k : k + 1));
      throw err;
    }
  }
  return takenOver;
}

function removeScripts(system: System, scripts: readonly string[]): void {
  for (const s of scripts) fs.rmSync(path.join(system.stageRoot, s), { force: true });
}

/**
 * Submit one claimed batch and record its remote ids. Returns whether the submit command ran (so
 * `prefix` must not run again); false when another process took the batch over meanwhile.
 */
async function submitBatch(
  system: System, store: JobStore, { ids, schedName }: { ids: string[]; schedName: string }, script: string, prefix: string,
): Promise<boolean> {
  // A process that thought our intent abandoned may have taken the jobs over; then they are its.
  const kept = store.renewClaim(ids, SELF);
  if (kept.length !== ids.length) {
    store.releaseIntents(kept, SELF);
    return false;
  }
  crashPoint('after-intent');
  let remoteId: string | undefined;
  try {
    remoteId = (await system.submit(script, ids.length, prefix)).remoteId;
  } catch (err) {
    if (err instanceof SubmitRejectedError) {
      // The scheduler said no: nothing was queued, so the intent goes.
      store.releaseIntents(ids, SELF);
      throw err;
    }
    // Queued or not, nobody knows: the intent stays for the lookup by name, now or in the next run.
    remoteId = await findAfterUnclearSubmit(system, schedName, err);
  }
  crashPoint('after-submit');
  recordSubmitted(system, store, ids, remoteId);
  return true;
}

/**
 * The submit command may have queued the job but its answer was lost or unreadable: look the job up
 * by its unique name at once. Throws the submission's error when it cannot be found (yet).
 */
async function findAfterUnclearSubmit(system: System, schedName: string, err: unknown): Promise<string> {
  // Over a dropped connection there is nobody to ask; the next run looks.
  if (err instanceof UnreachableError) throw err;
  let found: string | undefined;
  try {
    found = await system.findSubmitted(schedName);
  } catch {
    // The lookup failing too says nothing new: report the submission's own error.
  }
  if (found === undefined) throw err;
  return found;
}

/** Record the remote ids of a submitted batch (array elements in order, or the one plain job). */
function recordSubmitted(system: System, store: JobStore, ids: readonly string[], remoteId: string): void {
  store.transaction(() => {
    ids.forEach((id, k) => applyTransition(store, id, {
      event: 'submit', from: 'created', fields: {
        remoteStatus: 'queued', submitIntent: null, submitOwner: null,
        remoteId: ids.length > 1 ? system.scheduler.arrayElementId(remoteId, k) : remoteId,
      },
    }));
  });
}

/**
 * Resolve jobs whose submission was cut short, each on the system it was being submitted to:
 * found by name, it is submitted; gone but started, it is started; else its intent is dropped and
 * it is returned, to be submitted anew.
 */
async function recoverIntents(project: Project, system: System, jobs: readonly JobRecord[]): Promise<JobRecord[]> {
  const store = project.store;
  const fresh: JobRecord[] = [];
  const found = new Map<string, string | undefined>();
  for (const job of jobs) {
    const jobSystem = job.system && job.system !== system.name ? project.system(job.system) : system;
    if (!job.schedName) {
      if (store.releaseIntents([job.id], job.submitOwner).length === 1) fresh.push(store.get(job.id)!);
      continue;
    }
    const key = `${jobSystem.name}\0${job.schedName}`;
    if (!found.has(key)) found.set(key, await jobSystem.findSubmitted(job.schedName));
    const parent = found.get(key);
    const index = job.info.arrayIndex;
    if (parent !== undefined) {
      const remoteId = typeof index === 'number' ? jobSystem.scheduler.arrayElementId(parent, index) : parent;
      applyTransition(store, job.id, {
        event: 'submit', from: 'created', fields: { remoteId, remoteStatus: 'queued', submitIntent: null, submitOwner: null },
      });
    } else if (await jobSystem.hasStarted(job)) {
      // Gone from the queue already, but it ran: its files will tell how it ended.
      applyTransition(store, job.id, { event: 'start', from: 'created', fields: { remoteId: null, submitIntent: null, submitOwner: null } });
    } else if (store.releaseIntents([job.id], job.submitOwner).length === 1) {
      fresh.push(store.get(job.id)!);
    }
  }
  return fresh;
}

/**
 * Bring ongoing jobs up to date: one status query per system for all of its jobs, then, for each job
 * that has left the queue, fetch its files and judge how it ended. Returns the updated records.
 * With `rejudgeDied`, jobs that died with no reason named are fetched and judged again too: their
 * files may have shown up after the grace period (`xpr sync` does this).
 */
export async function refreshJobs(project: Project, jobs: readonly JobRecord[], options: { rejudgeDied?: boolean } = {}): Promise<JobRecord[]> {
  const store = project.store;
  const bySystem = new Map<string, { ongoing: JobRecord[]; died: JobRecord[] }>();
  for (const job of jobs) {
    const ongoing = ONGOING.includes(job.status);
    if (!job.system || !(ongoing || (options.rejudgeDied && mayYetShowFiles(job)))) continue;
    let group = bySystem.get(job.system);
    if (!group) bySystem.set(job.system, group = { ongoing: [], died: [] });
    (ongoing ? group.ongoing : group.died).push(job);
  }
  for (const [name, { ongoing, died }] of bySystem) {
    const system = project.system(name);
    const states = await system.poll(ongoing.map((j) => j.remoteId).filter((x): x is string => !!x));
    const stateOf = (job: JobRecord) => (job.remoteId ? states.get(job.remoteId) : undefined);
    const ended = ongoing.filter((job) => !updateIfQueued(store, job, stateOf(job)));
    // Ended, or unknown to the scheduler: the jobs' own files say how they went.
    await system.fetch([...ended, ...died].map((j) => ({ id: j.id, remoteDir: j.remoteDir, outputFiles: outputFilesOf(j) })));
    const grace = missingJobGrace(system);
    const verdicts = new Map([...ended, ...died].map((job) => [job.id, judge(job.stageDir)]));
    // With no files to judge, a job whose dir is gone will never have any: no grace period helps.
    const gone = await system.missingDirs([...ended, ...died].filter((job) => !verdicts.get(job.id)));
    const verdictOf = (job: JobRecord) => verdicts.get(job.id) ?? (gone.has(job.id) ? dirGone(system, job, stateOf(job)) : undefined);
    for (const job of ended) settle(store, job, stateOf(job), grace, verdictOf(job));
    for (const job of died) rejudge(store, job, verdictOf(job));
  }
  return jobs.map((j) => store.get(j.id) ?? j);
}

const ONGOING: readonly JobStatus[] = ['submitted', 'started'];

/** A died job the scheduler gave no reason for: it was declared died for want of files, which may yet come. */
function mayYetShowFiles(job: JobRecord): boolean {
  return job.status === 'died' && job.remoteReason === null;
}

/** The grace period of `system` in seconds: XPR_MISSING_JOB_GRACE, else its config, else the default. */
export function missingJobGrace(system: Pick<System, 'config'>, env: NodeJS.ProcessEnv = process.env): number {
  const text = env[MISSING_JOB_GRACE_VAR];
  if (text !== undefined && text.trim() !== '') {
    const seconds = Number(text);
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new XprError(`${MISSING_JOB_GRACE_VAR}="${text}" is not a number of seconds`, { hint: `Unset it, or set it to e.g. 60.` });
    }
    return seconds;
  }
  if (system.config.missing_job_grace !== undefined) return system.config.missing_job_grace;
  // The local queue runs jobs on the machine that holds their files: nothing can lag there.
  return system.config.scheduler === 'local' ? 0 : DEFAULT_MISSING_JOB_GRACE_S;
}

/** Record a job that is still queued or running; false when it has ended or is unknown. */
function updateIfQueued(store: JobStore, job: JobRecord, state: RemoteState | undefined): boolean {
  if (!state || !['queued', 'held', 'running'].includes(state.status)) return false;
  // Listed again after a look that missed it: its grace period starts over if it goes again.
  const { missingSince, ...info } = job.info;
  const fields = { remoteStatus: state.status, ...(missingSince !== undefined ? { info } : {}) };
  if (state.status === 'running') applyTransition(store, job.id, { event: 'start', from: ONGOING, fields });
  else store.update(job.id, fields, ONGOING);
  return true;
}

/**
 * Decide how a job that left the queue ended, from the verdict of its fetched files and the
 * scheduler's word. With no verdict yet, a reason the scheduler names (TIMEOUT, CANCELLED...)
 * settles it at once; silence only once it has lasted `graceSeconds` since the job was first missed.
 */
function settle(store: JobStore, job: JobRecord, state: RemoteState | undefined, graceSeconds: number, verdict: Verdict | undefined): void {
  if (verdict?.status === 'died' && !state?.reason) {
    applyTransition(store, job.id, {
      event: 'die', from: ONGOING,
      fields: { remoteStatus: state?.status ?? 'done', remoteReason: verdict.reason, info: { ...job.info, diedDetail: verdict.detail } },
    });
    return;
  }
  if (verdict && verdict.status !== 'died') {
    applyTransition(store, job.id, {
      event: ENDED_BY[verdict.status], from: ONGOING, fields: { remoteStatus: state?.status ?? 'done', remoteReason: state?.reason ?? null },
    });
    return;
  }
  const now = Date.now() / 1000;
  const since = typeof job.info.missingSince === 'number' ? job.info.missingSince : now;
  if (state?.reason || now - since >= graceSeconds) {
    applyTransition(store, job.id, {
      event: 'die', from: ONGOING, fields: { remoteStatus: state?.status ?? 'other', remoteReason: state?.reason ?? null },
    });
  } else if (job.info.missingSince === undefined) {
    store.update(job.id, { info: { ...job.info, missingSince: since } }, ONGOING);
  }
}

/** The verdict on an ended job whose dir is gone, with the dir named as the user can find it. */
function dirGone(system: System, job: JobRecord, state: RemoteState | undefined): Verdict {
  const where = system.inPlace ? job.stageDir : `${system.name}:${system.dirOf(job)}`;
  const said = state ? `the scheduler says it ended (${state.raw ?? state.status})` : 'it has left the queue';
  return { status: 'died', reason: 'RESULT_MISSING', detail: `${said}, but its job dir ${where} is gone, and its result with it` };
}

/** A died job whose files have shown up after all ends as they say; one whose dir is gone never will. */
function rejudge(store: JobStore, job: JobRecord, verdict: Verdict | undefined): void {
  if (!verdict) return;
  if (verdict.status === 'died') {
    store.update(job.id, { remoteReason: verdict.reason, remoteStatus: 'done', info: { ...job.info, diedDetail: verdict.detail } }, ['died']);
  } else {
    applyTransition(store, job.id, { event: ENDED_BY[verdict.status], from: 'died', fields: { remoteStatus: 'done' } });
  }
}

/** The event of a verdict that the job ran to its end. */
const ENDED_BY: Record<'succeeded' | 'failed', JobEvent> = { succeeded: 'succeed', failed: 'fail' };

/**
 * How a job that is no longer running ended, as its files tell: its result, or a failure of node
 * itself (an exit code and no result). A result file that cannot be parsed is a lost result
 * (RESULT_CORRUPT): rerunning the call is the only way to the result.
 */
export type Verdict =
  | { status: 'succeeded' | 'failed' }
  | { status: 'died'; reason: 'RESULT_MISSING' | 'RESULT_CORRUPT'; detail: string };

/** The verdict of a job's files; undefined if they say nothing yet. */
export function judge(stageDir: string): Verdict | undefined {
  const result = path.join(stageDir, RESULT_FILE);
  if (fs.existsSync(result)) {
    const read = readResult(result);
    return 'problem' in read ? { status: 'died', reason: 'RESULT_CORRUPT', detail: read.problem } : { status: read.ok ? 'succeeded' : 'failed' };
  }
  // The script finished but the runner wrote nothing: node itself failed (not found, bad version).
  if (fs.existsSync(path.join(stageDir, EXIT_CODE_FILE))) return { status: 'failed' };
  return undefined;
}

/** A result file parsed, or why it cannot be: the file is named, as a user must find it. */
export function readResult(file: string): CallResult | { problem: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { problem: code === 'ENOENT' ? `its result file ${file} is gone` : `its result file ${file} cannot be read (${code ?? String(err)})` };
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed !== null && typeof parsed === 'object' && typeof (parsed as { ok?: unknown }).ok === 'boolean') return parsed as CallResult;
    return { problem: `its result file ${file} does not hold a result` };
  } catch (err) {
    return { problem: `its result file ${file} cannot be parsed (${(err as Error).message}; ${Buffer.byteLength(text)} bytes)` };
  }
}

export function outputFilesOf(job: JobRecord): string[] {
  const files = job.info.outputFiles;
  return Array.isArray(files) ? files.filter((f): f is string => typeof f === 'string') : [];
}
