// `xpr fail_job`: mark jobs failed by hand, as ExPyRe's command does — for a job xpr cannot follow any
// more (its system is gone, its files are lost). Its stage dir gets a failed result, so whoever waits on
// it (getResults, autoparallelize) gets an error saying so, and an identical new call runs afresh.
// The scheduler is not told: cancel a job that still runs with `xpr cancel` first.
import fs from 'node:fs';
import path from 'node:path';
import { RESULT_FILE, type CallResult } from '../../runner/protocol.js';
import { applyTransition } from '../../job/transitions.js';
import type { JobStatus } from '../../store/status.js';
import { confirmed, withView } from '../common.js';
import { listSome, plural, type FormatOptions } from '../format.js';
import { selectedJobs, type ConfirmedSelectOptions } from '../selected-jobs.js';

export type FailJobOptions = ConfirmedSelectOptions;

export interface FailJobResult {
  dbPath: string;
  matched: number;
  declined: boolean;
  failed: { id: string; name: string; from: JobStatus }[];
  /** Failed jobs that were still submitted or started: the scheduler may still be running them. */
  wereRunning: string[];
}

export const FAIL_JOB_ERROR = { name: 'JobFailedByUser', message: 'marked failed with xpr fail_job' } as const;

export async function failJob(opts: FailJobOptions): Promise<FailJobResult> {
  return withView(opts, async (project) => {
    const selected = selectedJobs(project, opts, 'fail_job');
    if (!selected) return { dbPath: project.paths.dbPath, matched: 0, declined: false, failed: [], wereRunning: [] };
    const store = project.store;
    const jobs = selected.filter((j) => j.status !== 'failed');
    const result: FailJobResult = { dbPath: store.path, matched: jobs.length, declined: false, failed: [], wereRunning: [] };
    if (jobs.length === 0) return result;
    const question = `Mark ${plural(jobs.length, 'job')} failed?\n${listSome(jobs.map((j) => `${j.id} (${j.status})`))}`;
    if (!(await confirmed(question, opts))) return { ...result, declined: true };
    for (const j of jobs) {
      writeFailedResult(j.stageDir);
      const info = { ...j.info, failedBy: 'xpr fail_job', failedFrom: j.status };
      // Changed by another process since it was listed: left as that one made it.
      if (!applyTransition(store, j.id, { event: 'mark_failed', from: j.status, fields: { info } }).applied) continue;
      result.failed.push({ id: j.id, name: j.name, from: j.status });
      if (j.status === 'submitted' || j.status === 'started') result.wereRunning.push(j.id);
    }
    return result;
  });
}

/** The result file a job that threw would leave, written atomically; skipped if the dir is gone. */
function writeFailedResult(stageDir: string): void {
  if (!fs.existsSync(stageDir)) return;
  const res: CallResult = {
    ok: false,
    error: { ...FAIL_JOB_ERROR, stack: `${FAIL_JOB_ERROR.name}: ${FAIL_JOB_ERROR.message}\n    (no remote stack: the job was failed by hand)` },
  };
  const file = path.join(stageDir, RESULT_FILE);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(res));
  fs.renameSync(`${file}.tmp`, file);
}

export function renderFailJob(r: FailJobResult, _fmt: FormatOptions): string {
  if (r.matched === 0) return `No matching jobs (not already failed) in JobsDB at ${r.dbPath}`;
  if (r.declined) return 'Nothing changed.';
  const lines = r.failed.map((f) => `${f.id}: ${f.from} -> failed`);
  lines.push(`Marked ${plural(r.failed.length, 'job')} failed.`);
  if (r.wereRunning.length) {
    lines.push(`${plural(r.wereRunning.length, 'of them was', 'of them were')} submitted or started; the scheduler may still run ` +
      `${r.wereRunning.length === 1 ? 'it' : 'them'} (xpr cancel before fail_job stops a job).`);
  }
  return lines.join('\n');
}
