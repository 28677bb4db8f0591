import { XprError } from '../errors.js';

// Job statuses, their groups, and the remote statuses, named as in ExPyRe.

export const JOB_STATUSES = [
  'created', 'submitted', 'started', 'succeeded', 'failed', 'died', 'processed', 'cleaned',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Groups usable wherever a status filter is accepted. */
export const STATUS_GROUPS: Record<string, readonly JobStatus[]> = {
  ongoing: ['created', 'submitted', 'started'],
  can_produce_results: ['created', 'submitted', 'started', 'succeeded', 'died'],
};

/** A new job with the hash of a job in one of these statuses re-attaches to it instead of running again. */
export const REATTACHABLE: readonly JobStatus[] = STATUS_GROUPS.can_produce_results!;

/** Statuses after which nothing more happens to the job by itself. */
export const FINAL: readonly JobStatus[] = ['succeeded', 'failed', 'died', 'processed', 'cleaned'];

export function isJobStatus(s: string): s is JobStatus {
  return (JOB_STATUSES as readonly string[]).includes(s);
}

/**
 * Expand a filter like `ongoing,failed` into statuses; throws with the valid names on a typo.
 * Returns undefined for an empty filter (meaning: any status).
 */
export function expandStatuses(filter: string | readonly string[] | undefined): JobStatus[] | undefined {
  if (filter === undefined) return undefined;
  const words = (typeof filter === 'string' ? filter.split(',') : filter.flatMap((f) => f.split(',')))
    .map((w) => w.trim()).filter(Boolean);
  if (words.length === 0) return undefined;
  const out = new Set<JobStatus>();
  for (const w of words) {
    const group = STATUS_GROUPS[w];
    if (group) group.forEach((s) => out.add(s));
    else if (isJobStatus(w)) out.add(w);
    else {
      throw new UnknownStatusError(w);
    }
  }
  return [...out];
}

export class UnknownStatusError extends XprError {
  constructor(word: string) {
    super(`Unknown job status "${word}" (known: ${JOB_STATUSES.join(', ')}; groups: ${Object.keys(STATUS_GROUPS).join(', ')})`);
  }
}
