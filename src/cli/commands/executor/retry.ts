// `xpr executor retry ID`: run a failed or cancelled submission again from the stage where it
// stopped. Stages that succeeded are not run again: their results come from the cache.
import type { FormatOptions } from '../../format.js';
import type { Submission } from '../../../executor/types.js';
import type { IdOptions } from './cancel.js';
import { findExecutor } from './connect.js';

export async function retrySubmission(opts: IdOptions): Promise<Submission> {
  return findExecutor(opts).client.retry(opts.id);
}

export function renderRetry(sub: Submission, _fmt: FormatOptions): string {
  const from = sub.stages[sub.stageIndex]?.stage;
  return `${sub.id} is ${sub.status} again${from ? `, from stage ${from}` : ''}: xpr executor watch ${sub.id} follows it.`;
}
