// The job life cycle over the store: submit created jobs (as arrays where possible) with the intent
// recorded first, refresh ongoing jobs with one scheduler query per system, and judge how a job that
// left the queue ended from its own files. Shared by the Job class, autoparallelize and `xpr sync`.
import fs from 'node:fs';
import path from 'node:path';
import { UnreachableError, XprError } from '../errors.js';
import type { NodeChoice } from '../resources/types.js';
import { EXIT_CODE_FILE, RESULT_FILE } from '../runner/protocol.js';
import type { RemoteState } from '../schedulers/types.js';
import type { JobRecord, JobStore } from '../store/jobstore.js';
import type { JobStatus } from '../store/status.js';
import { schedulerName } from './identity.js';
import type { Project } from './project.js';
import type { SubmitOptions, System } from './system.js';

/** Polls with no sign of a job (not in the queue, no files) before it counts as died. */
const MISSING_POLLS_BEFORE_DIED = 2;

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
 * first looked for by name, so nothing is submitted twice.
 */
export async function submitJobs(project: Project, system: System, jobs: readonly JobRecord[], req: StartRequest): Promise<void> {
  const store = project.store;
  const fresh = await recoverIntents(store, system, jobs.filter((j) => j.status === 'created'));
  if (fresh.length === 0) return;
  const size = Math.max(1, system.config.max_array_size);
  const batches: { ids: string[]; schedName: string }[] = [];
  for (let i = 0; i < fresh.length; i += size) {
    const batch = fresh.slice(i, i + size);
    const ids = batch.map((j) => j.id);
    const schedName = schedulerName(batch[0]!.name);
    // The intent is on disk before the scheduler hears of the job: after a crash between the two, the
    // next run finds the job by this unique name instead of submitting it again.
    const claimed = ids.filter((id, k) => store.update(id, {
      system: system.name, schedName, remoteDir: system.remoteDirOf(id), submitIntent: Date.now() / 1000,
      info: { ...batch[k]!.info, ...req.info, ...(batch.length > 1 ? { arrayIndex: k } : {}) },
    }, ['created']));
    if (claimed.length !== ids.length) {
      throw new XprError(`Another process changed ${ids.length - claimed.length} of these jobs while they were being submitted`, {
        hint: 'Run again: jobs already submitted are re-attached, not submitted twice.',
      });
    }
    batches.push({ ids, schedName });
  }
  const scripts = batches.map((b) => system.writeScript(b.ids, b.schedName, req.node, req));
  let prefix = await system.stage(fresh.map((j) => j.id), scripts, req.codeFiles);
  for (const [k, { ids }] of batches.entries()) {
    let sub;
    try {
      sub = await system.submit(scripts[k]!, ids.length, prefix);
      prefix = '';
    } catch (err) {
      // The scheduler said no (a non-zero exit): nothing was queued, so the intent goes. A lost
      // connection throws something else and leaves the intent for the next run to resolve.
      if (err instanceof XprError && !(err instanceof UnreachableError)) {
        store.updateMany(ids, { submitIntent: null, schedName: null }, ['created']);
      }
      throw err;
    }
    ids.forEach((id, k2) => store.update(id, {
      status: 'submitted', remoteId: sub.elementIds[k2]!, remoteStatus: 'queued', submitIntent: null,
    }, ['created']));
  }
}

/** Resolve jobs whose submission was interrupted; returns the ones that still need submitting. */
async function recoverIntents(store: JobStore, system: System, jobs: readonly JobRecord[]): Promise<JobRecord[]> {
  const fresh: JobRecord[] = [];
  const found = new Map<string, string | undefined>();
  for (const job of jobs) {
    if (job.submitIntent === null || !job.schedName) { fresh.push(job); continue; }
    const jobSystem = job.system ?? system.name;
    if (jobSystem !== system.name) { fresh.push(job); continue; }
    if (!found.has(job.schedName)) found.set(job.schedName, await system.findSubmitted(job.schedName));
    const parent = found.get(job.schedName);
    const index = job.info.arrayIndex;
    if (parent !== undefined) {
      const remoteId = typeof index === 'number' ? system.scheduler.arrayElementId(parent, index) : parent;
      store.update(job.id, { status: 'submitted', remoteId, remoteStatus: 'queued', submitIntent: null }, ['created']);
    } else if (await system.hasStarted(job.id)) {
      // Gone from the queue already, but it ran: its files will tell how it ended.
      store.update(job.id, { status: 'started', remoteId: null, submitIntent: null }, ['created']);
    } else {
      store.update(job.id, { submitIntent: null, schedName: null }, ['created']);
      fresh.push({ ...job, submitIntent: null, schedName: null });
    }
  }
  return fresh;
}

/**
 * Bring ongoing jobs up to date: one status query per system for all of its jobs, then, for each job
 * that has left the queue, fetch its files and judge how it ended. Returns the updated records.
 */
export async function refreshJobs(project: Project, jobs: readonly JobRecord[]): Promise<JobRecord[]> {
  const store = project.store;
  const bySystem = new Map<string, JobRecord[]>();
  for (const job of jobs) {
    if (!['submitted', 'started'].includes(job.status) || !job.system) continue;
    bySystem.set(job.system, [...(bySystem.get(job.system) ?? []), job]);
  }
  for (const [name, sysJobs] of bySystem) {
    const system = project.system(name);
    const states = await system.poll(sysJobs.map((j) => j.remoteId).filter((x): x is string => !!x));
    const stateOf = (job: JobRecord) => (job.remoteId ? states.get(job.remoteId) : undefined);
    const ended: JobRecord[] = [];
    for (const job of sysJobs) {
      if (!updateIfQueued(store, job, stateOf(job))) ended.push(job);
    }
    // Ended, or unknown to the scheduler: the jobs' own files say how they went.
    await system.fetch(ended.map((j) => ({ id: j.id, outputFiles: outputFilesOf(j) })));
    for (const job of ended) settle(store, job, stateOf(job));
  }
  return jobs.map((j) => store.get(j.id) ?? j);
}

const ONGOING: JobStatus[] = ['submitted', 'started'];

/** Record a job that is still queued or running; false when it has ended or is unknown. */
function updateIfQueued(store: JobStore, job: JobRecord, state: RemoteState | undefined): boolean {
  if (state && (state.status === 'queued' || state.status === 'held')) {
    store.update(job.id, { remoteStatus: state.status }, ONGOING);
    return true;
  }
  if (state?.status === 'running') {
    store.update(job.id, { status: 'started', remoteStatus: 'running' }, ONGOING);
    return true;
  }
  return false;
}

/** Decide how a job that left the queue ended, from its fetched files and the scheduler's word. */
function settle(store: JobStore, job: JobRecord, state: RemoteState | undefined): void {
  const verdict = judge(job.stageDir);
  if (verdict) {
    store.update(job.id, {
      status: verdict, remoteStatus: state?.status ?? 'done', remoteReason: state?.reason ?? null,
    }, ONGOING);
    return;
  }
  const missing = (typeof job.info.missingPolls === 'number' ? job.info.missingPolls : 0) + 1;
  // A named reason (TIMEOUT, CANCELLED...) or an end state settles it; silence must repeat first,
  // since files on a shared file system can show up a little after the scheduler's word.
  if (state?.reason || missing >= MISSING_POLLS_BEFORE_DIED) {
    store.update(job.id, {
      status: 'died', remoteStatus: state?.status ?? 'other', remoteReason: state?.reason ?? null,
    }, ONGOING);
  } else {
    store.update(job.id, { info: { ...job.info, missingPolls: missing } }, ONGOING);
  }
}

/** How a job that is no longer running ended, from its files; undefined if they say nothing yet. */
export function judge(stageDir: string): 'succeeded' | 'failed' | undefined {
  const result = path.join(stageDir, RESULT_FILE);
  if (fs.existsSync(result)) {
    try {
      return (JSON.parse(fs.readFileSync(result, 'utf8')) as { ok: boolean }).ok ? 'succeeded' : 'failed';
    } catch {
      return 'failed';
    }
  }
  // The script finished but the runner wrote nothing: node itself failed (not found, bad version).
  if (fs.existsSync(path.join(stageDir, EXIT_CODE_FILE))) return 'failed';
  return undefined;
}

export function outputFilesOf(job: JobRecord): string[] {
  const files = job.info.outputFiles;
  return Array.isArray(files) ? files.filter((f): f is string => typeof f === 'string') : [];
}
