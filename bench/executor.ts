// The executor: trivial tasks through it against bare BullMQ doing the same on the same Redis, in
// the same run. The executor is the real one (Executor.launch: gateway, coordinator in this
// process, local worker processes); submissions go through its HTTP client. Bare BullMQ is a Queue
// in this process and Worker processes returning the job's data.
//
// "10,000 trivial tasks through one stage" is measured as one submission whose `each` stage fans
// out to 10,000 distinct elements (the goal figure), and also as 10,000 one-stage submissions of
// one task each (per-submission cost), both against the same bare figure. Both include queueing
// the tasks and exclude starting the workers.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Executor } from '../src/executor/executor.js';
import { EVENTS_CHANNEL } from '../src/executor/keys.js';
import { followQueueEvents } from '../src/executor/queue-events.js';
import { startRedisServer, type RedisServer } from '../src/executor/redis-server.js';
import type { SubmissionEvent } from '../src/executor/types.js';
import { PACKAGE_ROOT } from '../src/util/paths.js';
import { time, type Figure } from './measure.js';

/** Tasks (and submissions) per figure; smaller only when profiling. */
let N = 10_000;
const LATENCY_RUNS = 20;
const WORKFLOW = path.join(PACKAGE_ROOT, 'bench', 'executor-workflow.js');
const BARE_WORKER = path.join(PACKAGE_ROOT, 'bench', 'bare-bullmq-worker.js');
/** Nothing here should take this long; a wait that does is a hang, and the bench says so. */
const WAIT_LIMIT_MS = 5 * 60_000;

// A heap figure needs a full collection first; the bench runs without --expose-gc.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

export async function benchExecutor(count = 10_000): Promise<Figure[]> {
  N = count;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-bench-executor-'));
  let redis: RedisServer | undefined;
  try {
    redis = await startRedisServer({ dir: path.join(dir, 'redis'), password: randomBytes(18).toString('hex') });
    const xpr = await measureExecutor(redis.url, path.join(dir, 'executor'));
    const bare = await measureBare(redis.url);
    const ratio = xpr.fanMs / bare.tasksMs;
    const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
    return [
      {
        name: `executor: ${N} trivial tasks, one stage (each), 2 workers`, xprMs: xpr.fanMs, baselineMs: bare.tasksMs,
        target: '<= 1.3x', ok: ratio <= 1.3, note: 'one submission: a stage making the elements, then each; bare: Queue.addBulk + 2 Worker processes',
      },
      {
        name: `executor: ${N} one-task submissions, 2 workers`, xprMs: xpr.manyMs, baselineMs: bare.tasksMs,
        note: 'one request of 10,000 inputs; same bare figure',
      },
      {
        name: 'executor: 3-stage submission, end to end', xprMs: xpr.threeMs, baselineMs: bare.chainMs,
        note: `median of ${LATENCY_RUNS}; bare: 3 chained jobs, each added when the last finished`,
      },
      {
        name: 'executor: cache hit (3 stages cached), submit to result', xprMs: xpr.hitMs, baselineMs: xpr.getMs,
        target: '< 10 ms', ok: xpr.hitMs < 10, note: `median of ${LATENCY_RUNS}; bare: one Redis GET of a cache entry`,
      },
      {
        name: `executor: coordinator heap over ${N} submissions`, xprMs: 0, baselineMs: 0,
        xprText: mb(xpr.heapAfter), baselineText: mb(xpr.heapBefore),
        target: 'flat', ok: xpr.heapAfter - xpr.heapBefore < N * FLAT_BYTES_EACH,
        note: `after GC; bare column: before them (${signed(xpr.heapAfter - xpr.heapBefore)} bytes)`,
      },
    ];
  } finally {
    await redis?.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Growth of the heap per submission that still counts as flat. */
const FLAT_BYTES_EACH = 100;

function signed(n: number): string {
  return `${n >= 0 ? '+' : ''}${n.toLocaleString('en-US')}`;
}

interface ExecutorFigures {
  fanMs: number;
  manyMs: number;
  threeMs: number;
  hitMs: number;
  getMs: number;
  heapBefore: number;
  heapAfter: number;
}

async function measureExecutor(redisUrl: string, directory: string): Promise<ExecutorFigures> {
  const ex = await Executor.launch({
    directory, workflowModule: WORKFLOW, redis: redisUrl, port: 0, graceMs: 1000,
    workers: { spread: 1, one: 2, a: 1, b: 1, c: 1 }, env: {}, log: () => {},
  });
  const finished = new Finished(redisUrl);
  try {
    await finished.ready();
    const run = randomBytes(6).toString('hex'); // inputs no earlier run has cached
    // Warm-up: the workers have started, imported the code, and the gateway has JIT-compiled.
    const warm = await ex.submit('fan', { run: `${run}-warm`, n: 20 });
    await finished.all([warm]);
    await waitFor(ex.submit('three', { run, warm: true }).then((id) => finished.all([id])));

    const fanMs = await time(async () => {
      const id = await ex.submit('fan', { run, n: N });
      await finished.all([id]);
    });

    await settle();
    const heapBefore = process.memoryUsage().heapUsed;
    const manyMs = await time(async () => {
      const ids = await ex.client.submitMany('single', Array.from({ length: N }, (_v, i) => ({ run, one: i })));
      await finished.all(ids);
    });
    await settle();
    const heapAfter = process.memoryUsage().heapUsed;

    const three: number[] = [];
    for (let i = 0; i < LATENCY_RUNS; i++) {
      three.push(await time(async () => {
        const id = await ex.submit('three', { run, three: i });
        await finished.all([id]);
      }));
    }
    // The same inputs again: every stage's result is in the cache.
    const hits: number[] = [];
    for (let i = 0; i < LATENCY_RUNS; i++) {
      hits.push(await time(() => ex.submit('three', { run, three: i }).then((id) => ex.waitUntilComplete(id))));
    }
    const probe = new Redis(redisUrl);
    const [key] = await probe.keys('xpr:cache:*').then((k) => k.slice(0, 1));
    const gets: number[] = [];
    for (let i = 0; i < LATENCY_RUNS; i++) gets.push(await time(() => probe.get(key!)));
    probe.disconnect();
    return { fanMs, manyMs, threeMs: median(three), hitMs: median(hits), getMs: median(gets), heapBefore, heapAfter };
  } finally {
    finished.close();
    await ex.close();
  }
}

/** Submissions that reached success, from the executor's event channel. */
class Finished {
  readonly #sub: Redis;
  readonly #done = new Set<string>();
  readonly #waiters = new Set<() => void>();
  #failed: string | undefined;
  readonly #subscribed: Promise<unknown>;

  constructor(url: string) {
    this.#sub = new Redis(url);
    this.#sub.on('message', (_channel: string, text: string) => {
      const e = JSON.parse(text) as SubmissionEvent;
      if (e.type !== 'status') return;
      if (e.status === 'errored' || e.status === 'cancelled') this.#failed ??= `bench submission ${e.id} ${e.status}: ${JSON.stringify(e)}`;
      else if (e.status === 'success') this.#done.add(e.id);
      else return;
      for (const w of this.#waiters) w();
    });
    this.#subscribed = this.#sub.subscribe(EVENTS_CHANNEL);
  }

  ready(): Promise<unknown> {
    return this.#subscribed;
  }

  /** Resolves once every id has succeeded. */
  all(ids: string[]): Promise<void> {
    const left = new Set(ids.filter((id) => !this.#done.has(id)));
    if (left.size === 0) return Promise.resolve();
    return waitFor(new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.#failed) reject(new Error(this.#failed));
        for (const id of left) if (this.#done.has(id)) left.delete(id);
        if (left.size > 0) return;
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    }));
  }

  close(): void {
    this.#sub.disconnect();
  }
}

interface BareFigures {
  tasksMs: number;
  chainMs: number;
}

async function measureBare(redisUrl: string): Promise<BareFigures> {
  const workers: ChildProcess[] = [];
  const connection = { url: redisUrl };
  const opened: { close(): Promise<unknown> }[] = [];
  const open = <T extends { close(): Promise<unknown> }>(x: T): T => {
    opened.push(x);
    return x;
  };
  try {
    workers.push(...await Promise.all([
      bareWorker(redisUrl, ['one']), bareWorker(redisUrl, ['one']),
      bareWorker(redisUrl, ['a']), bareWorker(redisUrl, ['b']), bareWorker(redisUrl, ['c']),
    ]));
    const one = open(new Queue('one', { connection, prefix: 'bare' }));
    // Followed from the stream's end: with QueueEvents' default, a warm-up job that finished before
    // its first read was never counted, and the bench hung now and then.
    const probe = new Redis(redisUrl);
    open({ close: () => probe.quit() });
    const follow = (q: string) => followQueueEvents(probe, q, { connection, prefix: 'bare' });
    const oneEvents = open(await follow('one'));
    await oneEvents.waitUntilReady();
    const run = async (count: number, tag: string): Promise<void> => {
      let left = count;
      const done = new Promise<void>((resolve) => {
        const onCompleted = (): void => {
          if (--left > 0) return;
          oneEvents.off('completed', onCompleted);
          resolve();
        };
        oneEvents.on('completed', onCompleted);
      });
      await one.addBulk(Array.from({ length: count }, (_v, i) => ({ name: 'one', data: { i }, opts: { jobId: `${tag}-${i}`, removeOnComplete: { count: 1000 } } })));
      await waitFor(done);
    };
    await run(20, 'warm');
    const tasksMs = await time(() => run(N, 'run'));

    const chain = await Promise.all(['a', 'b', 'c'].map(async (q) => ({
      queue: open(new Queue(q, { connection, prefix: 'bare' })),
      events: open(await follow(q)),
    })));
    await Promise.all(chain.map((c) => c.events.waitUntilReady()));
    const oneChain = async (input: unknown): Promise<void> => {
      let value = input;
      for (const c of chain) {
        const job = await c.queue.add('step', value, { removeOnComplete: { count: 1000 } });
        value = await waitFor(job.waitUntilFinished(c.events));
      }
    };
    await oneChain({ warm: true });
    const chains: number[] = [];
    for (let i = 0; i < LATENCY_RUNS; i++) chains.push(await time(() => oneChain({ i })));
    return { tasksMs, chainMs: median(chains) };
  } finally {
    await Promise.allSettled(opened.map((x) => x.close()));
    await Promise.all(workers.map(stopChild));
  }
}

/** A bare worker process on `queues`, once it takes jobs. */
function bareWorker(redisUrl: string, queues: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BARE_WORKER], {
    env: { ...process.env, BENCH_REDIS_URL: redisUrl, BENCH_QUEUES: queues.join(',') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return waitFor(new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`the bare BullMQ worker exited (code ${String(code)}) before it was ready`)));
  }));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Lets the coordinator's last writes land, then collects garbage twice (weak refs, finalizers). */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 200));
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function waitFor<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`executor bench: nothing finished within ${WAIT_LIMIT_MS / 1000} s`)), WAIT_LIMIT_MS);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}
