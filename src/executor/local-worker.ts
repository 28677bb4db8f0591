// A worker on the executor's own machine: one BullMQ Worker, concurrency 1, on one stage's queue.
// It takes the stage code from Redis by hash, runs the task, writes the cache entry, and only then
// returns, so a task BullMQ counts as completed always has its result cached. A stage function
// that throws fails the task at once (UnrecoverableError: running it again gives the same answer);
// anything else (Redis away, code missing) is thrown as is and uses the task's BullMQ attempts.
// A worker that dies mid-task loses its lock, and BullMQ's stalled check gives the task to another.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { distFile } from '../util/paths.js';
import { resolveCores, type CoreCount } from './cores.js';
import { BULL_PREFIX, keys, queueName } from './keys.js';
import { ExecutorStore } from './store.js';
import { encodeTaskFailure, runTask, StageFailed, type TaskEnvironment } from './task-runner.js';
import type { LocalWorkerSettings, TaskData, TaskOutcome } from './types.js';

/** The variable `worker-main` reads its settings from, as JSON. */
export const WORKER_SETTINGS_VARIABLE = 'XPR_WORKER_SETTINGS';

/** A task lost by a killed worker is run again; a task that kills every worker it meets is not, for ever. */
const MAX_STALLED = 3;

export type WorkerLog = (line: string) => void;

/** How `stop` ended: the running task finished, or the grace ran out and it went back to the queue. */
export type StopResult = 'drained' | 'requeued';

export class LocalWorker {
  #active: { job: Job<TaskData, TaskOutcome>; token: string } | undefined;

  private constructor(
    readonly settings: LocalWorkerSettings,
    readonly cores: CoreCount,
    private readonly worker: Worker<TaskData, TaskOutcome>,
    private readonly store: ExecutorStore,
  ) {}

  /** Connects and starts taking tasks; logs the cores it offers. */
  static async start(settings: LocalWorkerSettings, log: WorkerLog = defaultLog): Promise<LocalWorker> {
    const cores = resolveCores(settings.cores);
    // Its commands wait for Redis to come back rather than fail: a result computed while Redis
    // restarts is still cached and reported once it is back.
    const store = ExecutorStore.connect(settings.redisUrl);
    store.redis.on('error', () => {});
    const env: TaskEnvironment = {
      cores: cores.cores,
      maxMemPerCore: settings.maxMem === undefined ? undefined : Math.floor(settings.maxMem / cores.cores),
      loadCode: async (hash) => {
        const code = await store.getCode(hash);
        if (code === undefined) throw new Error(`the code ${hash} is not in Redis (key ${keys.code(hash)})`);
        return code;
      },
      ...(settings.codeDir === undefined ? {} : { codeDir: settings.codeDir }),
      ...(settings.keepTempFiles ? { keepTempFiles: true, log: (line: string) => log(line) } : {}),
    };
    // The processor notes the running task on the LocalWorker made below; with autorun off it
    // cannot run before that.
    let self: LocalWorker | undefined;
    // Cache entries are written on the connection BullMQ completes jobs with (see processTask).
    let onBullConnection: ExecutorStore | undefined;
    const cacheStore = async (): Promise<ExecutorStore> =>
      (onBullConnection ??= new ExecutorStore((await worker.getBackend().client) as unknown as Redis)); // ioredis, from `connection`
    const worker = new Worker<TaskData, TaskOutcome>(
      queueName(settings.stage),
      async (job, token) => {
        self!.#active = { job, token: token ?? '' };
        try {
          return await processTask(job, env, await cacheStore(), log);
        } finally {
          self!.#active = undefined;
        }
      },
      {
        connection: { url: settings.redisUrl },
        prefix: BULL_PREFIX,
        concurrency: 1,
        autorun: false,
        name: `xpr-worker-${process.pid}`,
        lockDuration: settings.lockDurationMs ?? 30_000,
        stalledInterval: settings.stalledIntervalMs ?? 30_000,
        maxStalledCount: MAX_STALLED,
      },
    );
    let lastError = '';
    worker.on('error', (err) => {
      // Redis going away repeats the same error on every retry: say it once.
      if (err.message !== lastError) log(`xpr worker ${process.pid} (stage ${settings.stage}): ${err.message}`);
      lastError = err.message;
    });
    worker.on('failed', (job, err) => {
      if (job) log(`xpr worker ${process.pid} (stage ${settings.stage}): task ${job.id} failed: ${err.message}`);
    });
    self = new LocalWorker(settings, cores, worker, store);
    await worker.waitUntilReady();
    void worker.run();
    log(`xpr worker ${process.pid}: stage ${settings.stage}, ${cores.cores} core${cores.cores === 1 ? '' : 's'} (${cores.how})`);
    return self;
  }

  /**
   * Takes no new task, and gives the running one `graceMs` to finish. When the grace runs out the
   * task goes back to the queue at once (another worker takes it without waiting for its lock to
   * expire) and the worker's connections are dropped; its own run of the task is abandoned.
   */
  async stop(graceMs = this.settings.graceMs ?? 30_000): Promise<StopResult> {
    const drained = this.worker.close().then(() => 'drained' as const);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => { timer = setTimeout(() => resolve('expired'), graceMs); });
    const first = await Promise.race([drained, expired]);
    clearTimeout(timer);
    if (first === 'drained') {
      await bounded(this.store.close());
      this.store.redis.disconnect();
      return 'drained';
    }
    const active = this.#active;
    if (active) await bounded(active.job.moveToWait(active.token));
    await bounded(this.worker.close(true));
    this.store.redis.disconnect();
    return 'requeued';
  }
}

/** Run the task, cache its result, then hand BullMQ the outcome. */
async function processTask(job: Job<TaskData, TaskOutcome>, env: TaskEnvironment, cache: ExecutorStore, log: WorkerLog): Promise<TaskOutcome> {
  const taskId = job.id!;
  let outcome: TaskOutcome;
  try {
    outcome = await runTask(taskId, job.data, env);
  } catch (err) {
    if (err instanceof StageFailed) throw stageError(err);
    throw err;
  }
  // Before completing: a task BullMQ calls completed must find its result in the cache. A result
  // that does not depend on the submission's input is shared by every submission reaching this input.
  const key = outcome.readInput ? taskId : job.data.sharedKey;
  // Not awaited, and sent on the connection BullMQ then completes the job on: Redis runs one
  // connection's commands in order, so the entry is stored before the job is completed, and each
  // task saves a round trip (a third of a trivial task's time). A refused write is only logged: the
  // job's outcome still carries the result to the coordinator.
  cache.putCache(key, { value: outcome.value, stage: job.data.stage, at: Date.now() })
    .catch((err: unknown) => log(`xpr worker ${process.pid}: task ${taskId}: its result was not cached: ${(err as Error).message}`));
  return outcome;
}

/**
 * How a stage's error travels in BullMQ: the whole serialized error as the job's failedReason (see
 * encodeTaskFailure), as the gateway fails a remote worker's task.
 */
function stageError(err: StageFailed): UnrecoverableError {
  const e = new UnrecoverableError(encodeTaskFailure(err.failure));
  e.stack = err.failure.stack;
  return e;
}

/** Waits for a clean-up step, but not for ever: with Redis away it would never end. */
async function bounded(step: Promise<unknown>, ms = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([step.catch(() => undefined), new Promise((r) => { timer = setTimeout(r, ms); })]);
  clearTimeout(timer);
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Starts a worker process (`node dist/src/executor/worker-main.js`) with its settings in
 * XPR_WORKER_SETTINGS. It logs one line when it takes tasks, and exits 0 after SIGTERM once its
 * task is done (or given back).
 */
export function spawnLocalWorker(
  settings: LocalWorkerSettings, options: { stdio?: StdioOptions; env?: NodeJS.ProcessEnv } = {},
): ChildProcess {
  return spawn(process.execPath, [distFile('executor/worker-main.js')], {
    stdio: options.stdio ?? ['ignore', 'inherit', 'inherit'],
    env: { ...(options.env ?? process.env), [WORKER_SETTINGS_VARIABLE]: JSON.stringify(settings) },
  });
}
