// `xpr executor watch ID`: each stage of a submission in order with its progress ("qc-compute
// 7/12"), updated as the executor pushes events, until it ends. Its exit code says how it ended:
// 0 success, 1 errored or cancelled.
import type { Problem } from '../../exit.js';
import { paint, type FormatOptions } from '../../format.js';
import type { Submission, SubmissionEvent } from '../../../executor/types.js';
import { FINAL, findExecutor, stagesLine, statusText, submissionColour, type ExecutorTarget } from './connect.js';

export interface WatchOptions extends ExecutorTarget {
  id: string;
  /** Stop watching (Ctrl-C); the submission goes on. */
  signal?: AbortSignal;
  /** The submission after each event. */
  onUpdate?: (sub: Submission) => void;
}

export interface WatchResult {
  submission: Submission;
  /** The watch was stopped before the submission ended. */
  stopped: boolean;
  problems: Problem[];
}

export async function watchSubmission(opts: WatchOptions): Promise<WatchResult> {
  const { client } = findExecutor(opts);
  let sub = await client.get(opts.id);
  opts.onUpdate?.(sub);
  if (!FINAL.includes(sub.status)) {
    for await (const event of client.watch(opts.id, opts.signal ? { signal: opts.signal } : {})) {
      sub = applyEvent(sub, event);
      opts.onUpdate?.(sub);
      if (event.type === 'status' && FINAL.includes(event.status)) break;
    }
    // The final word is the submission itself (its error in full, every stage's count).
    if (!opts.signal?.aborted) sub = await client.get(opts.id);
  }
  const stopped = !FINAL.includes(sub.status);
  const problems: Problem[] = sub.status === 'success' || stopped ? [] : [{ message: statusText(sub), unreachable: false }];
  return { submission: sub, stopped, problems };
}

/** The submission as an event changes it. */
export function applyEvent(sub: Submission, event: SubmissionEvent): Submission {
  const stages = sub.stages.map((s) => {
    if (event.type === 'progress' && s.stage === event.stage) return { ...s, done: event.done, total: event.total };
    if (event.type === 'stage' && s.stage === event.stage) return { ...s, status: event.status };
    return s;
  });
  const next: Submission = { ...sub, stages };
  if (event.type === 'status') {
    next.status = event.status;
    if (event.error) next.error = event.error;
  }
  return next;
}

/** One line: id, status, each stage's progress. */
export function renderWatchLine(sub: Submission, fmt: FormatOptions): string {
  return `${sub.id}  ${paint(sub.status, submissionColour(sub.status), fmt)}  ${stagesLine(sub.stages)}`;
}

/** What follows the lines of `onUpdate`: the last one again only when `withLine` (nothing was shown as it ran). */
export function renderWatch(r: WatchResult, fmt: FormatOptions, withLine = false): string {
  const sub = r.submission;
  const lines = withLine ? [renderWatchLine(sub, fmt)] : [];
  if (r.stopped) lines.push(`Stopped watching; ${sub.id} goes on (xpr executor watch ${sub.id} to watch again).`);
  else if (sub.status === 'success') lines.push(`Done: xpr executor retrieve ${sub.id} --output <file.json> writes the result.`);
  else if (sub.error) {
    lines.push(paint(statusText(sub), 'red', fmt));
    if (sub.error.stack) lines.push(sub.error.stack.split('\n').map((l) => `  ${l}`).join('\n'));
    lines.push(`Fix the stage, then xpr executor retry ${sub.id} resumes from ${sub.error.stage}.`);
  }
  return lines.join('\n');
}
