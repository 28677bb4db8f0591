// A job's status and the only way it changes: the table of allowed transitions (from each status,
// the events that may move a job on and where each leads) and the one function that applies one,
// as a compare-and-set on the status the caller read, so that two processes racing on one job
// cannot both win. The engine, Job, autoparallelize and the CLI commands all go through here;
// writes that leave the status as it is (remoteStatus, info.missingSince, replacedBy) do not.
import { XprError } from '../errors.js';
import type { JobPatch, JobRecord, JobStore } from '../store/jobstore.js';
import { JOB_STATUSES, type JobStatus } from '../store/status.js';
import { shWord } from '../util/shell.js';

/** What moves a job from one status to another. */
export type JobEvent =
  /** The scheduler took it, or it was found queued after a submission cut short. */
  | 'submit'
  /** Seen running (again), or found to have run after a submission cut short. */
  | 'start'
  /** How it ended, as its files (or the scheduler) tell; a died job's late files may still say. */
  | 'succeed' | 'fail' | 'die'
  /** Its result is gone or unreadable after it succeeded: only a rerun gives it. */
  | 'lose_result'
  /** Cancelled before any scheduler had it, so that no later run submits it. */
  | 'cancel'
  /** `xpr fail_job`: by hand, from anything but failed. */
  | 'mark_failed'
  /** Its results were consumed; again is harmless (identical chunks share one job). */
  | 'process'
  /** Its files were removed; again is harmless. */
  | 'clean'
  /** `xpr reset_status`: by hand, to any status. */
  | 'reset';

const ANY = JOB_STATUSES;

/** From each status, the events allowed and the statuses they lead to. */
export const TRANSITIONS: { readonly [S in JobStatus]: Readonly<Partial<Record<JobEvent, readonly JobStatus[]>>> } = {
  created: {
    submit: ['submitted'], start: ['started'], cancel: ['failed'], mark_failed: ['failed'], clean: ['cleaned'], reset: ANY,
  },
  submitted: {
    start: ['started'], succeed: ['succeeded'], fail: ['failed'], die: ['died'], mark_failed: ['failed'], reset: ANY,
  },
  started: {
    start: ['started'], succeed: ['succeeded'], fail: ['failed'], die: ['died'], mark_failed: ['failed'], reset: ANY,
  },
  succeeded: {
    lose_result: ['died'], process: ['processed'], mark_failed: ['failed'], clean: ['cleaned'], reset: ANY,
  },
  failed: { process: ['processed'], clean: ['cleaned'], reset: ANY },
  died: {
    succeed: ['succeeded'], fail: ['failed'], process: ['processed'], mark_failed: ['failed'], clean: ['cleaned'], reset: ANY,
  },
  processed: { process: ['processed'], mark_failed: ['failed'], clean: ['cleaned'], reset: ANY },
  cleaned: { clean: ['cleaned'], mark_failed: ['failed'], reset: ANY },
};

export interface Transition {
  event: JobEvent;
  /** The status (or any of the statuses) the job was read in: the update happens only while it still is. */
  from: JobStatus | readonly JobStatus[];
  /** The status to go to, where the event allows more than one (reset); else the table's. */
  to?: JobStatus;
  /** Written in the same update: why (remoteReason, info) and what came with the event (remoteId, remoteStatus...). */
  fields?: Omit<JobPatch, 'status'>;
}

export type TransitionResult =
  | { applied: true; record: JobRecord }
  /** Lost a race: the job had left `from` (or was removed) before the update; `record` is it now. */
  | { applied: false; record: JobRecord | undefined };

/**
 * Move a job on: checks the table (an event not allowed from one of `from` throws an XprError naming
 * the job, both statuses and what is allowed), then updates the job only if its status is still one
 * of `from`, and returns the record as it is now.
 */
export function applyTransition(store: JobStore, id: string, t: Transition): TransitionResult {
  const from = typeof t.from === 'string' ? [t.from] : t.from;
  const to = targetOf(id, t.event, from, t.to);
  const applied = store.update(id, { ...t.fields, status: to }, from);
  const record = store.get(id);
  return applied && record ? { applied: true, record } : { applied: false, record };
}

/** The status `event` leads to from every one of `from`; throws if the table does not allow it. */
function targetOf(id: string, event: JobEvent, from: readonly JobStatus[], asked: JobStatus | undefined): JobStatus {
  if (from.length === 0) throw new Error(`applyTransition(${id}, ${event}): no from-status given`);
  let to = asked;
  for (const f of from) {
    const allowed = TRANSITIONS[f][event];
    const target = asked ?? (allowed?.length === 1 ? allowed[0] : undefined);
    if (!allowed || target === undefined || !allowed.includes(target) || (to !== undefined && to !== target)) {
      throw notAllowed(id, f, event, asked ?? eventTarget(event));
    }
    to = target;
  }
  return to!;
}

/** Where an event leads wherever it is allowed; undefined for one that can lead anywhere (reset). */
function eventTarget(event: JobEvent): JobStatus | undefined {
  const targets = new Set(JOB_STATUSES.flatMap((s) => TRANSITIONS[s][event] ?? []));
  return targets.size === 1 ? [...targets][0] : undefined;
}

function notAllowed(id: string, from: JobStatus, event: JobEvent, to: JobStatus | undefined): XprError {
  const allowed = Object.entries(TRANSITIONS[from]).map(([e, tos]) =>
    `${e} (to ${tos.length === JOB_STATUSES.length ? 'any status' : tos.join(' or ')})`);
  return new XprError(`Job ${id} cannot go from ${from} to ${to ?? '?'} (${event}): from ${from} a job may only ${allowed.join(', ')}`, {
    hint: `See it with: xpr ls -i ${shWord(id)}`,
  });
}

/** A transition lost its race: what a caller that cannot go on says. */
export function changedMeanwhile(id: string, expected: JobStatus, now: JobRecord | undefined, doing: string): XprError {
  const said = now ? `it became ${now.status} meanwhile (it was ${expected})` : `it was removed meanwhile (it was ${expected})`;
  return new XprError(`Job ${id} was not ${doing}: ${said}, by another process`, { hint: `See it with: xpr ls -i ${shWord(id)}` });
}
