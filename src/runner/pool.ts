// The local pool: worker processes (node:child_process `fork`) that run chunks of items through an
// op. Processes rather than worker threads because that is what WFL_NUM_PYTHON_SUBPROCESSES means to
// wfl users, and because a crash (a native addon's segfault, process.exit, out of memory) then takes
// down one worker, not the script: its chunk fails with an error that says so, the worker is replaced,
// and a broken worker is never given more work (BullMQ child-pool's rule). Each worker has a few
// chunks in flight so it never idles waiting for the next message; it runs them one at a time, and
// when it crashes only the one it was running fails (the others go to the remaining workers).
// Pure (node builtins and xpr's pure modules): the job runner bundles it for remote chunks.
import { fork, type ChildProcess } from 'node:child_process';
import { XprError } from '../errors.js';
import { reviveError, type SerializedError } from '../util/codec.js';
import type { InitializerRef, OpTarget } from './callop.js';
import { POOL_WORKER_ENV } from './protocol.js';
import { Reaper } from './reaper.js';

export type ToWorker =
  | { type: 'init'; target: OpTarget; kwargs: Record<string, unknown>; initializer?: InitializerRef }
  | { type: 'task'; id: number; items: unknown[] };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'initFailed'; error: SerializedError }
  | { type: 'result'; id: number; ok: true; value: unknown[] }
  | { type: 'result'; id: number; ok: false; error: SerializedError };

export interface PoolOptions {
  /** Number of worker processes (at least 1). */
  size: number;
  /** Where each worker imports the op from. */
  target: OpTarget;
  /** Passed to the op with every chunk (sent to each worker once). */
  kwargs?: Record<string, unknown>;
  initializer?: InitializerRef;
  /** The script forked as a worker: xpr's runner, which serves the pool when POOL_WORKER_ENV is set. */
  workerScript: string;
  /** Node options of the workers; default: this process's, without debugger flags. */
  execArgv?: string[];
}

/** A worker process ended while running a chunk. */
export class WorkerCrashedError extends XprError {
  constructor(readonly pid: number | undefined, readonly exitCode: number | null, readonly signal: string | null, readonly stderrTail: string) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
    super(`A pool worker (pid ${pid ?? '?'}) ${how} while running a chunk; the chunk's items have no results` +
      (stderrTail ? `\n--- worker stderr (tail) ---\n${stderrTail}` : ''), {
      hint: 'The op crashed its process (process.exit, a native crash, out of memory). The worker was replaced; ' +
        'run with WFL_NUM_PYTHON_SUBPROCESSES=0 to see the failure in-process.',
    });
  }
}

const IN_FLIGHT_PER_WORKER = 4;
const STDERR_TAIL_BYTES = 4000;
const CLOSE_GRACE_MS = 5000;

interface Task {
  id: number;
  items: unknown[];
  resolve: (v: unknown[]) => void;
  reject: (e: unknown) => void;
}

interface Worker {
  child: ChildProcess;
  ready: boolean;
  /** Chunks sent, oldest first: the first one is the one running. */
  inFlight: Task[];
  stderrTail: string;
}

/** Options that start something else than a module (or a debugger): a worker must not inherit them. */
const DROP_WITH_VALUE = new Set(['-e', '--eval', '-p', '--print', '-pe']);
const DROP = /^(?:--(?:inspect|debug)|--(?:eval|print)=|-i$|--interactive$|--test|--watch|--check$|-c$)/;

/**
 * Node options for the workers: this process's (so loaders like `--import tsx` still apply), minus
 * code given on the command line (`node -e`, which would run again in every worker), debuggers,
 * the test runner and watch mode.
 */
export function workerExecArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (DROP_WITH_VALUE.has(a)) { i++; continue; }
    if (DROP.test(a)) continue;
    out.push(a);
  }
  return out;
}

export class WorkerPool {
  private readonly workers = new Set<Worker>();
  private readonly queue: Task[] = [];
  private nextId = 0;
  private closing = false;
  private broken: Error | undefined;
  /** Ends the workers if this process dies without closing the pool. */
  private readonly reaper = new Reaper();
  private readonly opts: Required<Pick<PoolOptions, 'execArgv' | 'kwargs'>> & PoolOptions;

  private constructor(options: PoolOptions) {
    this.opts = {
      ...options,
      kwargs: options.kwargs ?? {},
      execArgv: options.execArgv ?? workerExecArgv(process.execArgv),
    };
  }

  /** Start `size` workers and wait until each has imported the op and run the initializer. */
  static async start(options: PoolOptions): Promise<WorkerPool> {
    if (!Number.isInteger(options.size) || options.size < 1) throw new XprError(`Pool size must be a positive integer, got ${options.size}`);
    const pool = new WorkerPool(options);
    const starts = Array.from({ length: options.size }, () => pool.spawn());
    const results = await Promise.allSettled(starts);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await pool.close({ force: true });
      throw failed.reason;
    }
    return pool;
  }

  /** Process ids of the live workers. */
  get pids(): number[] {
    return [...this.workers].map((w) => w.child.pid).filter((p): p is number => p !== undefined);
  }

  /** Run one chunk; resolves with the op's results, aligned with `items`. */
  run(items: unknown[]): Promise<unknown[]> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closing) return Promise.reject(new XprError('The worker pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, items, resolve, reject });
      this.dispatch();
    });
  }

  /** Stop the workers: gracefully after their chunks, or at once with `force` (queued chunks fail). */
  async close(options: { force?: boolean } = {}): Promise<void> {
    this.closing = true;
    const stop = new XprError('The worker pool was closed before this chunk ran');
    for (const t of this.queue.splice(0)) t.reject(stop);
    await Promise.all([...this.workers].map((w) => this.stopWorker(w, options.force ?? false)));
    this.reaper.dismiss();
  }

  private spawn(): Promise<void> {
    const child = fork(this.opts.workerScript, [], {
      env: { ...process.env, [POOL_WORKER_ENV]: '1' },
      execArgv: this.opts.execArgv,
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    const w: Worker = { child, ready: false, inFlight: [], stderrTail: '' };
    this.workers.add(w);
    this.reaper.add(child.pid);
    child.stderr?.on('data', (d: Buffer) => {
      process.stderr.write(d);
      w.stderrTail = (w.stderrTail + d.toString('utf8')).slice(-STDERR_TAIL_BYTES);
    });
    return new Promise<void>((resolve, reject) => {
      child.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          w.ready = true;
          resolve();
          this.dispatch();
        } else if (msg.type === 'initFailed') {
          // Never reuse a worker that could not start: kill it and report why.
          this.workers.delete(w);
          child.kill('SIGKILL');
          reject(reviveError(msg.error));
        } else {
          this.settle(w, msg);
        }
      });
      child.on('error', (err) => {
        if (!w.ready) {
          this.workers.delete(w);
          reject(err);
        }
      });
      child.on('exit', (code, signal) => {
        this.reaper.forget(child.pid);
        const known = this.workers.delete(w);
        if (!w.ready) {
          reject(new WorkerCrashedError(child.pid, code, signal, w.stderrTail.trim()));
          return;
        }
        if (!known || this.closing) return;
        this.onCrash(w, code, signal);
      });
      child.send({
        type: 'init', target: this.opts.target, kwargs: this.opts.kwargs,
        ...(this.opts.initializer ? { initializer: this.opts.initializer } : {}),
      } satisfies ToWorker);
    });
  }

  /** A live worker died: its running chunk fails, the ones queued behind it go to others, and it is replaced. */
  private onCrash(w: Worker, code: number | null, signal: string | null): void {
    const [running, ...waiting] = w.inFlight;
    w.inFlight = [];
    this.queue.unshift(...waiting);
    running?.reject(new WorkerCrashedError(w.child.pid, code, signal, w.stderrTail.trim()));
    this.spawn().catch((err: unknown) => {
      // The replacement could not start either: the pool cannot go on.
      this.broken = err instanceof Error ? err : new Error(String(err));
      for (const t of this.queue.splice(0)) t.reject(this.broken);
    });
    this.dispatch();
  }

  private settle(w: Worker, msg: Extract<FromWorker, { type: 'result' }>): void {
    const i = w.inFlight.findIndex((t) => t.id === msg.id);
    if (i < 0) return;
    const [task] = w.inFlight.splice(i, 1);
    if (msg.ok) task!.resolve(msg.value);
    else task!.reject(reviveError(msg.error));
    this.dispatch();
  }

  private dispatch(): void {
    if (this.queue.length === 0) return;
    // Fill the least busy workers first, so chunks spread over all of them.
    for (let depth = 0; depth < IN_FLIGHT_PER_WORKER; depth++) {
      for (const w of this.workers) {
        if (this.queue.length === 0) return;
        if (!w.ready || w.inFlight.length > depth || !w.child.connected) continue;
        const task = this.queue.shift()!;
        w.inFlight.push(task);
        w.child.send({ type: 'task', id: task.id, items: task.items } satisfies ToWorker);
      }
    }
  }

  private stopWorker(w: Worker, force: boolean): Promise<void> {
    const child = w.child;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), force ? 0 : CLOSE_GRACE_MS);
      child.once('exit', () => {
        clearTimeout(timer);
        for (const t of w.inFlight.splice(0)) t.reject(new XprError('The worker pool was closed while this chunk ran'));
        resolve();
      });
      if (force) child.kill('SIGTERM');
      else if (child.connected) child.disconnect();
      else child.kill('SIGTERM');
    });
  }
}

/**
 * Run chunks through a pool of `size` workers (fewer if there are fewer chunks), calling `onResult`
 * as each finishes (in any order). On the first failure the pool is stopped and the error thrown.
 */
export async function runChunksInPool(
  options: PoolOptions, chunks: readonly unknown[][], onResult: (index: number, results: unknown[]) => void,
): Promise<void> {
  if (chunks.length === 0) return;
  const pool = await WorkerPool.start({ ...options, size: Math.min(options.size, chunks.length) });
  let failed = false;
  try {
    await Promise.all(chunks.map((items, i) => pool.run(items).then((r) => { if (!failed) onResult(i, r); }, (err: unknown) => {
      failed = true;
      throw err;
    })));
  } catch (err) {
    await pool.close({ force: true });
    throw err;
  }
  await pool.close();
}
