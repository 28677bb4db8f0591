// Content addresses of tasks. Two tasks with the same address are the same computation, so the
// address must not depend on how a value happened to be built: object keys are sorted, and the
// values are the codec's encoded form (JSON-safe, one form per value).
import { createHash } from 'node:crypto';
import { canonicalJson as canonicalOf } from '../job/identity.js';
import type { Json } from '../util/codec.js';

/** JSON with object keys sorted at every depth (the same form a job's restart hash uses); arrays keep their order. */
export function canonicalJson(value: unknown): string {
  // Encoded values are Json; a missing one (no submission input) counts as null.
  return canonicalOf((value ?? null) as Json);
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** sha256 of a value's canonical JSON: how a submission's input enters the ids of its tasks. */
export function valueDigest(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

export interface TaskAddress {
  workflow: string;
  stage: string;
  codeHash: string;
  /** The stage's input, encoded with util/codec. */
  input: unknown;
  /** The submission's input, encoded with util/codec (what `ctx.input` gives)... */
  submissionInput?: unknown;
  /** ...or its `valueDigest`, computed once for all the tasks of a stage. */
  submissionInputDigest?: string;
}

/**
 * The task's id (its BullMQ job id): everything its result may depend on. The workflow's name is
 * part of it because two workflows of one module may give the same stage name to different
 * functions, and the worker picks the function by workflow and stage. The submission's input
 * enters by its digest, so that the ids of a stage of N tasks cost N small hashes, not N hashes of
 * an input that may itself have N elements.
 */
export function taskId(t: TaskAddress): string {
  const digest = t.submissionInputDigest ?? valueDigest(t.submissionInput);
  return sha256Hex(canonicalJson([t.workflow, t.stage, t.codeHash, t.input, digest]));
}

/** The cache key of a result that did not read `ctx.input`: shared by every submission reaching this input. */
export function sharedKey(t: Omit<TaskAddress, 'submissionInput' | 'submissionInputDigest'>): string {
  return sha256Hex(canonicalJson([t.workflow, t.stage, t.codeHash, t.input]));
}
