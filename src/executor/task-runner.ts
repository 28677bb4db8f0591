// Running one task: load the workflow's code by its hash, find the stage, call its function with
// the decoded input and a context, and give back the encoded result. Shared by the local worker
// (code from Redis, BullMQ around it) and the remote worker (code and tasks over HTTP), so both
// run a stage exactly alike. Pure: node builtins and xpr's codec only, because the remote worker
// is bundled into batch jobs.
//
// Two kinds of failure, kept apart because only one is worth another attempt:
// - `StageFailed`: the stage function threw, or its code does not have the stage. Running it again
//   gives the same answer, so the task fails at once and the submission reports the error.
// - anything else (the code could not be fetched, Redis or the gateway went away): transient, the
//   task is tried again.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { decode, encode, serializeError, type SerializedError } from '../util/codec.js';
import type { StageContext, StageSpec, TaskData, TaskOutcome, Workflow } from './types.js';
import { findWorkflow } from './workflow.js';

/** What a worker brings to every task it runs. */
export interface TaskEnvironment {
  cores: number;
  /** kB per core, when the worker was given a memory limit. */
  maxMemPerCore: number | undefined;
  /** The bundle text of a workflow module, by its sha256. */
  loadCode(hash: string): Promise<string>;
  /** Where bundles are written to be imported; default `<tmp>/xpr-exec-code`. */
  codeDir?: string;
  /** Keep each task's scratch dir after the task (for looking at what a stage wrote). */
  keepTempFiles?: boolean;
  /** Where task scratch dirs are made; default the system's temp dir. */
  tempRoot?: string;
  /** Told where a kept scratch dir is. */
  log?: (line: string) => void;
}

/** The stage function threw (or its code lacks the stage): the task fails without another attempt. */
export class StageFailed extends Error {
  /** The error as the submission reports it; its stack starts with `Type: message`. */
  readonly failure: SerializedError;

  constructor(readonly stage: string, failure: SerializedError) {
    super(`stage ${stage}: ${failure.name}: ${failure.message}`);
    this.name = 'StageFailed';
    this.failure = { ...failure, stack: headedStack(failure) };
  }
}

/**
 * The stack as the submission shows it. V8 writes the first line when the error is made, so an error
 * whose name was set afterwards (a subclass setting `this.name`) would show another type there: the
 * line is rewritten from the name and message. The frames of the worker that called the stage
 * (from `runTask` down) say nothing about the stage's bug and are left out.
 */
function headedStack(failure: SerializedError): string {
  const frames = failure.stack.split('\n').filter((l) => /^\s+at /.test(l));
  const own = frames.findIndex((l) => /^\s+at (async )?runTask\b/.test(l));
  return [`${failure.name}: ${failure.message}`, ...(own < 0 ? frames : frames.slice(0, own))].join('\n');
}

/**
 * The reason a failed task carries through the queue (BullMQ's `failedReason`, from a local worker's
 * UnrecoverableError or the gateway's `/fail`): the serialized error as JSON, so the submission can
 * show the stage's own type, message and stack.
 */
export function encodeTaskFailure(failure: SerializedError): string {
  return JSON.stringify(failure);
}

/** The serialized error in a failed task's reason; a reason BullMQ wrote itself comes back as an Error. */
export function decodeTaskFailure(reason: string): SerializedError {
  try {
    const v = JSON.parse(reason) as Partial<SerializedError> | null;
    if (v && typeof v.name === 'string' && typeof v.message === 'string') {
      return { ...v, name: v.name, message: v.message, stack: typeof v.stack === 'string' ? v.stack : `${v.name}: ${v.message}` };
    }
  } catch {
    // not JSON: e.g. "job stalled more than allowable limit"
  }
  return { name: 'Error', message: reason, stack: `Error: ${reason}` };
}

/** Run one task and return its outcome; throws StageFailed for the stage's own errors. */
export async function runTask(taskId: string, data: TaskData, env: TaskEnvironment): Promise<TaskOutcome> {
  const spec = await stageOf(data, env);
  let readInput = false;
  let submissionInput: { value: unknown } | undefined;
  // Made when the stage first asks for it: making and removing a dir for every task would cost a
  // trivial task more than the rest of its run.
  let tempDir: string | undefined;
  const ctx: StageContext = {
    // Whether the function looks at the submission's input decides where its result is cached:
    // a result that does not depend on it is shared by every submission that reaches this input.
    get input() {
      readInput = true;
      submissionInput ??= { value: decode(data.submissionInput) };
      return submissionInput.value;
    },
    cores: env.cores,
    maxMemPerCore: env.maxMemPerCore,
    stage: data.stage,
    taskId,
    get tempDir() {
      tempDir ??= fs.mkdtempSync(path.join(env.tempRoot ?? os.tmpdir(), `xpr-task-${data.stage.replace(/[^\w.-]/g, '_')}-`));
      return tempDir;
    },
  };
  let value: unknown;
  try {
    const result = await spec.run(decode(data.input), Object.freeze(ctx));
    value = encode(result, `the result of stage ${data.stage}`);
  } catch (err) {
    throw new StageFailed(data.stage, serializeError(err));
  } finally {
    if (tempDir !== undefined) {
      if (env.keepTempFiles) env.log?.(`xpr worker: kept the scratch dir of task ${taskId} (${data.stage}): ${tempDir}`);
      else fs.rmSync(tempDir, { recursive: true, force: true });
    }
  }
  return { value, readInput };
}

// ---- code ----

/** Imported workflow modules by code hash: a worker runs many tasks of the same code. */
const modules = new Map<string, Promise<Record<string, unknown>>>();

function loadWorkflowModule(hash: string, env: TaskEnvironment): Promise<Record<string, unknown>> {
  let p = modules.get(hash);
  if (!p) {
    p = importBundle(hash, env);
    modules.set(hash, p);
    // A failed fetch is transient: the next attempt fetches again.
    p.catch(() => modules.delete(hash));
  }
  return p;
}

async function importBundle(hash: string, env: TaskEnvironment): Promise<Record<string, unknown>> {
  const dir = env.codeDir ?? path.join(os.tmpdir(), 'xpr-exec-code');
  const file = path.join(dir, `${hash}.mjs`);
  if (!fs.existsSync(file)) {
    const code = await env.loadCode(hash);
    const got = crypto.createHash('sha256').update(code).digest('hex');
    // A truncated or altered download must not run, and must not sit in the dir under this name.
    if (got !== hash) throw new Error(`the code fetched for ${hash} has hash ${got}; it was damaged on the way`);
    fs.mkdirSync(dir, { recursive: true });
    // Several workers on one machine share the dir: each writes its own temp file, the rename is atomic.
    const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    fs.writeFileSync(tmp, code);
    fs.renameSync(tmp, file);
  }
  return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
}

/** Stages found, by code hash, workflow and stage name: a worker looks the same one up for every task. */
const stages = new Map<string, StageSpec>();

async function stageOf(data: TaskData, env: TaskEnvironment): Promise<StageSpec> {
  const key = `${data.codeHash}\0${data.workflow}\0${data.stage}`;
  let spec = stages.get(key);
  if (!spec) {
    spec = findStage(await loadWorkflowModule(data.codeHash, env), data);
    stages.set(key, spec);
  }
  return spec;
}

/** The stage the task names, in the workflow the task names; a mismatch is the code's, not a blip. */
function findStage(mod: Record<string, unknown>, data: TaskData): StageSpec {
  let wf: Workflow;
  try {
    wf = findWorkflow(mod, data.workflow, `code ${data.codeHash}`).workflow;
  } catch (err) {
    throw new StageFailed(data.stage, serializeError(err));
  }
  const spec = wf.stages.find((s) => s.stage === data.stage);
  if (!spec) {
    const known = wf.stages.map((s) => s.stage).join(', ');
    throw new StageFailed(data.stage, codeMismatch(`workflow "${data.workflow}" has no stage "${data.stage}" (its stages: ${known})`));
  }
  return spec;
}

function codeMismatch(message: string): SerializedError {
  return { name: 'XprError', message, stack: `XprError: ${message}` };
}
