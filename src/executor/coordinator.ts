// The coordinator moves submissions through the stages of their workflow. Its only state is in
// Redis (the store) and BullMQ (the stage queues): `advance(id)` looks at what is there and does
// the next thing, and doing it twice does no harm. So a coordinator that dies at any point loses
// nothing; the next one calls `recover()` and carries on. BullMQ's QueueEvents tell it when a task
// finished; nothing polls.
//
// A stage of a submission goes like this:
//   enter   compute its tasks (one, or one per element of the previous output with `each`), join
//           their waiters, take cached results, queue the rest (a task that failed before is
//           retried: failures are never reused), then record the task list (the mark that the
//           stage was entered: a crash before it means entering again).
//   settle  on each finished task, record its result; a failed task errors the submission.
//   finish  all results in: gather them in order, store them as the next stage's input, go on.
import { Queue, type ConnectionOptions, type JobsOptions, type QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { XprError } from '../errors.js';
import { encode, type Json } from '../util/codec.js';
import { sharedKey as sharedKeyOf, taskId as taskIdOf, valueDigest } from './canonical.js';
import { BULL_PREFIX, queueName } from './keys.js';
import { followQueueEvents } from './queue-events.js';
import { ExecutorStore, newSubmissionId } from './store.js';
import { decodeTaskFailure } from './task-runner.js';
import type {
  StageError, StageProgress, Submission, SubmissionEvent, SubmissionStatus, TaskData, TaskOutcome, WorkflowRecord,
} from './types.js';

/** How every task is queued: failures kept until re-run, transient errors tried again. */
export const TASK_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { count: 1000 },
  removeOnFail: false,
};

const ACTIVE: readonly SubmissionStatus[] = ['waiting', 'running'];

/** Tasks joined and queued together when a stage is entered. */
const ENTER_BATCH = 500;

export interface CoordinatorOptions {
  /** Redis URL (with its password). */
  redis: string;
  /** Called with errors of background work (an advance that failed because Redis went away). */
  onError?: (err: unknown) => void;
}

/** A task of a stage of a submission (input null when known only by id). */
interface StageTask {
  taskId: string;
  sharedKey: string;
  input: Json;
}

/** A stage queue and the events the coordinator follows on it. */
interface StageQueue {
  queue: Queue<TaskData, TaskOutcome>;
  events: QueueEvents;
}

/** A task of the stage that finished: its outcome when the event carried it, else BullMQ is asked. */
interface Hint {
  taskId: string;
  stage: string;
  outcome?: TaskOutcome;
}

/** The next advance of a submission: a full look, or only at these finished tasks. */
interface Queued {
  full: boolean;
  hints: Map<string, Hint>;
  done: Promise<void>;
}

export class Coordinator {
  readonly store: ExecutorStore;
  readonly #redisUrl: string;
  readonly #onError: (err: unknown) => void;
  readonly #stages = new Map<string, Promise<StageQueue>>();
  /** Per submission, the tail of what is running or queued for it; dropped once it is idle. */
  readonly #chains = new Map<string, Promise<void>>();
  /** Per submission, the advance that has not started yet (news are merged into it). */
  readonly #queued = new Map<string, Queued>();
  /** Workflow records by name and code hash (immutable: the stages come from the code). */
  readonly #workflows = new Map<string, WorkflowRecord>();
  /**
   * What a finished stage just stored and the next look would read back: the submission, its
   * input and the stage's output. Only between a stage finishing and the next turn of `#step`'s
   * loop, within one advance (nothing else touches the submission then): it spares a stage that
   * completes at once (a cache hit) two reads per stage.
   */
  readonly #carried = new Map<string, { sub: Submission; input: unknown; prev: unknown }>();
  /**
   * News of finished tasks not yet matched to their waiters. QueueEvents hands over a whole batch
   * of stream entries at once; their waiters are then read in one round trip, not one each.
   */
  #news: Hint[] = [];
  #closed = false;
  #everReady = false;

  private constructor(opts: CoordinatorOptions) {
    this.#redisUrl = opts.redis;
    this.#onError = opts.onError ?? ((err) => console.error('xpr executor coordinator:', err));
    // Auto-pipelining: the advances of many submissions share round trips to Redis.
    const redis = new Redis(opts.redis, { maxRetriesPerRequest: null, enableAutoPipelining: true });
    redis.on('error', () => {}); // reconnects by itself; failed commands reach #onError
    // After Redis comes back, events sent while it was away may be lost: look at everything again.
    redis.on('ready', () => {
      if (this.#everReady && !this.#closed) this.recover().catch(this.#onError);
      this.#everReady = true;
    });
    this.store = new ExecutorStore(redis, true);
  }

  /** A coordinator on `redis`, following every registered workflow's stages, with the unfinished submissions resumed. */
  static async start(opts: CoordinatorOptions): Promise<Coordinator> {
    const c = new Coordinator(opts);
    try {
      for (const wf of await c.store.listWorkflows()) await Promise.all(wf.stages.map((s) => c.#stageQueue(s.stage)));
      await c.recover();
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  /** Stops following the queues. Tasks and submissions stay in Redis for the next coordinator. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#chains.values()]);
    const stages = await Promise.allSettled(this.#stages.values());
    this.#stages.clear();
    await Promise.allSettled(stages.flatMap((s) => (s.status === 'fulfilled' ? [s.value.events.close(), s.value.queue.close()] : [])));
    await this.store.close();
  }

  /** Submissions being advanced at this moment (0 when idle: nothing is kept per submission). */
  get inFlight(): number {
    return this.#chains.size;
  }

  /** Resolves once no submission is being advanced. */
  async idle(): Promise<void> {
    while (this.#chains.size > 0) await Promise.allSettled([...this.#chains.values()]);
  }

  // ---------------------------------------------------------------- what the gateway calls

  /** Accepts a submission and starts it; resolves with its id once it is stored. */
  async submit(workflow: string, input: unknown): Promise<string> {
    const [id] = await this.submitMany(workflow, [input]);
    return id!;
  }

  /** Many inputs of one workflow, stored in one round trip; ids in the inputs' order. */
  async submitMany(workflow: string, inputs: unknown[]): Promise<string[]> {
    const wf = await this.store.requireWorkflow(workflow);
    const now = Date.now();
    const items = inputs.map((input, i) => {
      const encoded = encode(input, inputs.length === 1 ? 'the input' : `inputs[${i}]`);
      const sub: Submission = {
        id: newSubmissionId(), workflow: wf.name, codeHash: wf.codeHash, status: 'waiting', stageIndex: 0,
        stages: wf.stages.map((s): StageProgress => ({ stage: s.stage, total: 0, done: 0, status: 'waiting' })),
        createdAt: now, updatedAt: now,
      };
      return { sub, input: encoded };
    });
    await this.store.createSubmissions(items);
    for (const { sub } of items) {
      // Not awaited: the submission is safe once stored (recover() finds it after a crash), and a
      // busy coordinator must not make the request that submitted it time out.
      this.#schedule(sub.id, undefined).catch(this.#onError);
    }
    return items.map((x) => x.sub.id);
  }

  /** Looks at the submission's state and does what comes next. Idempotent; safe to call any time. */
  advance(id: string): Promise<void> {
    return this.#schedule(id, undefined);
  }

  /**
   * Stops a submission: it is marked cancelled, and its queued tasks that no other submission
   * waits for are taken off their queues (running ones finish, and are cached). Undefined for an
   * unknown id; a finished submission is returned as it is.
   */
  async cancel(id: string): Promise<Submission | undefined> {
    return this.#run(id, async () => {
      const sub = await this.store.getSubmission(id);
      if (!sub || sub.status === 'success' || sub.status === 'cancelled') return sub;
      const previous = sub.status;
      const k = sub.stageIndex;
      sub.status = 'cancelled';
      sub.updatedAt = Date.now();
      await this.store.saveSubmission(sub, previous, { events: [{ type: 'status', id, status: 'cancelled' }] });
      const stage = sub.stages[k]?.stage;
      const tasks = await this.store.getStageTasks(id, k);
      if (stage && tasks) await this.#dropUnwanted(stage, id, unique(tasks.taskIds));
      return sub;
    });
  }

  /**
   * Resumes an errored or cancelled submission from its current stage: finished results of that
   * stage are kept, failed tasks run again. Undefined for an unknown id.
   */
  async retry(id: string): Promise<Submission | undefined> {
    const sub = await this.#run(id, async () => {
      const sub = await this.store.getSubmission(id);
      if (!sub) return undefined;
      if (sub.status !== 'errored' && sub.status !== 'cancelled') {
        throw new XprError(`Submission ${id} is ${sub.status}: only an errored or cancelled submission can be retried`);
      }
      const previous = sub.status;
      const k = sub.stageIndex;
      // Entering the stage again is what re-runs its failed tasks and re-joins their waiters.
      await this.store.unsetStageTasks(id, k);
      sub.status = 'running';
      delete sub.error;
      const progress = sub.stages[k];
      if (progress) progress.status = 'running';
      sub.updatedAt = Date.now();
      await this.store.saveSubmission(sub, previous, { events: [{ type: 'status', id, status: 'running' }] });
      return sub;
    });
    if (sub) await this.advance(id);
    return sub;
  }

  /** Advances every unfinished submission (at start, and after Redis came back). Returns how many. */
  async recover(): Promise<number> {
    const ids = await this.store.submissionIds([...ACTIVE]);
    // A few at a time: thousands at once would flood Redis and starve the event handlers.
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < ids.length && !this.#closed) await this.advance(ids[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(16, ids.length) }, lane));
    return ids.length;
  }

  /** Removes failed tasks from the stage queues (their submissions stay errored; retry queues them again). */
  async clearFailedTasks(): Promise<number> {
    const stages = new Set((await this.store.listWorkflows()).flatMap((w) => w.stages.map((s) => s.stage)));
    let removed = 0;
    for (const stage of stages) {
      const queue = await this.#stageQueue(stage);
      removed += (await queue.clean(0, 0, 'failed')).length;
    }
    return removed;
  }

  // ---------------------------------------------------------------- one thing at a time per submission

  /** Runs `fn` after everything queued for this submission; the chain is dropped once it is idle. */
  #run<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#chains.get(id) ?? Promise.resolve();
    const result = before.then(fn);
    const tail = result.then(() => undefined, () => undefined);
    this.#chains.set(id, tail);
    void tail.then(() => {
      if (this.#chains.get(id) === tail) this.#chains.delete(id);
    });
    return result;
  }

  /**
   * Asks for an advance of the submission: a full look, or only at a finished task. Asks that
   * arrive before the queued advance starts are merged into it, so the completions of a
   * 1000-task stage make a few advances, not 1000.
   */
  #schedule(id: string, hint: Hint | undefined): Promise<void> {
    let queued = this.#queued.get(id);
    if (!queued) {
      const entry: Queued = { full: false, hints: new Map(), done: Promise.resolve() };
      this.#queued.set(id, entry);
      entry.done = this.#run(id, async () => {
        this.#queued.delete(id); // news from now on make the next advance
        if (!this.#closed) await this.#step(id, entry.full ? undefined : entry.hints);
      });
      queued = entry;
    }
    if (hint) queued.hints.set(hint.taskId, hint);
    else queued.full = true;
    return queued.done;
  }

  // ---------------------------------------------------------------- the state machine

  /** One look at a submission; goes on through stages that finish at once (cache hits). */
  async #step(id: string, hints: Map<string, Hint> | undefined): Promise<void> {
    for (;;) {
      const carried = this.#carried.get(id);
      this.#carried.delete(id);
      const state = carried ? { sub: carried.sub, entered: undefined } : await this.store.submissionState(id);
      if (!state || !ACTIVE.includes(state.sub.status)) return;
      const { sub } = state;
      const wf = await this.#workflow(sub);
      if (!wf) return;
      const k = sub.stageIndex;
      if (k >= wf.stages.length) return;
      let done: boolean;
      if (state.entered !== k) done = await this.#enter(sub, wf, carried);
      else if (hints) done = await this.#settleHints(sub, wf, hints);
      else done = await this.#settleAll(sub, wf);
      if (!done) return;
      hints = undefined;
    }
  }

  /** The workflow the submission was made for; a record is immutable for its code hash, so it is kept. */
  async #workflow(sub: Submission): Promise<WorkflowRecord | undefined> {
    const key = `${sub.workflow}\0${sub.codeHash}`;
    let wf = this.#workflows.get(key);
    if (!wf) {
      const found = await this.store.getWorkflow(sub.workflow);
      if (found && found.codeHash === sub.codeHash && found.stages.length === sub.stages.length) {
        wf = found;
        this.#workflows.set(key, wf);
      }
    }
    if (!wf) {
      await this.#fail(sub, {
        stage: sub.stages[sub.stageIndex]?.stage ?? '?', type: 'XprError',
        message: `workflow "${sub.workflow}" is no longer registered with the code this submission was made for (${sub.codeHash.slice(0, 12)})`,
      });
    }
    return wf;
  }

  /** Queues stage `sub.stageIndex`; true when all its results are already there. */
  async #enter(sub: Submission, wf: WorkflowRecord, carried?: { input: unknown; prev: unknown }): Promise<boolean> {
    const k = sub.stageIndex;
    const stage = wf.stages[k]!.stage;
    const { input, prev } = carried ?? await this.store.stageInputs(sub.id);
    const tasks = stageTasks(wf, k, input as Json, prev as Json);
    if (typeof tasks === 'string') {
      await this.#fail(sub, { stage, type: 'XprError', message: tasks });
      return false;
    }
    const queue = await this.#stageQueue(stage); // following its events before any of its tasks can finish
    const distinct = uniqueTasks(tasks);
    const results = new Map<string, unknown>();
    // Tasks that finished before (a retry) are read with the first batch.
    let finished = new Set<string>();
    // A batch at a time, each queued before the next is looked at: the workers start on the first
    // tasks of a 10,000-task stage while the rest are still being joined.
    for (let i = 0; i === 0 || i < distinct.length; i += ENTER_BATCH) {
      const batch = distinct.slice(i, i + ENTER_BATCH);
      const joined = await this.store.joinTasks(sub.id, k, batch, batch.map((t) => queue.toKey(t.taskId)), i === 0);
      if (i === 0) finished = joined.finished;
      const open: StageTask[] = [];
      const openExists: boolean[] = [];
      batch.forEach((t, j) => {
        if (finished.has(t.taskId)) return;
        const hit = joined.cached[j];
        if (hit) results.set(t.taskId, hit.value);
        else {
          open.push(t);
          openExists.push(joined.exists[j]!);
        }
      });
      const { results: fromJobs, toQueue } = await this.#inspectJobs(queue, stage, open, true, openExists);
      if (!(fromJobs instanceof Map)) throw new Error('unreachable: a failed task is queued again on entering');
      for (const [t, v] of fromJobs) results.set(t, v);
      if (toQueue.length > 0) await this.#queueTasks(sub, wf, queue, input as Json, toQueue);
    }

    const previous = sub.status;
    const progress = sub.stages[k]!;
    sub.status = 'running';
    progress.status = 'running';
    progress.total = distinct.length;
    progress.done = finished.size + results.size;
    sub.updatedAt = Date.now();
    const events: SubmissionEvent[] = [];
    if (previous !== 'running') events.push({ type: 'status', id: sub.id, status: 'running' });
    events.push({ type: 'stage', id: sub.id, stage, status: 'running' });
    events.push({ type: 'progress', id: sub.id, stage, done: progress.done, total: progress.total });
    const lists = { taskIds: tasks.map((t) => t.taskId), sharedKeys: tasks.map((t) => t.sharedKey) };
    await this.store.enterStage(sub, previous, k, lists, results, events);
    if (progress.done < progress.total) return false;
    // Every result is in hand unless some finished before (a retry): no need to read them back.
    return this.#finishStage(sub, wf, lists.taskIds, finished.size === 0 ? { results, input } : undefined);
  }

  /** Records what finished tasks reported; true when the stage is complete. */
  async #settleHints(sub: Submission, wf: WorkflowRecord, hints: Map<string, Hint>): Promise<boolean> {
    const stage = wf.stages[sub.stageIndex]!.stage;
    const results = new Map<string, unknown>();
    const unknown: string[] = [];
    for (const h of hints.values()) {
      if (h.stage !== stage) continue; // news of a stage this submission has left
      if (h.outcome) results.set(h.taskId, h.outcome.value);
      else unknown.push(h.taskId);
    }
    if (unknown.length > 0) {
      // A failure or a removal: BullMQ says what became of the task.
      const queue = await this.#stageQueue(stage);
      const found = await this.#inspectJobs(queue, stage, unknown.map((taskId) => ({ taskId, sharedKey: '', input: null })), false);
      if (!(found.results instanceof Map)) {
        await this.#fail(sub, found.results);
        return false;
      }
      // A task that is gone needs its input to be queued again: that is the full look's job.
      if (found.toQueue.length > 0) return this.#settleAll(sub, wf);
      for (const [t, v] of found.results) results.set(t, v);
    }
    if (results.size === 0) return false;
    return this.#record(sub, wf, results);
  }

  /** Looks at every open task of the stage (after a restart, a retry, or a lost task). */
  async #settleAll(sub: Submission, wf: WorkflowRecord): Promise<boolean> {
    const k = sub.stageIndex;
    const stage = wf.stages[k]!.stage;
    const lists = await this.store.getStageTasks(sub.id, k);
    if (!lists) return this.#enter(sub, wf);
    const finished = await this.store.finishedTasks(sub.id, k);
    const open = uniqueTasks(lists.taskIds.map((taskId, i) => ({ taskId, sharedKey: lists.sharedKeys[i]!, input: null })))
      .filter((t) => !finished.has(t.taskId));
    const cached = await this.store.cachedResults(open);
    const results = new Map<string, unknown>();
    const uncached = open.filter((t, i) => {
      const hit = cached[i];
      if (hit) results.set(t.taskId, hit.value);
      return !hit;
    });
    const queue = await this.#stageQueue(stage);
    const found = await this.#inspectJobs(queue, stage, uncached, false);
    if (!(found.results instanceof Map)) {
      await this.#fail(sub, found.results);
      return false;
    }
    for (const [t, v] of found.results) results.set(t, v);
    if (found.toQueue.length > 0) {
      const { input, prev } = await this.store.stageInputs(sub.id);
      const again = stageTasks(wf, k, input as Json, prev as Json);
      const inputs = new Map(typeof again === 'string' ? [] : again.map((t) => [t.taskId, t]));
      const lost = found.toQueue.flatMap((t) => inputs.get(t.taskId) ?? []);
      await this.#queueTasks(sub, wf, queue, input as Json, lost);
    }
    // Even with nothing new: the last result may have been stored just before a crash.
    return this.#record(sub, wf, results);
  }

  /** Stores results of the current stage; finishes it when they are all in, else reports progress. */
  async #record(sub: Submission, wf: WorkflowRecord, results: Map<string, unknown>): Promise<boolean> {
    const k = sub.stageIndex;
    const finished = await this.store.recordResults(sub.id, k, results);
    if (finished >= sub.stages[k]!.total) {
      const lists = await this.store.getStageTasks(sub.id, k);
      if (!lists) return false; // cannot happen while the stage is entered; the next look enters it again
      return this.#finishStage(sub, wf, lists.taskIds);
    }
    return this.#progress(sub, finished);
  }

  async #progress(sub: Submission, done: number): Promise<boolean> {
    const progress = sub.stages[sub.stageIndex]!;
    if (done === progress.done) return false;
    progress.done = done;
    sub.updatedAt = Date.now();
    await this.store.saveSubmission(sub, sub.status, {
      events: [{ type: 'progress', id: sub.id, stage: progress.stage, done, total: progress.total }],
    });
    return false;
  }

  /**
   * What BullMQ knows of tasks that have no result yet: results of completed jobs, the tasks that
   * have no job (to be queued), or the stage's error when a job failed. On `entering`, a failed
   * job is queued again instead: a failure is never reused.
   */
  async #inspectJobs(queue: Queue<TaskData, TaskOutcome>, stage: string, tasks: StageTask[], entering: boolean, known?: boolean[]): Promise<{ results: Map<string, unknown> | StageError; toQueue: StageTask[] }> {
    const results = new Map<string, unknown>();
    const toQueue: StageTask[] = [];
    // A job exists exactly when its hash does. Most tasks of a stage being entered have no job yet:
    // one pipelined EXISTS each (`known`, when the caller asked already) spares them a getJobState
    // script, the costliest command per task.
    const exists = known ?? await this.store.existing(tasks.map((t) => queue.toKey(t.taskId)));
    const states = await Promise.all(tasks.map((t, i) => (exists[i] ? queue.getJobState(t.taskId) : 'unknown' as const)));
    for (const [i, t] of tasks.entries()) {
      const state = states[i];
      if (state === 'completed') {
        const job = await queue.getJob(t.taskId);
        const outcome = job?.returnvalue as TaskOutcome | undefined;
        if (outcome && typeof outcome === 'object' && 'value' in outcome) {
          results.set(t.taskId, outcome.value);
          // The worker caches before it completes: this refills an entry cleared since.
          if (t.sharedKey) await this.store.putCache(outcome.readInput ? t.taskId : t.sharedKey, { value: outcome.value, stage, at: Date.now() });
        } else {
          toQueue.push(t); // removed meanwhile: run it again
        }
      } else if (state === 'failed') {
        const job = await queue.getJob(t.taskId);
        if (!entering) {
          const failure = decodeTaskFailure(job?.failedReason ?? 'the task failed');
          const stack = failure.stack || job?.stacktrace?.at(-1);
          return { results: { stage, type: failure.name, message: failure.message, ...(stack ? { stack } : {}) }, toQueue };
        }
        // From failed to waiting in one script; throws if another submission did it first.
        await job?.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }).catch(() => undefined);
      } else if (state === 'unknown') {
        toQueue.push(t);
      }
    }
    return { results, toQueue };
  }

  /** Adds jobs for tasks; a job id that exists already is left as it is (BullMQ ignores the add). */
  async #queueTasks(sub: Submission, wf: WorkflowRecord, queue: Queue<TaskData, TaskOutcome>, submissionInput: Json, tasks: StageTask[]): Promise<void> {
    const k = sub.stageIndex;
    const stage = wf.stages[k]!.stage;
    await queue.addBulk(tasks.map((t) => ({
      name: stage,
      data: { workflow: wf.name, stage, stageIndex: k, codeHash: wf.codeHash, input: t.input, submissionInput, sharedKey: t.sharedKey },
      opts: { ...TASK_JOB_OPTIONS, jobId: t.taskId },
    })));
  }

  /** Gathers the stage's results in order, stores them as the next stage's input, and moves on. */
  async #finishStage(sub: Submission, wf: WorkflowRecord, taskIds: string[], known?: { results: Map<string, unknown>; input: unknown }): Promise<boolean> {
    const k = sub.stageIndex;
    const spec = wf.stages[k]!;
    const results = known?.results ?? await this.store.stageResults(sub.id, k);
    const output = spec.each ? taskIds.map((t) => results.get(t) ?? null) : (results.get(taskIds[0]!) ?? null);
    const last = k === wf.stages.length - 1;
    const previous = sub.status;
    const progress = sub.stages[k]!;
    progress.status = 'success';
    progress.done = progress.total;
    sub.stageIndex = k + 1;
    if (last) sub.status = 'success';
    sub.updatedAt = Date.now();
    const events: SubmissionEvent[] = [
      { type: 'progress', id: sub.id, stage: spec.stage, done: progress.done, total: progress.total },
      { type: 'stage', id: sub.id, stage: spec.stage, status: 'success' },
    ];
    if (last) events.push({ type: 'status', id: sub.id, status: 'success' });
    await this.store.finishStage(sub, previous, k, output, last, unique(taskIds), events);
    if (!last && known) this.#carried.set(sub.id, { sub, input: known.input, prev: output });
    return !last;
  }

  /** The submission errors at its current stage; later stages never run. */
  async #fail(sub: Submission, error: StageError): Promise<void> {
    const previous = sub.status;
    const k = sub.stageIndex;
    sub.status = 'errored';
    sub.error = error;
    const progress = sub.stages[k];
    if (progress) progress.status = 'errored';
    sub.updatedAt = Date.now();
    const events: SubmissionEvent[] = [];
    if (progress) events.push({ type: 'stage', id: sub.id, stage: progress.stage, status: 'errored' });
    events.push({ type: 'status', id: sub.id, status: 'errored', error });
    await this.store.saveSubmission(sub, previous, { events });
    // Its other tasks run on (their results are cached for a retry), but no longer wake it up.
    const lists = await this.store.getStageTasks(sub.id, k);
    if (lists) await this.store.removeWaiter(sub.id, unique(lists.taskIds));
  }

  /** Takes the submission off its tasks' waiters, and off the queue the tasks nobody else waits for. */
  async #dropUnwanted(stage: string, subId: string, taskIds: string[]): Promise<void> {
    const left = await this.store.removeWaiter(subId, taskIds);
    const orphans = taskIds.filter((_, i) => left[i] === 0);
    if (orphans.length === 0) return;
    const queue = await this.#stageQueue(stage);
    const states = await Promise.all(orphans.map((t) => queue.getJobState(t)));
    // A running task finishes (its result is cached); a failed one stays for the record.
    await Promise.all(orphans.map((t, i) => (['waiting', 'delayed', 'prioritized'].includes(states[i]!) ? queue.remove(t).catch(() => 0) : 0)));
  }

  // ---------------------------------------------------------------- stage queues and their events

  /**
   * The queue of a stage, with its events followed from now on (queue-events.ts says why from the
   * stream's current end); anything before that is found by advancing.
   */
  async #stageQueue(stage: string): Promise<Queue<TaskData, TaskOutcome>> {
    let p = this.#stages.get(stage);
    if (!p) {
      p = this.#openStage(stage);
      this.#stages.set(stage, p);
      p.catch(() => this.#stages.delete(stage));
    }
    return (await p).queue;
  }

  async #openStage(stage: string): Promise<StageQueue> {
    const name = queueName(stage);
    const connection: ConnectionOptions = { url: this.#redisUrl };
    const queue = new Queue<TaskData, TaskOutcome>(name, { connection, prefix: BULL_PREFIX });
    queue.on('error', () => {}); // reconnects by itself
    const events = await followQueueEvents(this.store.redis, name, { connection, prefix: BULL_PREFIX });
    events.on('error', () => {});
    const wake = (taskId: string, outcome?: TaskOutcome): void => {
      if (this.#news.length === 0) queueMicrotask(() => this.#wakeWaiters().catch(this.#onError));
      this.#news.push({ taskId, stage, ...(outcome ? { outcome } : {}) });
    };
    events.on('completed', ({ jobId, returnvalue }) => wake(jobId, isOutcome(returnvalue) ? returnvalue : undefined));
    events.on('failed', ({ jobId }) => wake(jobId));
    // A removed job (cancelled by another submission, or from the dashboard) is queued again by its waiters.
    events.on('removed', ({ jobId }) => wake(jobId));
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    return { queue, events };
  }

  /** Schedules the waiters of every task in the news for an advance. */
  async #wakeWaiters(): Promise<void> {
    const news = this.#news;
    this.#news = [];
    if (this.#closed || news.length === 0) return;
    const waiters = await this.store.waitersOf(news.map((h) => h.taskId));
    news.forEach((hint, i) => {
      for (const sub of waiters[i]!) this.#schedule(sub, hint).catch(this.#onError);
    });
  }
}

/** The tasks of stage `k`, in order, from the encoded submission input and previous output; a string says why there are none. */
function stageTasks(wf: WorkflowRecord, k: number, submissionInput: Json, prev: Json): StageTask[] | string {
  const spec = wf.stages[k]!;
  const stageInput = k === 0 ? submissionInput : prev;
  let inputs: Json[];
  if (spec.each) {
    // An encoded array is an array of encoded elements: each element is a task's input as it is.
    if (!Array.isArray(stageInput)) {
      const from = k === 0 ? 'the submission input' : `the output of stage "${wf.stages[k - 1]!.stage}"`;
      return `stage "${spec.stage}" runs on each element of ${from}, which is ${describeEncoded(stageInput)}, not an array`;
    }
    inputs = stageInput;
  } else {
    inputs = [stageInput];
  }
  const submissionInputDigest = valueDigest(submissionInput);
  return inputs.map((input) => {
    const address = { workflow: wf.name, stage: spec.stage, codeHash: wf.codeHash, input };
    return { taskId: taskIdOf({ ...address, submissionInputDigest }), sharedKey: sharedKeyOf(address), input };
  });
}

function isOutcome(v: unknown): v is TaskOutcome {
  return typeof v === 'object' && v !== null && 'value' in v && 'readInput' in v;
}

function unique(ids: string[]): string[] {
  return [...new Set(ids)];
}

function uniqueTasks<T extends { taskId: string }>(tasks: T[]): T[] {
  const seen = new Set<string>();
  return tasks.filter((t) => !seen.has(t.taskId) && seen.add(t.taskId));
}


function describeEncoded(v: Json): string {
  if (v === null) return 'null';
  if (typeof v === 'object' && !Array.isArray(v) && typeof v.$xpr === 'string') return `a ${v.$xpr}`;
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
