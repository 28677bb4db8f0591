// `xpr reset_status NEW_STATUS`: set the local status of the selected jobs, as ExPyRe's command does,
// e.g. `started` for processed jobs that were rerun by hand, so that `sync` fetches and judges them again.
// Unlike ExPyRe it needs a filter (`-s '*'` for every job).
import { XprError } from '../../errors.js';
import { applyTransition } from '../../job/transitions.js';
import { isJobStatus, JOB_STATUSES, type JobStatus } from '../../store/status.js';
import { withView, type CommandContext, type SelectOptions } from '../common.js';
import { plural, type FormatOptions } from '../format.js';
import { selectedJobs } from '../selected-jobs.js';

export interface ResetStatusOptions extends CommandContext, SelectOptions {
  /** One of the job statuses (not a group). */
  newStatus: string;
}

export interface ResetStatusResult {
  dbPath: string;
  newStatus: JobStatus;
  changed: { id: string; name: string; from: JobStatus }[];
  /** Selected jobs already in that status. */
  unchanged: number;
}

export async function resetStatus(opts: ResetStatusOptions): Promise<ResetStatusResult> {
  const newStatus = opts.newStatus;
  if (!isJobStatus(newStatus)) {
    throw new XprError(`Unknown job status "${newStatus}" (known: ${JOB_STATUSES.join(', ')})`);
  }
  return withView(opts, (project) => {
    const selected = selectedJobs(project, opts, 'reset_status');
    const result: ResetStatusResult = { dbPath: project.paths.dbPath, newStatus, changed: [], unchanged: 0 };
    if (!selected) return result;
    for (const j of selected) {
      if (j.status === newStatus) { result.unchanged++; continue; }
      // A job made ongoing again starts with a clean slate: the time it was first missed from the
      // queue (missingSince; missingPolls, as an older xpr counted it) does not count.
      const { missingSince: _since, missingPolls: _polls, ...info } = j.info;
      // Changed by another process since it was listed: left as that one made it.
      const moved = applyTransition(project.store, j.id, { event: 'reset', from: j.status, to: newStatus, fields: { info } });
      if (moved.applied) result.changed.push({ id: j.id, name: j.name, from: j.status });
    }
    return result;
  });
}

export function renderResetStatus(r: ResetStatusResult, _fmt: FormatOptions): string {
  if (r.changed.length === 0 && r.unchanged === 0) return `No matching jobs in JobsDB at ${r.dbPath}`;
  const lines = r.changed.map((c) => `${c.id}: ${c.from} -> ${r.newStatus}`);
  lines.push(`Set ${plural(r.changed.length, 'job')} to ${r.newStatus}` + (r.unchanged ? ` (${r.unchanged} already ${r.newStatus})` : '') + '.');
  return lines.join('\n');
}
