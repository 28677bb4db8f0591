// `xpr executor list`: submissions, newest first, filtered by status and paginated by the executor
// itself (one request, however many submissions there are).
import { XprError } from '../../../errors.js';
import { SUBMISSION_STATUSES, type Submission, type SubmissionStatus } from '../../../executor/types.js';
import { isoTime, itemTable, type FormatOptions } from '../../format.js';
import { findExecutor, stagesLine, submissionColour, type ExecutorTarget } from './connect.js';

export interface ListOptions extends ExecutorTarget {
  status?: string;
  offset?: number;
  limit?: number;
}

export interface ListResult {
  total: number;
  offset: number;
  items: Submission[];
}

export async function listSubmissions(opts: ListOptions): Promise<ListResult> {
  const status = opts.status === undefined ? undefined : checkStatus(opts.status);
  const { client } = findExecutor(opts);
  const offset = opts.offset ?? 0;
  const page = await client.list({ ...(status ? { status } : {}), offset, limit: opts.limit ?? 100 });
  return { total: page.total, offset, items: page.items };
}

function checkStatus(s: string): SubmissionStatus {
  if ((SUBMISSION_STATUSES as readonly string[]).includes(s)) return s as SubmissionStatus;
  throw new XprError(`--status ${s} is not a submission status`, { hint: `Use one of ${SUBMISSION_STATUSES.join(', ')}.` });
}

export function renderList(r: ListResult, fmt: FormatOptions): string {
  if (r.items.length === 0) return r.total === 0 ? 'No submissions.' : `No submissions from ${r.offset} on (${r.total} in all).`;
  const out = itemTable<Submission>([
    { header: 'id', cell: (s) => s.id },
    { header: 'workflow', cell: (s) => s.workflow },
    { header: 'status', cell: (s) => s.status, colour: submissionColour },
    { header: 'stages', cell: (s) => stagesLine(s.stages) },
    { header: 'created', cell: (s) => isoTime(Math.floor(s.createdAt / 1000)) },
  ], r.items, fmt);
  const shown = r.offset + r.items.length;
  return shown < r.total || r.offset > 0
    ? `${out}\n${r.offset + 1}-${shown} of ${r.total}${shown < r.total ? ` (--offset ${shown} for more)` : ''}`
    : out;
}
