// `xpr reset_status NEW_STATUS`: set the local status of the selected jobs, as ExPyRe's command does,
// e.g. `started` for processed jobs that were rerun by hand, so that `sync` fetches and judges them again.
// Unlike ExPyRe it needs a filter (`-s '*'` for every job).
import { XprError } from '../../errors.js';
import { isJobStatus, JOB_STATUSES, type JobStatus } from '../../store/status.js';
import { hasDatabase, knownSystems, requireSelection, selection, withView, type CommandContext, type SelectOptions } from '../common.js';
import { plural, type FormatOptions } from '../format.js';

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
    requireSelection(selection(opts, () => knownSystems(project, undefined)), 'reset_status');
    const result: ResetStatusResult = { dbPath: project.paths.dbPath, newStatus, changed: [], unchanged: 0 };
    if (!hasDatabase(project)) return result;
    const store = project.store;
    for (const j of store.list(selection(opts, () => knownSystems(project, store)).filter)) {
      if (j.status === newStatus) { result.unchanged++; continue; }
      // A job made ongoing again starts with a clean slate: earlier "not found" polls do not count.
      const { missingPolls: _drop, ...info } = j.info;
      if (store.update(j.id, { status: newStatus, info }, [j.status])) result.changed.push({ id: j.id, name: j.name, from: j.status });
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
