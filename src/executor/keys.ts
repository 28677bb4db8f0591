// Every Redis key, channel and BullMQ queue name the executor uses, in one place: the store, the
// coordinator, the gateway and the workers must agree on them, and a reader of `redis-cli --scan`
// finds here what each one is.
import type { SubmissionStatus } from './types.js';

/** BullMQ's key prefix: queue `q` lives under `xpr:q:*`, next to the executor's own `xpr:*` keys. */
export const BULL_PREFIX = 'xpr';

/** The BullMQ queue of a stage. Workers serve a stage name, whatever workflow it belongs to. */
export function queueName(stage: string): string {
  return `xpr-stage-${stage}`;
}

/** Pub/sub channel of SubmissionEvent JSON, for watchers. */
export const EVENTS_CHANNEL = 'xpr:events';

export const keys = {
  /** Hash of a submission: `json` (the Submission), `input` (encoded), `prev` (encoded output of the
   *  stage before the current one), `result` (encoded, once successful). */
  submission: (id: string) => `xpr:sub:${id}`,
  /** Sorted set of every submission id, scored by creation time. */
  submissions: 'xpr:subs',
  /** Sorted set of the submissions in one status, scored by creation time. */
  submissionsIn: (status: SubmissionStatus) => `xpr:subs:${status}`,
  /** JSON array of the task ids of stage `k` of a submission, in order (written once the tasks are queued). */
  stageTasks: (id: string, k: number) => `xpr:sub:${id}:tasks:${k}`,
  /** JSON array of the shared cache keys of those tasks, in the same order. */
  stageSharedKeys: (id: string, k: number) => `xpr:sub:${id}:shared:${k}`,
  /** Hash task id → encoded result, for the tasks of stage `k` that have finished. */
  stageResults: (id: string, k: number) => `xpr:sub:${id}:results:${k}`,
  /** Set of the submissions waiting for a task. */
  waiters: (taskId: string) => `xpr:waiters:${taskId}`,
  /** A cached stage result: JSON `{ value, stage, at }`. */
  cache: (key: string) => `xpr:cache:${key}`,
  cachePattern: 'xpr:cache:*',
  cachePrefix: 'xpr:cache:',
  /** Bundle text of a workflow module, by its sha256. */
  code: (hash: string) => `xpr:code:${hash}`,
  /** A registered workflow: JSON WorkflowRecord. */
  workflow: (name: string) => `xpr:workflow:${name}`,
  /** Set of registered workflow names. */
  workflows: 'xpr:workflows',
} as const;
