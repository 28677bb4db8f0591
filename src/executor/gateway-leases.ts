// Leases: how workers that cannot reach Redis (other machines, cluster nodes) take tasks. The
// gateway holds one BullMQ Worker per stage that processes nothing itself: it fetches a job for a
// remote worker with `getNextJob(token)`, the lock token becomes the lease token, heartbeats extend
// the lock, and the remote worker's answer moves the job to completed or failed. A worker that
// stops sending heartbeats loses its lock; BullMQ's stalled check then puts the job back in the
// queue for somebody else, exactly as for a local worker that dies.
import { randomUUID } from 'node:crypto';
import { Job, Queue, UnrecoverableError, Worker, type ConnectionOptions } from 'bullmq';
import type { SerializedError } from '../util/codec.js';
import { encodeTaskFailure } from './task-runner.js';
import type { TaskData, TaskOutcome } from './types.js';

/** BullMQ's worker name of the gateway's lease workers; /health does not count them as workers. */
export const LEASE_WORKER_NAME = 'xpr-gateway-leases';
/** A remote worker counts as live this long after its last request. */
export const LIVE_WINDOW_MS = 30_000;

export interface LeaseOptions {
  connection: ConnectionOptions;
  prefix: string;
  /** How long a lease lasts without a heartbeat. */
  lockDurationMs: number;
  /** How often the stalled check runs (BullMQ's stalledInterval). */
  stalledIntervalMs: number;
  /** Times a task may lose its worker before it fails. */
  maxStalledCount: number;
}

export interface Lease {
  leaseToken: string;
  taskId: string;
  data: TaskData;
  /** Attempts made before this one (transient failures and stalls). */
  attemptsMade: number;
}

/** What a lease request's answer turned out to be when it ends without a task. */
type Waiter = { resolve: (lease: Lease | null) => void; timer: NodeJS.Timeout };

/** A lease or completion that names a task this gateway can no longer act on. */
export class LeaseLost extends Error {
  constructor(
    readonly status: 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

/** The leases of one stage's queue. */
export class StageLeases {
  readonly stage: string;
  readonly queue: Queue;
  readonly #worker: Worker;
  readonly #lockDurationMs: number;
  readonly #waiters: Waiter[] = [];
  #fetching = false;
  #closed = false;

  constructor(stage: string, queueName: string, options: LeaseOptions) {
    this.stage = stage;
    this.#lockDurationMs = options.lockDurationMs;
    const common = { connection: options.connection, prefix: options.prefix };
    this.queue = new Queue(queueName, common);
    this.#worker = new Worker(queueName, null, {
      ...common,
      name: LEASE_WORKER_NAME,
      autorun: false,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount,
      // How long one blocking fetch waits before the loop looks at its waiters again.
      drainDelay: 5,
    });
    // Lost connections are retried by ioredis; a request that meets one gets a 503 from its route.
    this.queue.on('error', () => {});
    this.#worker.on('error', () => {});
  }

  /** How long a lease lasts without a heartbeat: remote workers are told, and beat well within it. */
  get lockDurationMs(): number {
    return this.#lockDurationMs;
  }

  /** Starts the stalled check: without it an expired lease would never go back to the queue. */
  async start(): Promise<void> {
    await this.#worker.waitUntilReady();
    void this.#worker.startStalledCheckTimer();
  }

  /**
   * Waits up to `waitMs` for a task and leases it, or resolves null. `signal` ends the wait early
   * (the client went away).
   */
  lease(waitMs: number, signal?: AbortSignal): Promise<Lease | null> {
    if (this.#closed || signal?.aborted) return Promise.resolve(null);
    return new Promise<Lease | null>((resolve) => {
      const waiter: Waiter = {
        resolve: (lease) => {
          clearTimeout(waiter.timer);
          signal?.removeEventListener('abort', drop);
          resolve(lease);
        },
        timer: setTimeout(() => drop(), waitMs),
      };
      const drop = (): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        waiter.resolve(null);
      };
      signal?.addEventListener('abort', drop, { once: true });
      this.#waiters.push(waiter);
      void this.#fetchLoop();
    });
  }

  /**
   * One fetch at a time per stage: BullMQ's worker blocks on one connection, and a job fetched is
   * handed to the longest-waiting request. A job nobody waits for any more goes back to the queue.
   */
  async #fetchLoop(): Promise<void> {
    if (this.#fetching) return;
    this.#fetching = true;
    try {
      while (this.#waiters.length > 0 && !this.#closed) {
        const token = randomUUID();
        let job: Job<TaskData> | undefined;
        try {
          job = (await this.#worker.getNextJob(token, { block: true })) as Job<TaskData> | undefined;
        } catch {
          // Redis is away: waiters run out their time and get 204; try again shortly.
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        if (!job?.id) continue;
        const waiter = this.#waiters.shift();
        if (!waiter) {
          await job.moveToWait(token).catch(() => {});
          continue;
        }
        waiter.resolve({ leaseToken: token, taskId: job.id, data: job.data, attemptsMade: job.attemptsMade });
      }
    } finally {
      this.#fetching = false;
    }
  }

  /** Extends a lease by the lock duration. */
  async heartbeat(taskId: string, leaseToken: string): Promise<void> {
    const failed = await this.#worker.extendJobLocks([taskId], [leaseToken], this.#lockDurationMs);
    if (failed.length > 0) throw await this.#lost(taskId);
  }

  /** The leased task (its data says where its result is cached); 404 when it is gone. */
  leasedTask(taskId: string): Promise<Job<TaskData>> {
    return this.#job(taskId);
  }

  async complete(job: Job<TaskData>, leaseToken: string, outcome: TaskOutcome): Promise<void> {
    try {
      await job.moveToCompleted(outcome, leaseToken, false);
    } catch (err) {
      throw this.#mapScriptError(err, job.id ?? '');
    }
  }

  /**
   * A stage error fails the task at once (UnrecoverableError); a transient one (the worker lost
   * something, not the stage's code) uses the task's remaining attempts with backoff.
   */
  async fail(taskId: string, leaseToken: string, error: SerializedError, transient: boolean): Promise<void> {
    const job = await this.#job(taskId);
    // The reason carries the whole serialized error, as a local worker's does, so the submission
    // shows the stage's own type, message and stack.
    const reason = encodeTaskFailure({ ...error, stack: error.stack ?? `${error.name}: ${error.message}` });
    const err = transient ? new Error(reason) : new UnrecoverableError(reason);
    try {
      await job.moveToFailed(err, leaseToken, false);
    } catch (e) {
      throw this.#mapScriptError(e, taskId);
    }
  }

  async #job(taskId: string): Promise<Job<TaskData>> {
    const job = (await Job.fromId(this.queue, taskId)) as Job<TaskData> | undefined;
    if (!job) throw new LeaseLost(404, `Task ${taskId} is not in stage "${this.stage}"'s queue (cancelled or removed): drop it.`);
    return job;
  }

  async #lost(taskId: string): Promise<LeaseLost> {
    const job = await Job.fromId(this.queue, taskId);
    if (!job) return new LeaseLost(404, `Task ${taskId} is not in stage "${this.stage}"'s queue (cancelled or removed): drop it.`);
    return new LeaseLost(
      409,
      `The lease on task ${taskId} has expired (no heartbeat within ${this.#lockDurationMs} ms): the task went back to the queue; drop it.`,
    );
  }

  #mapScriptError(err: unknown, taskId: string): unknown {
    const message = err instanceof Error ? err.message : String(err);
    if (/Missing key/i.test(message)) {
      return new LeaseLost(404, `Task ${taskId} is not in stage "${this.stage}"'s queue (cancelled or removed): drop it.`);
    }
    if (/Missing lock|Lock mismatch|not in the active state/i.test(message)) {
      return new LeaseLost(
        409,
        `The lease on task ${taskId} has expired (no heartbeat within ${this.#lockDurationMs} ms): the task went back to the queue; drop it.`,
      );
    }
    return err;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(null);
    await this.#worker.close(true).catch(() => {});
    await this.queue.close().catch(() => {});
  }
}

/** Remote workers seen recently, per stage: /health counts them with the queue's own workers. */
export class LiveWorkers {
  readonly #seen = new Map<string, Map<string, number>>();
  /** Lease token → the worker holding it: heartbeats and reports name the lease, not the worker. */
  readonly #holders = new Map<string, { workerId: string; at: number }>();

  seen(stage: string, workerId: string, now = Date.now()): void {
    let ids = this.#seen.get(stage);
    if (!ids) this.#seen.set(stage, (ids = new Map()));
    ids.set(workerId, now);
  }

  leased(stage: string, leaseToken: string, workerId: string, now = Date.now()): void {
    this.seen(stage, workerId, now);
    this.#holders.set(leaseToken, { workerId, at: now });
    // Leases that lapsed without a report would pile up: forget the ones long past any lock.
    if (this.#holders.size > 10_000) {
      for (const [token, h] of this.#holders) if (now - h.at > 24 * 3600_000) this.#holders.delete(token);
    }
  }

  /** A request about a lease: its holder is alive; `done` when the lease ends with it. */
  heard(stage: string, leaseToken: string, workerId: string | undefined, done = false, now = Date.now()): void {
    const holder = this.#holders.get(leaseToken);
    const id = workerId ?? holder?.workerId;
    if (id) this.seen(stage, id, now);
    if (holder) holder.at = now;
    if (done) this.#holders.delete(leaseToken);
  }

  count(stage: string, now = Date.now()): number {
    const ids = this.#seen.get(stage);
    if (!ids) return 0;
    let n = 0;
    for (const [id, at] of ids) {
      if (now - at <= LIVE_WINDOW_MS) n++;
      else ids.delete(id);
    }
    return n;
  }
}
