// `xpr cancel`: stop the selected jobs, as `Job.cancel` does (job/cancel.ts). Queued and running jobs
// are cancelled on their systems, one cancel command per system, then synced once so that they show
// as died (CANCELLED); jobs never submitted are marked failed (CANCELLED) so that no later run
// submits them.
import { cancelJobs, whyNotCancellable } from '../../job/cancel.js';
import type { JobRecord } from '../../store/jobstore.js';
import type { JobStatus } from '../../store/status.js';
import { confirmed, openSystem, withProject } from '../common.js';
import { problemOf, type Problem } from '../exit.js';
import { listSome, plural, type FormatOptions } from '../format.js';
import { selectedJobs, type ConfirmedSelectOptions } from '../selected-jobs.js';

export type CancelOptions = ConfirmedSelectOptions;

export interface CancelResult {
  dbPath: string;
  /** Selected jobs that could be cancelled (created, submitted or started). */
  matched: number;
  declined: boolean;
  cancelled: { id: string; system: string; after: JobStatus }[];
  /** Never submitted: now failed (CANCELLED). */
  unsubmitted: string[];
  skipped: { id: string; reason: string }[];
  problems: Problem[];
}

export async function cancel(opts: CancelOptions): Promise<CancelResult> {
  return withProject(opts, async (project) => {
    const selected = selectedJobs(project, opts, 'cancel');
    const result: CancelResult = {
      dbPath: project.paths.dbPath, matched: 0, declined: false, cancelled: [], unsubmitted: [], skipped: [], problems: [],
    };
    if (!selected) return result;
    const targets: JobRecord[] = [];
    for (const j of selected) {
      const reason = whyNotCancellable(j);
      if (reason) result.skipped.push({ id: j.id, reason });
      else targets.push(j);
    }
    result.matched = targets.length;
    if (targets.length === 0) return result;
    const question = `Cancel ${plural(targets.length, 'job')}?\n${listSome(targets.map((j) => `${j.id} (${j.status})`))}`;
    if (!(await confirmed(question, opts))) return { ...result, declined: true };

    const out = await cancelJobs(project, targets, (name) => openSystem(project, name));
    result.cancelled = out.cancelled;
    result.unsubmitted = out.unsubmitted;
    result.skipped.push(...out.skipped);
    result.problems = out.failures.map((f) => problemOf(f.error, f.system));
    return result;
  });
}

export function renderCancel(r: CancelResult, _fmt: FormatOptions): string {
  if (r.matched === 0 && r.skipped.length === 0) return `No matching jobs in JobsDB at ${r.dbPath}`;
  if (r.declined) return 'Nothing cancelled.';
  const lines: string[] = [];
  for (const c of r.cancelled) lines.push(`${c.id}: cancelled on ${c.system} (now ${c.after})`);
  for (const id of r.unsubmitted) lines.push(`${id}: never submitted, marked failed`);
  for (const s of r.skipped) lines.push(`${s.id}: skipped, ${s.reason}`);
  const n = r.cancelled.length + r.unsubmitted.length;
  lines.push(`Cancelled ${plural(n, 'job')}.` +
    (r.cancelled.some((c) => c.after === 'submitted' || c.after === 'started') ? ' Jobs still shown running end soon; xpr sync updates them.' : ''));
  for (const p of r.problems) lines.push(`Could not cancel on ${p.system ?? '?'}: ${p.message}`);
  return lines.join('\n');
}
