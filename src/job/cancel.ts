// Cancelling jobs, the one way `Job.cancel` and `xpr cancel` share: jobs on a queue are cancelled
// there, one cancel command per system, then looked at once so that they show as died (CANCELLED);
// jobs never submitted are marked failed (CANCELLED) so that no later run submits them, unless their
// submission was cut short, which only the next run that starts them can resolve.
import type { JobRecord } from '../store/jobstore.js';
import type { JobStatus } from '../store/status.js';
import { refreshJobs } from './engine.js';
import type { Project } from './project.js';
import type { System } from './system.js';
import { applyTransition } from './transitions.js';

export interface CancelOutcome {
  /** Cancelled on their systems, with the status one look afterwards found. */
  cancelled: { id: string; system: string; after: JobStatus }[];
  /** Never submitted: now failed (CANCELLED). */
  unsubmitted: string[];
  skipped: { id: string; reason: string }[];
  /** Systems whose cancel (or the look after it) failed; their jobs are as they were. */
  failures: { system: string; error: unknown }[];
}

/** Why a job cannot be cancelled (it has ended, or nothing says where it runs); undefined if it can. */
export function whyNotCancellable(job: JobRecord): string | undefined {
  if (job.status === 'created') return undefined;
  if ((job.status === 'submitted' || job.status === 'started') && job.system) return undefined;
  return job.system ? `already ${job.status}` : `${job.status} with no system recorded`;
}

/**
 * Cancel jobs that `whyNotCancellable` lets through. `openSystem` opens a job's system (default:
 * the project's own); a system that fails is reported in `failures` and the others still go on.
 */
export async function cancelJobs(
  project: Project, jobs: readonly JobRecord[], openSystem: (name: string) => System = (name) => project.system(name),
): Promise<CancelOutcome> {
  const out: CancelOutcome = { cancelled: [], unsubmitted: [], skipped: [], failures: [] };
  for (const j of jobs.filter((t) => t.status === 'created')) {
    if (j.submitIntent !== null) {
      out.skipped.push({ id: j.id, reason: 'its submission was interrupted; run the script again or xpr fail_job it' });
      continue;
    }
    const moved = applyTransition(project.store, j.id, { event: 'cancel', from: 'created', fields: { remoteReason: 'CANCELLED' } });
    if (moved.applied) out.unsubmitted.push(j.id);
    else out.skipped.push({ id: j.id, reason: moved.record ? `it became ${moved.record.status} meanwhile` : 'it was removed meanwhile' });
  }
  for (const [name, group] of bySystem(jobs.filter((t) => t.status !== 'created'))) {
    try {
      const system = openSystem(name);
      const withId = group.filter((j) => j.remoteId);
      for (const j of group) if (!j.remoteId) out.skipped.push({ id: j.id, reason: 'no scheduler id recorded yet' });
      await system.cancel(withId.map((j) => j.remoteId!));
      // One status query shows what the cancel did (a local job is CANCELLED at once; a cluster may take a moment).
      const after = await refreshJobs(project, withId);
      out.cancelled.push(...after.map((a) => ({ id: a.id, system: name, after: a.status })));
    } catch (error) {
      out.failures.push({ system: name, error });
    }
  }
  return out;
}

/** Jobs by the system they were submitted to, in first-seen order. */
function bySystem(jobs: readonly JobRecord[]): Map<string, JobRecord[]> {
  const out = new Map<string, JobRecord[]>();
  for (const j of jobs) {
    let group = out.get(j.system!);
    if (!group) out.set(j.system!, group = []);
    group.push(j);
  }
  return out;
}
