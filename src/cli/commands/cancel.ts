// `xpr cancel`: stop the selected jobs. Queued and running jobs are cancelled on their systems, one
// cancel command per system, then synced once so that they show as died (CANCELLED); jobs never
// submitted are marked failed (CANCELLED) so that no later run submits them.
import { refreshJobs } from '../../job/engine.js';
import type { JobRecord } from '../../store/jobstore.js';
import type { JobStatus } from '../../store/status.js';
import {
  confirmed, groupBy, hasDatabase, knownSystems, openSystem, requireSelection, selection, withProject,
  type CommandContext, type Confirm, type SelectOptions,
} from '../common.js';
import { problemOf, type Problem } from '../exit.js';
import { listSome, plural, type FormatOptions } from '../format.js';

export interface CancelOptions extends CommandContext, SelectOptions {
  yes?: boolean;
  confirm?: Confirm;
}

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
    requireSelection(selection(opts, () => knownSystems(project, undefined)), 'cancel');
    const result: CancelResult = {
      dbPath: project.paths.dbPath, matched: 0, declined: false, cancelled: [], unsubmitted: [], skipped: [], problems: [],
    };
    if (!hasDatabase(project)) return result;
    const store = project.store;
    const selected = store.list(selection(opts, () => knownSystems(project, store)).filter);
    const targets: JobRecord[] = [];
    for (const j of selected) {
      if (j.status === 'created' || ((j.status === 'submitted' || j.status === 'started') && j.system)) targets.push(j);
      else result.skipped.push({ id: j.id, reason: j.system ? `already ${j.status}` : `${j.status} with no system recorded` });
    }
    result.matched = targets.length;
    if (targets.length === 0) return result;
    const question = `Cancel ${plural(targets.length, 'job')}?\n${listSome(targets.map((j) => `${j.id} (${j.status})`))}`;
    if (!(await confirmed(question, opts))) return { ...result, declined: true };

    for (const j of targets.filter((t) => t.status === 'created')) {
      if (j.submitIntent !== null) {
        result.skipped.push({ id: j.id, reason: 'its submission was interrupted; run the script again or xpr fail_job it' });
      } else if (store.update(j.id, { status: 'failed', remoteReason: 'CANCELLED' }, ['created'])) {
        result.unsubmitted.push(j.id);
      }
    }
    const live = targets.filter((t) => t.status !== 'created');
    for (const [name, group] of groupBy(live, (j) => j.system!)) {
      try {
        const system = openSystem(project, name);
        const withId = group.filter((j) => j.remoteId);
        for (const j of group) if (!j.remoteId) result.skipped.push({ id: j.id, reason: 'no scheduler id recorded yet' });
        await system.cancel(withId.map((j) => j.remoteId!));
        // One status query shows what the cancel did (a local job is CANCELLED at once; a cluster may take a moment).
        const after = await refreshJobs(project, withId);
        result.cancelled.push(...after.map((a) => ({ id: a.id, system: name, after: a.status })));
      } catch (err) {
        result.problems.push(problemOf(err, name));
      }
    }
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
