// `xpr sync`: bring the selected jobs up to date with their systems — one status query per system
// for all of its jobs, then the files of those that ended — each job against the system it was
// submitted to. Jobs that died with no reason named are judged again from their files, which a
// shared file system may show late. Jobs that never started are skipped; a system that cannot be
// reached is reported and the others still sync.
import { refreshJobs } from '../../job/engine.js';
import type { JobRecord } from '../../store/jobstore.js';
import type { JobStatus } from '../../store/status.js';
import { groupBy, hasDatabase, knownSystems, openSystem, selection, withProject, type CommandContext, type SelectOptions } from '../common.js';
import { problemOf, type Problem } from '../exit.js';
import { paint, plural, statusColour, type FormatOptions } from '../format.js';

/** Filters as `ls`; `status` defaults to `ongoing,died` (`*` for every status). */
export interface SyncOptions extends CommandContext, SelectOptions {
  /** Told what is being done, system by system (the CLI shows it on a terminal). */
  onProgress?: (message: string) => void;
}

export interface SyncedJob {
  id: string;
  name: string;
  system: string;
  before: JobStatus;
  after: JobStatus;
  remoteStatus: string | null;
  /** Why it died, when it did with a reason (TIMEOUT, RESULT_MISSING, ...). */
  remoteReason: string | null;
}

export interface SkippedJob {
  id: string;
  name: string;
  status: JobStatus;
  reason: string;
}

export interface SyncResult {
  dbPath: string;
  synced: SyncedJob[];
  skipped: SkippedJob[];
  /** Systems queried and how many jobs each had. */
  systems: { name: string; jobs: number; ok: boolean }[];
  problems: Problem[];
}

export async function sync(opts: SyncOptions = {}): Promise<SyncResult> {
  return withProject(opts, async (project) => {
    const result: SyncResult = { dbPath: project.paths.dbPath, synced: [], skipped: [], systems: [], problems: [] };
    const sel = selection({ ...opts, status: opts.status ?? 'ongoing,died' },
      () => knownSystems(project, hasDatabase(project) ? project.store : undefined));
    if (!hasDatabase(project)) return result;
    const store = project.store;
    const jobs = store.list(sel.filter);
    const live: JobRecord[] = [];
    for (const j of jobs) {
      const reason = skipReason(j);
      if (reason) result.skipped.push({ id: j.id, name: j.name, status: j.status, reason });
      else live.push(j);
    }
    for (const [name, group] of groupBy(live, (j) => j.system!)) {
      try {
        opts.onProgress?.(`syncing ${plural(group.length, 'job')} on ${name}…`);
        openSystem(project, name);
        const updated = await refreshJobs(project, group, { rejudgeDied: true });
        result.synced.push(...updated.map((u, i) => ({
          id: u.id, name: u.name, system: name, before: group[i]!.status, after: u.status, remoteStatus: u.remoteStatus,
          remoteReason: u.remoteReason,
        })));
        result.systems.push({ name, jobs: group.length, ok: true });
      } catch (err) {
        result.systems.push({ name, jobs: group.length, ok: false });
        result.problems.push(problemOf(err, name));
      }
    }
    return result;
  });
}

function skipReason(j: JobRecord): string | undefined {
  if (j.status === 'created') return j.submitIntent !== null ? 'submission was interrupted; the next run that starts it resolves it' : 'never started';
  if (j.status === 'died' && j.remoteReason !== null) return `died (${j.remoteReason})`;
  if (j.status !== 'submitted' && j.status !== 'started' && j.status !== 'died') return `already ${j.status}`;
  if (!j.system) return 'no system recorded';
  return undefined;
}

export function renderSync(r: SyncResult, fmt: FormatOptions): string {
  const lines: string[] = [];
  for (const j of r.synced) {
    const after = paint(j.after, statusColour(j.after), fmt) + (j.after === 'died' && j.remoteReason ? ` (${j.remoteReason})` : '');
    lines.push(j.before === j.after ? `${j.id}: ${after}${j.remoteStatus ? ` (${j.remoteStatus})` : ''}` : `${j.id}: ${j.before} -> ${after}`);
  }
  const neverStarted = r.skipped.filter((s) => s.status === 'created').length;
  const changed = r.synced.filter((j) => j.before !== j.after).length;
  const systems = r.systems.filter((s) => s.ok).map((s) => s.name);
  if (r.synced.length > 0) {
    lines.push(`Synced ${plural(r.synced.length, 'job')} on ${systems.join(', ')}; ${changed} changed status.` +
      (neverStarted ? ` Skipped ${neverStarted} never started.` : ''));
  } else if (r.problems.length === 0) {
    lines.push(`No jobs to sync${r.skipped.length ? ` (${plural(r.skipped.length, 'selected job')} skipped: ${skipSummary(r.skipped)})` : ''}.`);
  }
  for (const p of r.problems) lines.push(paint(`Could not sync ${p.system ?? ''}: ${p.message}`, 'red', fmt));
  return lines.join('\n');
}

function skipSummary(skipped: readonly SkippedJob[]): string {
  const counts = new Map<string, number>();
  for (const s of skipped) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  return [...counts].map(([reason, n]) => `${n} ${reason}`).join(', ');
}
