// Local worker processes (`node dist/src/executor/worker-main.js`) on a real Redis with real
// BullMQ queues: a task run and cached before it completes, a stage error failing at once, a
// transient error retried, SIGTERM draining within the grace (or handing the task back), and a
// SIGKILLed worker's task taken over by another through BullMQ's stalled check.
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue, type Job, type QueueEvents } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnLocalWorker } from '../../src/executor/local-worker.js';
import { BULL_PREFIX, keys, queueName } from '../../src/executor/keys.js';
import { followQueueEvents } from '../../src/executor/queue-events.js';
import { ExecutorStore } from '../../src/executor/store.js';
import { decodeTaskFailure } from '../../src/executor/task-runner.js';
import type { LocalWorkerSettings, TaskData, TaskOutcome } from '../../src/executor/types.js';
import { bundleModule, type CodeBundle } from '../../src/job/code.js';
import { encode } from '../../src/util/codec.js';
import { skipWithoutRedis, startTestRedis, type TestRedis } from './redis.js';

const STAGES = path.resolve('test/fixtures/executor/stages.mjs');

interface Running {
  child: ChildProcess;
  /** stderr lines so far. */
  lines: string[];
  exited: Promise<number | null>;
}

describe.skipIf(skipWithoutRedis('the local worker tests'))('local worker processes', () => {
  let redis: TestRedis;
  let store: ExecutorStore;
  let bundle: CodeBundle;
  let tmp: string;
  const queues = new Map<string, { queue: Queue<TaskData, TaskOutcome>; events: QueueEvents }>();
  const workers: Running[] = [];

  beforeAll(async () => {
    redis = await startTestRedis();
    store = ExecutorStore.connect(redis.url);
    bundle = await bundleModule(STAGES);
    await store.putCode(bundle.hash, bundle.code);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-worker-test-'));
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) {
      if (w.child.exitCode === null && w.child.signalCode === null) {
        w.child.kill('SIGKILL');
        await w.exited;
      }
    }
  });
  afterAll(async () => {
    for (const { queue, events } of queues.values()) {
      await events.close();
      await queue.close();
    }
    await store?.close();
    await redis?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function stageQueue(stage: string): Promise<{ queue: Queue<TaskData, TaskOutcome>; events: QueueEvents }> {
    let q = queues.get(stage);
    if (!q) {
      const connection = { url: redis.url };
      q = {
        queue: new Queue<TaskData, TaskOutcome>(queueName(stage), { connection, prefix: BULL_PREFIX }),
        // From the stream's end: a task that finishes before a plain QueueEvents' first read is heard of.
        events: await followQueueEvents(store.redis, queueName(stage), { connection, prefix: BULL_PREFIX }),
      };
      await q.events.waitUntilReady();
      queues.set(stage, q);
    }
    return q;
  }

  /** A task as the coordinator queues it: job id = task id, 3 attempts with backoff. */
  async function addTask(stage: string, input: unknown, codeHash = bundle.hash): Promise<Job<TaskData, TaskOutcome>> {
    const { queue } = await stageQueue(stage);
    const taskId = randomBytes(32).toString('hex');
    const data: TaskData = {
      workflow: 'demo', stage, stageIndex: 0, codeHash,
      input: encode(input), submissionInput: encode({ mol: 'CCO' }), sharedKey: randomBytes(32).toString('hex'),
    };
    return queue.add('task', data, { jobId: taskId, attempts: 3, backoff: { type: 'fixed', delay: 1000 }, removeOnFail: false });
  }

  /** A worker process; resolves once it has logged that it takes tasks. */
  async function startWorker(stage: string, extra: Partial<LocalWorkerSettings> = {}): Promise<Running> {
    const settings: LocalWorkerSettings = { redisUrl: redis.url, stage, cores: 'auto', codeDir: path.join(tmp, 'code'), ...extra };
    const child = spawnLocalWorker(settings, { stdio: ['ignore', 'ignore', 'pipe'] });
    const lines: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const w: Running = { child, lines, exited };
    workers.push(w);
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      child.stderr!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const parts = buffered.split('\n');
        buffered = parts.pop()!;
        lines.push(...parts);
        if (parts.some((l) => l.includes(`: stage ${stage}, `))) resolve();
      });
      void exited.then((code) => reject(new Error(`worker exited (${code}) before it was ready:\n${lines.join('\n')}`)));
    });
    return w;
  }

  /** Resolves once the `slow` stage has started in process `pid`. */
  async function startedIn(dir: string, pid: number): Promise<void> {
    const marker = path.join(dir, `started-${pid}`);
    while (!fs.existsSync(marker)) await new Promise((r) => setTimeout(r, 50));
  }

  it('runs a task, caches its result under the shared key before completing, and logs its cores', async () => {
    const w = await startWorker('double');
    expect(w.lines.join('\n')).toMatch(new RegExp(`^xpr worker ${w.child.pid}: stage double, \\d+ cores? \\(affinity \\d+ CPUs`, 'm'));
    const job = await addTask('double', 21);
    const { events } = await stageQueue('double');
    // The cache is read the moment BullMQ says completed: the entry must already be there.
    const cached = new Promise((resolve) => {
      events.on('completed', ({ jobId }) => { if (jobId === job.id) resolve(store.getCache(job.data.sharedKey)); });
    });
    expect(await job.waitUntilFinished(events)).toEqual({ value: 42, readInput: false });
    expect(await cached).toMatchObject({ value: 42, stage: 'double' });
    expect(await store.getCache(job.id!)).toBeUndefined();
  });

  it('caches a result that read ctx.input under the task id, and gives the stage its cores and memory', async () => {
    await startWorker('describe', { cores: 2, maxMem: 3000 });
    const job = await addTask('describe', 'x');
    const outcome = await job.waitUntilFinished((await stageQueue('describe')).events);
    expect(outcome.readInput).toBe(true);
    expect(outcome.value).toMatchObject({ x: 'x', submission: { mol: 'CCO' }, cores: 2, maxMemPerCore: 1500, stage: 'describe', taskId: job.id });
    expect(await store.getCache(job.id!)).toMatchObject({ stage: 'describe' });
    expect(await store.getCache(job.data.sharedKey)).toBeUndefined();
  });

  it('fails a task whose stage throws at once, with its type, message and stack, and caches nothing', async () => {
    await startWorker('fails');
    const job = await addTask('fails', 42);
    const { queue, events } = await stageQueue('fails');
    const reason = await job.waitUntilFinished(events).then(() => 'completed', (err: Error) => err.message);
    const failed = (await queue.getJob(job.id!))!;
    expect(await failed.getState()).toBe('failed');
    // One attempt of the three: running it again would give the same error.
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toBe(reason);
    const error = decodeTaskFailure(reason);
    expect(error).toMatchObject({ name: 'RangeError', message: 'value out of range: 42' });
    expect(error.stack).toMatch(/^RangeError: value out of range: 42\n\s+at /);
    expect(await store.getCache(job.data.sharedKey)).toBeUndefined();
    expect(await store.getCache(job.id!)).toBeUndefined();
  });

  it('retries a task whose code cannot be had (a transient error) and completes it once the code is there', async () => {
    await startWorker('double');
    const other = await bundleModule(path.resolve('test/fixtures/executor/stages-copy.mjs'));
    expect(other.hash).not.toBe(bundle.hash);
    const { events } = await stageQueue('double');
    const job = await addTask('double', 4, other.hash);
    const delayed = new Promise<void>((resolve) => events.on('delayed', ({ jobId }) => { if (jobId === job.id) resolve(); }));
    await delayed;
    await store.putCode(other.hash, other.code);
    expect(await job.waitUntilFinished(events)).toEqual({ value: 8, readInput: false });
    const done = (await (await stageQueue('double')).queue.getJob(job.id!))!;
    expect(done.attemptsMade).toBeGreaterThanOrEqual(2);
  });

  it('reconnects after Redis restarts and goes on taking tasks', async () => {
    const w = await startWorker('double');
    await redis.restart();
    const job = await addTask('double', 50);
    expect(await job.waitUntilFinished((await stageQueue('double')).events)).toEqual({ value: 100, readInput: false });
    expect(await store.getCache(job.data.sharedKey)).toMatchObject({ value: 100 });
    expect(w.child.exitCode).toBeNull();
  });

  it('on SIGTERM finishes the running task, takes no other, and exits 0', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'term-'));
    const w = await startWorker('slow', { graceMs: 20_000 });
    const { queue, events } = await stageQueue('slow');
    const first = await addTask('slow', { dir, ms: 1500, value: 'first' });
    await startedIn(dir, w.child.pid!);
    w.child.kill('SIGTERM');
    const second = await addTask('slow', { dir, ms: 10, value: 'second' });
    expect(await first.waitUntilFinished(events)).toEqual({ value: 'first', readInput: false });
    expect(await w.exited).toBe(0);
    expect(await (await queue.getJob(second.id!))!.getState()).toBe('waiting');
    await queue.remove(second.id!);
  });

  it('on SIGTERM with a task longer than the grace, hands it back to the queue at once and exits 0', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'grace-'));
    const w = await startWorker('slow', { graceMs: 300 });
    const { queue, events } = await stageQueue('slow');
    const job = await addTask('slow', { dir, ms: 60_000, value: 'long' });
    await startedIn(dir, w.child.pid!);
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(w.lines.join('\n')).toContain('its task went back to the queue');
    // Back in the queue right away, not after its lock expires (30 s by default).
    expect(await (await queue.getJob(job.id!))!.getState()).toBe('waiting');
    await job.updateData({ ...job.data, input: encode({ dir, ms: 10, value: 'long' }) });
    await startWorker('slow');
    expect(await job.waitUntilFinished(events)).toEqual({ value: 'long', readInput: false });
  });

  it('a SIGKILLed worker\'s task is run again by another worker after the stalled check', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'kill-'));
    const fast = { lockDurationMs: 1500, stalledIntervalMs: 500 };
    const a = await startWorker('slow-kill', fast);
    const { events } = await stageQueue('slow-kill');
    const job = await addTask('slow-kill', { dir, ms: 4000, value: 'survived' });
    await startedIn(dir, a.child.pid!);
    const b = await startWorker('slow-kill', fast);
    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await job.waitUntilFinished(events)).toEqual({ value: 'survived', readInput: false });
    expect(fs.readdirSync(dir).sort()).toEqual([`started-${a.child.pid}`, `started-${b.child.pid}`].sort());
    // Lock expiry + one stalled check + the task itself, with room for a busy machine.
    expect(Date.now() - killedAt).toBeLessThan(15_000);
  });
});
