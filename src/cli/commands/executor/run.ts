// `xpr executor run`: the whole round trip in one command — launch an executor in a temp dir,
// submit the inputs, follow them, write the results, stop. For a one-off run that needs no
// executor kept running. The output is written only when every submission succeeded.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { XprError } from '../../../errors.js';
import { Executor } from '../../../executor/executor.js';
import { findWorkflow, workflowsIn } from '../../../executor/workflow.js';
import type { Problem } from '../../exit.js';
import type { FormatOptions } from '../../format.js';
import type { CommandContext } from '../../common.js';
import type { Submission } from '../../../executor/types.js';
import { statusText } from './connect.js';
import { readInputs } from './submit.js';
import { applyEvent } from './watch.js';

export interface RunOptions extends CommandContext {
  /** The workflow's name, or its module file when that exports only one. */
  workflow: string;
  /** The module file that exports the workflow (default: ./workflow.js or ./workflow.mjs). */
  module?: string;
  inputs: readonly string[];
  output?: string;
  workers?: string;
  cores?: string;
  maxMem?: string;
  keepTempFiles?: boolean;
  log?: (line: string) => void;
  /** Each submission as its events change it. */
  onUpdate?: (sub: Submission) => void;
  signal?: AbortSignal;
}

export interface RunResult {
  workflow: string;
  submissions: Pick<Submission, 'id' | 'status' | 'error'>[];
  /** The file written (every submission succeeded and --output was given). */
  written?: string;
  /** The results, when no --output was given and every submission succeeded. */
  results?: unknown[];
  problems: Problem[];
}

export async function runWorkflow(opts: RunOptions): Promise<RunResult> {
  const cwd = opts.cwd ?? process.cwd();
  const inputs = readInputs(opts.inputs, cwd);
  const { modulePath, name } = await pickWorkflow(opts.workflow, opts.module, cwd);
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-executor-run-'));
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  let ex: Executor | undefined;
  try {
    ex = await Executor.launch({
      directory, workflowModule: modulePath, port: 0, env: opts.env ?? process.env, cwd, log,
      ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
      ...(opts.cores !== undefined ? { cores: opts.cores } : {}),
      ...(opts.maxMem !== undefined ? { maxMem: opts.maxMem } : {}),
      ...(opts.keepTempFiles ? { keepTempFiles: true } : {}),
    });
    const ids = await ex.client.submitMany(name, inputs.map((i) => i.value));
    const finals = await Promise.all(ids.map((id) => follow(ex!, id, opts)));
    const problems: Problem[] = finals.flatMap((s, k) => (s.status === 'success' ? []
      : [{ message: `${inputs[k]?.where ?? s.id} (${s.id}): ${statusText(s)}`, unreachable: false }]));
    const result: RunResult = { workflow: name, submissions: finals.map((s) => ({ id: s.id, status: s.status, ...(s.error ? { error: s.error } : {}) })), problems };
    if (problems.length > 0) return result;
    const values = finals.map((s) => s.result);
    const value = values.length === 1 ? values[0] : values;
    if (opts.output === undefined) return { ...result, results: values };
    const file = path.resolve(cwd, opts.output);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
    fs.renameSync(tmp, file);
    return { ...result, written: file };
  } finally {
    await ex?.close();
    if (!opts.keepTempFiles) fs.rmSync(directory, { recursive: true, force: true });
    else log(`xpr executor run: kept ${directory}`);
  }
}

/** Follows a submission by its events to its end; the final state, with the result on success. */
async function follow(ex: Executor, id: string, opts: RunOptions): Promise<Submission> {
  let sub = await ex.get(id);
  opts.onUpdate?.(sub);
  for await (const event of ex.watch(id, opts.signal ? { signal: opts.signal } : {})) {
    sub = applyEvent(sub, event);
    opts.onUpdate?.(sub);
    if (event.type === 'status' && ['success', 'errored', 'cancelled'].includes(event.status)) break;
  }
  if (opts.signal?.aborted) throw new XprError(`Stopped before submission ${id} ended`);
  return ex.get(id, { results: true });
}

/** The module to launch and the workflow to submit to, from `--workflow` and `--module`. */
async function pickWorkflow(workflow: string, module: string | undefined, cwd: string): Promise<{ modulePath: string; name: string }> {
  const asFile = path.resolve(cwd, workflow);
  if (module === undefined && /\.[cm]?[jt]s$/.test(workflow) && fs.existsSync(asFile)) {
    const found = workflowsIn(await import(pathToFileURL(asFile).href) as Record<string, unknown>);
    if (found.length === 1) return { modulePath: asFile, name: found[0]!.workflow.name };
    throw new XprError(`${asFile} exports ${found.length === 0 ? 'no workflow' : `${found.length} workflows (${found.map((f) => f.workflow.name).join(', ')})`}`, {
      hint: 'Name the module with --module and the workflow with --workflow, e.g. --module workflow.js --workflow bespoke.',
    });
  }
  const candidates = module !== undefined ? [module] : ['workflow.js', 'workflow.mjs'];
  const modulePath = candidates.map((c) => path.resolve(cwd, c)).find((f) => fs.existsSync(f));
  if (modulePath === undefined) {
    throw new XprError(module !== undefined ? `--module ${module}: ${path.resolve(cwd, module)} does not exist`
      : `Which module exports workflow "${workflow}"? There is no workflow.js or workflow.mjs in ${cwd}`, {
      hint: 'Name it with --module <file>.',
    });
  }
  findWorkflow(await import(pathToFileURL(modulePath).href) as Record<string, unknown>, workflow, modulePath);
  return { modulePath, name: workflow };
}

export function renderRun(r: RunResult, _fmt: FormatOptions): string {
  if (r.problems.length > 0) {
    return [`Nothing written: ${r.problems.length} of ${r.submissions.length} submission(s) did not succeed:`, ...r.problems.map((p) => `  ${p.message}`)].join('\n');
  }
  if (r.written !== undefined) return `Wrote the result${r.submissions.length > 1 ? 's' : ''} of ${r.workflow} to ${r.written}`;
  return JSON.stringify(r.results && r.results.length === 1 ? r.results[0] : r.results, null, 2);
}
