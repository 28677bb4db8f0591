// `xpr executor retrieve ID [--output FILE]`: the result of a successful submission, written to the
// file (JSON) or printed. A submission that has not succeeded writes nothing: its status and, for a
// failure, the stage and error are printed instead, with exit code 1.
import fs from 'node:fs';
import path from 'node:path';
import type { Problem } from '../../exit.js';
import type { FormatOptions } from '../../format.js';
import type { Submission } from '../../../executor/types.js';
import { findExecutor, statusText, type ExecutorTarget } from './connect.js';

export interface RetrieveOptions extends ExecutorTarget {
  id: string;
  output?: string;
}

export interface RetrieveResult {
  id: string;
  status: Submission['status'];
  /** The file written, on success with --output. */
  written?: string;
  /** The result, on success without --output. */
  result?: unknown;
  error?: Submission['error'];
  problems: Problem[];
}

export async function retrieve(opts: RetrieveOptions): Promise<RetrieveResult> {
  const { client } = findExecutor(opts);
  const sub = await client.get(opts.id, { results: true });
  if (sub.status !== 'success') {
    return {
      id: sub.id, status: sub.status, ...(sub.error ? { error: sub.error } : {}),
      problems: [{ message: `${sub.id} has no result: ${statusText(sub)}`, unreachable: false }],
    };
  }
  if (opts.output === undefined) return { id: sub.id, status: sub.status, result: sub.result, problems: [] };
  const file = path.resolve(opts.cwd ?? process.cwd(), opts.output);
  // Written whole under another name first: a reader never sees half a result.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(sub.result, null, 2)}\n`);
  fs.renameSync(tmp, file);
  return { id: sub.id, status: sub.status, written: file, problems: [] };
}

export function renderRetrieve(r: RetrieveResult, _fmt: FormatOptions): string {
  if (r.written !== undefined) return `Wrote the result of ${r.id} to ${r.written}`;
  if (r.status === 'success') return JSON.stringify(r.result, null, 2);
  const lines = [`${r.id}: ${statusText(r)}; nothing written.`];
  if (r.status === 'waiting' || r.status === 'running') lines.push(`xpr executor watch ${r.id} follows it until it ends.`);
  else if (r.status === 'errored' || r.status === 'cancelled') lines.push(`xpr executor retry ${r.id} runs it again from where it stopped.`);
  return lines.join('\n');
}
