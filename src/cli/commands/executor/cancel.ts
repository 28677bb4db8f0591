// `xpr executor cancel ID`: stop a submission. Its queued tasks that no other submission waits for
// are dropped; results already in the cache stay there for the next submission that needs them.
import type { FormatOptions } from '../../format.js';
import type { Submission } from '../../../executor/types.js';
import { findExecutor, stagesLine, type ExecutorTarget } from './connect.js';

export interface IdOptions extends ExecutorTarget {
  id: string;
}

export async function cancelSubmission(opts: IdOptions): Promise<Submission> {
  return findExecutor(opts).client.cancel(opts.id);
}

export function renderCancel(sub: Submission, _fmt: FormatOptions): string {
  return sub.status === 'cancelled'
    ? `Cancelled ${sub.id} (${stagesLine(sub.stages)}).`
    : `${sub.id} had already ended (${sub.status}); nothing to cancel.`;
}
