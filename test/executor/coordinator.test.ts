// The coordinator against a real Redis and real BullMQ workers. The workers here run the stage
// functions directly (no bundle), doing what an executor worker does: cache the result, then
// complete the job with the TaskOutcome; a stage's own error fails the job at once.
import os from 'node:os';
import { EventEmitter } from 'node:events';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sharedKey } from '../../src/executor/canonical.js';
import { Coordinator } from '../../src/executor/coordinator.js';
import { BULL_PREFIX, EVENTS_CHANNEL, queueName } from '../../src/executor/keys.js';
import { ExecutorStore } from '../../src/executor/store.js';
import { encodeTaskFailure } from '../../src/executor/task-runner.js';
import type { StageContext, Submission, SubmissionEvent, TaskData, TaskOutcome, Workflow } from '../../src/executor/types.js';
import { workflow, workflowRecord } from '../../src/executor/workflow.js';
import { decode, encode, serializeError } from '../../src/util/codec.js';
import { skipWithoutRedis, startTestRedis, type TestRedis } from './redis.js';

const CODE = 'a'.repeat(64);
const FINISHED = ['success', 'errored', 'cancelled'];

describe.skipIf(skipWithoutRedis('the coordinator tests'))('coordinator', () => {
  let redis: TestRedis;
  let coordinator: Coordinator;
  /** The workers' own connection: they outlive coordinators. */
  let workerStore: ExecutorStore;
  let workers: Worker[] = [];
  /** Runs of each stage function, by `<workflow>/<stage>`, and by `<workflow>/<stage>:<input JSON>`. */
  let runs = new Map<string, number>();
  /** Emits `<stage>` when a worker completes a task of that stage. */
  const completed = new EventEmitter();
  let wfSeq = 0;

  beforeAll(async () => {
    redis = await startTestRedis();
    coordinator = await Coordinator.start({ redis: redis.url, onError: (err) => console.error('coordinator:', err) });
    workerStore = ExecutorStore.connect(redis.url);
  });
  afterEach(async () => {
    await Promise.all(workers.map((w) => w.close()));
    workers = [];
    runs = new Map();
  });
  afterAll(async () => {
    await coordinator?.close();
    await workerStore?.close();
    await redis?.stop();
  });

  const count = (key: string): number => runs.get(key) ?? 0;

  /** A workflow with a fresh name (tests share one Redis), registered as the executor does. */
  async function register(base: string, stages: Parameters<typeof workflow>[1]): Promise<Workflow> {
    const wf = workflow(`${base}-${++wfSeq}`, stages);
    await coordinator.store.putWorkflow(workflowRecord(wf, CODE, base));
    return wf;
  }

  /** One BullMQ worker per stage of `wf`, as an executor worker process would run it. */
  async function serve(wf: Workflow, concurrency = 4): Promise<void> {
    for (const spec of wf.stages) {
      const w = new Worker<TaskData, TaskOutcome>(queueName(spec.stage), async (job) => {
        const data = job.data;
        runs.set(`${wf.name}/${spec.stage}`, count(`${wf.name}/${spec.stage}`) + 1);
        const inputKey = `${wf.name}/${spec.stage}:${JSON.stringify(data.input)}`;
        runs.set(inputKey, count(inputKey) + 1);
        let readInput = false;
        const ctx: StageContext = {
          get input() { readInput = true; return decode(data.submissionInput); },
          cores: 1, maxMemPerCore: undefined, stage: data.stage, taskId: job.id!, tempDir: os.tmpdir(),
        };
        let value: unknown;
        try {
          value = encode(await spec.run(decode(data.input), ctx));
        } catch (err) {
          throw new UnrecoverableError(encodeTaskFailure(serializeError(err)));
        }
        await workerStore.putCache(readInput ? job.id! : data.sharedKey, { value, stage: data.stage, at: Date.now() });
        return { value, readInput };
      }, { connection: { url: redis.url }, prefix: BULL_PREFIX, concurrency });
      w.on('error', () => {});
      w.on('completed', () => completed.emit(spec.stage));

      await w.waitUntilReady();
      workers.push(w);
    }
  }

  /** Resolves with the submission once it is finished: pushed by events, checked once at the start. */
  async function finished(id: string, timeoutMs = 30_000): Promise<Submission> {
    const sub = new Redis(redis.url);
    try {
      return await new Promise<Submission>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`submission ${id} did not finish in ${timeoutMs} ms`)), timeoutMs);
        const check = async (): Promise<void> => {
          const s = await coordinator.store.getSubmission(id, { results: true });
          if (s && FINISHED.includes(s.status)) {
            clearTimeout(timer);
            resolve(s);
          }
        };
        sub.on('message', (_channel: string, message: string) => {
          const e = JSON.parse(message) as SubmissionEvent;
          if (e.id === id && e.type === 'status' && FINISHED.includes(e.status)) check().catch(reject);
        });
        sub.subscribe(EVENTS_CHANNEL).then(check).catch(reject);
      });
    } finally {
      sub.disconnect();
    }
  }

  const words = async (text: unknown) => String(text).split(' ');
  const score = async (word: unknown) => String(word).length;
  const total = async (scores: unknown, ctx: StageContext) => ({ text: ctx.input, sum: (scores as number[]).reduce((a, b) => a + b, 0), scores });

  it('runs a 3-stage workflow with an each-stage, gathering results in order', async () => {
    const wf = await register('words', [
      { stage: 'split', run: words },
      { stage: 'score', run: score, each: true },
      { stage: 'total', run: total },
    ]);
    await serve(wf);
    const events: SubmissionEvent[] = [];
    const listener = new Redis(redis.url);
    listener.on('message', (_c: string, m: string) => events.push(JSON.parse(m) as SubmissionEvent));
    await listener.subscribe(EVENTS_CHANNEL);

    const id = await coordinator.submit(wf.name, 'the cat and the hat');
    expect(id).toMatch(/^xs_[a-z2-7]{12}$/);
    const sub = await finished(id);
    listener.disconnect();

    expect(sub.status).toBe('success');
    expect(decode(sub.result)).toEqual({ text: 'the cat and the hat', sum: 15, scores: [3, 3, 3, 3, 3] });
    expect(sub.stages).toEqual([
      { stage: 'split', total: 1, done: 1, status: 'success' },
      { stage: 'score', total: 4, done: 4, status: 'success' },
      { stage: 'total', total: 1, done: 1, status: 'success' },
    ]);
    // "the" twice is one task: 4 distinct words
    expect(count(`${wf.name}/score`)).toBe(4);
    const mine = events.filter((e) => e.id === id);
    expect(mine.filter((e) => e.type === 'stage' && e.status === 'success').map((e) => (e as { stage: string }).stage))
      .toEqual(['split', 'score', 'total']);
    expect(mine.at(-1)).toEqual({ type: 'status', id, status: 'success' });
    await coordinator.idle();
    expect(coordinator.inFlight).toBe(0);
  });

  it('computes each stage once for 50 concurrent identical submissions', async () => {
    const wf = await register('same', [
      { stage: 'split', run: words },
      { stage: 'score', run: score, each: true },
      { stage: 'total', run: total },
    ]);
    await serve(wf);
    const ids = await Promise.all(Array.from({ length: 50 }, () => coordinator.submit(wf.name, 'one two three')));
    expect(new Set(ids).size).toBe(50);
    const subs = await Promise.all(ids.map((id) => finished(id)));
    for (const s of subs) expect(decode(s.result)).toEqual({ text: 'one two three', sum: 11, scores: [3, 3, 5] });
    expect(count(`${wf.name}/split`)).toBe(1);
    expect(count(`${wf.name}/score`)).toBe(3);
    expect(count(`${wf.name}/total`)).toBe(1);
    const listed = await coordinator.store.listSubmissions({ status: 'success', limit: 1000 });
    expect(listed.items.map((s) => s.id)).toEqual(expect.arrayContaining(ids));
    await coordinator.idle();
    expect(coordinator.inFlight).toBe(0);
  });

  it('errors a submission at the stage that threw, skips later stages, and retry resumes with cached successes', async () => {
    let broken = true;
    const wf = await register('throws', [
      { stage: 'split', run: words },
      {
        stage: 'score', each: true,
        run: async (word: unknown) => {
          if (broken && word === 'bad') throw new TypeError(`cannot score "${String(word)}"`);
          return String(word).length;
        },
      },
      { stage: 'total', run: total },
    ]);
    await serve(wf);
    const id = await coordinator.submit(wf.name, 'good bad fine');
    const errored = await finished(id);

    expect(errored.status).toBe('errored');
    expect(errored.error).toMatchObject({ stage: 'score', type: 'TypeError', message: 'cannot score "bad"' });
    expect(errored.error?.stack).toMatch(/^TypeError: cannot score "bad"\n\s+at /);
    expect(errored.stages.map((s) => s.status)).toEqual(['success', 'errored', 'waiting']);
    expect(count(`${wf.name}/total`)).toBe(0);

    broken = false;
    const retried = await coordinator.retry(id);
    expect(retried?.status).toBe('running');
    const done = await finished(id);
    expect(done.status).toBe('success');
    expect(done.error).toBeUndefined();
    expect(decode(done.result)).toMatchObject({ sum: 11, scores: [4, 3, 4] });
    // The stage before and the elements that had succeeded were not run again; the failed one was.
    expect(count(`${wf.name}/split`)).toBe(1);
    expect(count(`${wf.name}/score:"good"`)).toBe(1);
    expect(count(`${wf.name}/score:"fine"`)).toBe(1);
    expect(count(`${wf.name}/score:"bad"`)).toBe(2);
    expect(count(`${wf.name}/total`)).toBe(1);
    await expect(coordinator.retry(id)).rejects.toThrow(/is success: only an errored or cancelled submission can be retried/);
  });

  it('never reuses a failed result: a new submission runs the failed task again', async () => {
    let failures = 1;
    const wf = await register('flaky', [
      {
        stage: 'once',
        run: async (x: unknown) => {
          if (failures-- > 0) throw new RangeError('first run fails');
          return `ok ${String(x)}`;
        },
      },
    ]);
    await serve(wf);
    const first = await finished(await coordinator.submit(wf.name, 7));
    expect(first.status).toBe('errored');
    expect(first.error).toMatchObject({ stage: 'once', type: 'RangeError', message: 'first run fails' });

    const second = await finished(await coordinator.submit(wf.name, 7));
    expect(second.status).toBe('success');
    expect(decode(second.result)).toBe('ok 7');
    expect(count(`${wf.name}/once`)).toBe(2);
    // The first stays errored: its failure is its own record.
    expect((await coordinator.store.getSubmission(first.id))?.status).toBe('errored');
  });

  it('loses nothing when the coordinator is closed mid-run and another one starts (recover)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let started!: () => void;
    const running = new Promise<void>((r) => { started = r; });
    const wf = await register('crash', [
      { stage: 'split', run: words },
      { stage: 'slow', each: true, run: async (w: unknown) => { started(); await gate; return String(w).toUpperCase(); } },
      { stage: 'join', run: async (xs: unknown) => (xs as string[]).join('-') },
    ]);
    await serve(wf);
    const id = await coordinator.submit(wf.name, 'x y z');
    await running;
    await coordinator.close();
    // The tasks finish while no coordinator listens: only what is in Redis tells the next one.
    let slowDone = 0;
    const allSlowDone = new Promise<void>((resolve) => completed.on('slow', () => { if (++slowDone === 3) resolve(); }));
    release();
    await allSlowDone;
    expect((await readSubmission(redis.url, id))?.status).toBe('running');

    coordinator = await Coordinator.start({ redis: redis.url, onError: (err) => console.error('coordinator:', err) });
    const sub = await finished(id);
    expect(sub.status).toBe('success');
    expect(decode(sub.result)).toBe('X-Y-Z');
    expect(count(`${wf.name}/slow`)).toBe(3);
  });

  it('carries on when Redis restarts mid-run', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let started!: () => void;
    const running = new Promise<void>((r) => { started = r; });
    const wf = await register('restart', [
      { stage: 'wait', run: async (x: unknown) => { started(); await gate; return (x as number) + 1; } },
      { stage: 'after', run: async (x: unknown) => (x as number) * 10 },
    ]);
    await serve(wf);
    const id = await coordinator.submit(wf.name, 1);
    await running;
    await redis.restart();
    release();
    const sub = await finished(id);
    expect(sub.status).toBe('success');
    expect(decode(sub.result)).toBe(20);
  });

  // A stage is entered 500 tasks at a time (ENTER_BATCH); these cross several batches.
  it('enters a 1,200-task stage batch by batch: cache hits from an earlier submission, duplicates once, results in order', async () => {
    const range = async (n: unknown) => Array.from({ length: Number(n) }, (_v, i) => i % 1100); // 1100..1199 repeat 0..99
    const wf = await register('wide', [
      { stage: 'range', run: range },
      { stage: 'square', each: true, run: async (x: unknown) => Number(x) * Number(x) },
    ]);
    await serve(wf, 8);
    const first = await finished(await coordinator.submit(wf.name, 700));
    expect(first.status).toBe('success');
    expect(count(`${wf.name}/square`)).toBe(700);

    const second = await finished(await coordinator.submit(wf.name, 1200), 60_000);
    expect(second.status).toBe('success');
    const want = Array.from({ length: 1200 }, (_v, i) => (i % 1100) ** 2);
    expect(decode(second.result)).toEqual(want);
    // 0..699 came from the cache (the first and second batches), 700..1099 ran once each, and the
    // repeats of 0..99 in the third batch are the same tasks as the first batch's.
    expect(count(`${wf.name}/square`)).toBe(1100);
    for (const x of [0, 499, 500, 699, 700, 1099]) expect(count(`${wf.name}/square:${x}`), `element ${x}`).toBe(1);
    expect(second.stages[1]).toMatchObject({ stage: 'square', status: 'success', done: 1100, total: 1100 });
  });

  it('retries a 1,200-task stage that failed in its third batch: only the failed task runs again', async () => {
    let broken = true;
    const wf = await register('wide-retry', [
      { stage: 'range', run: async (n: unknown) => Array.from({ length: Number(n) }, (_v, i) => i) },
      {
        stage: 'half', each: true,
        run: async (x: unknown) => {
          if (broken && x === 1150) throw new RangeError('1150 is not allowed yet');
          return Number(x) / 2;
        },
      },
    ]);
    await serve(wf, 8);
    const id = await coordinator.submit(wf.name, 1200);
    const errored = await finished(id, 60_000);
    expect(errored.status).toBe('errored');
    expect(errored.error).toMatchObject({ stage: 'half', type: 'RangeError', message: '1150 is not allowed yet' });
    // The other tasks run on after the failure; wait until all 1,199 have.
    for (let i = 0; count(`${wf.name}/half`) < 1200 && i < 300; i++) await new Promise((r) => setTimeout(r, 100));
    expect(count(`${wf.name}/half`)).toBe(1200);

    broken = false;
    await coordinator.retry(id);
    const done = await finished(id, 60_000);
    expect(done.status).toBe('success');
    expect(decode(done.result)).toEqual(Array.from({ length: 1200 }, (_v, i) => i / 2));
    expect(count(`${wf.name}/half:1150`)).toBe(2);
    expect(count(`${wf.name}/half`)).toBe(1201);
  });

  it('completes from the cache without running a worker', async () => {
    const wf = await register('cached', [
      { stage: 'double', run: async (x: unknown) => (x as number) * 2 },
      { stage: 'inc', run: async (x: unknown) => (x as number) + 1 },
    ]);
    const put = (stage: string, input: unknown, value: unknown) => coordinator.store.putCache(
      sharedKey({ workflow: wf.name, stage, codeHash: CODE, input: encode(input) }), { value: encode(value), stage, at: Date.now() });
    await put('double', 20, 40);
    await put('inc', 40, 41);
    // No worker serves these stages: only the cache can finish the submission.
    const sub = await finished(await coordinator.submit(wf.name, 20));
    expect(sub.status).toBe('success');
    expect(decode(sub.result)).toBe(41);
    for (const stage of ['double', 'inc']) {
      const queue = new Queue(queueName(stage), { connection: { url: redis.url }, prefix: BULL_PREFIX });
      const counts = await queue.getJobCounts();
      await queue.close();
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
    }
  });

  it('errors an each-stage whose input is not an array, naming both stages', async () => {
    const wf = await register('notarray', [
      { stage: 'count', run: async (s: unknown) => String(s).length },
      { stage: 'per', run: async (x: unknown) => x, each: true },
    ]);
    await serve(wf);
    const sub = await finished(await coordinator.submit(wf.name, 'abc'));
    expect(sub.status).toBe('errored');
    expect(sub.error).toMatchObject({
      stage: 'per', type: 'XprError',
      message: 'stage "per" runs on each element of the output of stage "count", which is a number, not an array',
    });
  });

  it('refuses an unknown workflow, naming the known ones', async () => {
    const wf = await register('known', [{ stage: 'k', run: async () => 1 }]);
    await expect(coordinator.submit('nope', 1)).rejects.toThrow(new RegExp(`Unknown workflow "nope" \\(known: .*${wf.name}`));
  });

  it('cancels a submission and takes its queued tasks off the queue', async () => {
    const wf = await register('cancel', [{ stage: 'never', run: async () => 1 }]);
    const id = await coordinator.submit(wf.name, 'nobody serves this');
    const queue = new Queue(queueName('never'), { connection: { url: redis.url }, prefix: BULL_PREFIX });
    await coordinator.advance(id); // its task is queued once this returns
    expect((await queue.getJobCounts('waiting')).waiting).toBe(1);
    const cancelled = await coordinator.cancel(id);
    expect(cancelled?.status).toBe('cancelled');
    expect((await queue.getJobCounts('waiting')).waiting).toBe(0);
    await queue.close();
    expect((await coordinator.store.getSubmission(id))?.status).toBe('cancelled');
    expect(await coordinator.cancel('xs_unknownunkno')).toBeUndefined();
  });
});

/** The submission as stored, read with a connection of its own (no coordinator running). */
async function readSubmission(url: string, id: string): Promise<Submission | undefined> {
  const r = new Redis(url);
  try {
    const json = await r.hget(`xpr:sub:${id}`, 'json');
    return json ? (JSON.parse(json) as Submission) : undefined;
  } finally {
    r.disconnect();
  }
}
