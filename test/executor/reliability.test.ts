// Reliability of a running executor, end to end: Executor.launch with its real redis-server, worker
// processes and HTTP gateway, and a workflow whose stages log every run (test/fixtures/executor/
// reliability.mjs). A worker SIGKILLed mid-task, Redis restarted and crashed mid-run, a stage that
// throws and is retried, and 50 identical submissions at once: each case counts how often the stages
// really ran.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SubmissionFailed } from '../../src/executor/client.js';
import { Executor } from '../../src/executor/executor.js';
import { startTestRedis, skipWithoutRedis, type TestRedis } from './redis.js';
import { Processes, requireBuild, Runs, tempDir, WORKFLOW } from './reliability-harness.js';

describe.skipIf(skipWithoutRedis('the executor reliability tests'))('executor reliability', () => {
  let root: string;
  const procs = new Processes();
  let redis: TestRedis | undefined;

  beforeAll(() => {
    requireBuild();
    root = tempDir('run');
  });
  afterEach(async () => {
    await procs.stopAll();
    await redis?.stop();
    redis = undefined;
  });
  afterAll(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('re-runs the task of a worker SIGKILLed mid-task on another worker within the stall interval', async () => {
    const runs = new Runs(path.join(root, 'killed worker'));
    const lockDurationMs = 4_000;
    // The launch checks for stalled tasks every half lock duration.
    const stalledIntervalMs = lockDurationMs / 2;
    const ex = await procs.launch(path.join(root, 'x-killed-worker'), { workers: { hold: 2 }, lockDurationMs });
    expect(ex.localWorkers()).toEqual({ hold: 2, check: 1, finish: 1 });

    const id = await ex.submit(WORKFLOW, runs.input('a'));
    const first = await runs.waitFor('hold a start');
    process.kill(first.pid, 'SIGKILL');
    const killedAt = Date.now();

    const second = await runs.waitFor('hold a start', 2, 30_000);
    const took = Date.now() - killedAt;
    expect(second.pid).not.toBe(first.pid);
    // The lock runs out, and the next stalled check or the one after puts the task back.
    expect(took).toBeLessThan(lockDurationMs + 2 * stalledIntervalMs + 3_000);

    runs.open('open-a');
    expect(await ex.waitUntilComplete(id)).toEqual({ key: 'a', sum: 14 });
    expect(runs.of('hold a start').map((r) => r.pid)).toEqual([first.pid, second.pid]);
    expect(runs.of('hold a done').map((r) => r.pid)).toEqual([second.pid]);
    for (const i of [1, 2, 3]) expect(runs.count(`check a ${i} start`)).toBe(1);
    expect(runs.count('finish a start')).toBe(1);
  }, 120_000);

  it('goes on when Redis restarts mid-task, and when it crashes while a task finishes: nothing is lost', async () => {
    redis = await startTestRedis();
    const runs = new Runs(path.join(root, 'redis restart'));
    // The check stage is served over HTTP by a remote worker: the gateway's leases cross the restarts too.
    const ex = await procs.launch(path.join(root, 'x-redis'), { redis: redis.url, workers: { check: 0 } });
    expect(ex.info.startedRedis).toBe(false);
    const remote = procs.xpr(['worker', '--stage', 'check'], { env: { XPR_EXECUTOR_URL: ex.url, XPR_EXECUTOR_TOKEN: ex.token } });

    // A finished submission and its cache entries, before anything happens to Redis.
    runs.open('open-before');
    const before = await ex.submit(WORKFLOW, runs.input('before'));
    expect(await ex.waitUntilComplete(before)).toEqual({ key: 'before', sum: 14 });
    const cacheBefore = await ex.client.cacheRecords();
    expect(cacheBefore).toHaveLength(5); // hold, 3 × check, finish

    // Restarted (SIGTERM, then started on its data) while a task waits at its gate; a watcher
    // that follows the submission across the restart still sees it finish.
    const restarted = await ex.submit(WORKFLOW, runs.input('restart'));
    await runs.waitFor('hold restart start');
    const watching = ex.waitUntilComplete(restarted);
    await redis.restart();
    runs.open('open-restart');
    expect(await watching).toEqual({ key: 'restart', sum: 14 });

    // Crashed (SIGKILL) while the task runs; the task ends while Redis is away, and its result is
    // stored once Redis is back.
    const crashed = await ex.submit(WORKFLOW, runs.input('crash'));
    await runs.waitFor('hold crash start');
    redis.kill();
    runs.open('open-crash');
    await runs.waitFor('hold crash done');
    await redis.restart();
    expect(await ex.waitUntilComplete(crashed)).toEqual({ key: 'crash', sum: 14 });

    // Restarted while the remote worker holds a lease on a task: the lease survives it.
    runs.open('open-lease');
    const leased = await ex.submit(WORKFLOW, runs.input('lease', { n: 1, checkGate: true }));
    await runs.waitFor('check lease 1 start');
    await redis.restart();
    runs.open('open-lease-check');
    expect(await ex.waitUntilComplete(leased)).toEqual({ key: 'lease', sum: 1 });
    expect(runs.of('check lease 1 start').map((r) => r.pid)).toEqual([remote.pid]);

    // The gateway takes new submissions after it, and every earlier one is still there.
    runs.open('open-after');
    const after = await ex.submit(WORKFLOW, runs.input('after'));
    expect(await ex.waitUntilComplete(after)).toEqual({ key: 'after', sum: 14 });
    expect((await ex.get(before, { results: true })).result).toEqual({ key: 'before', sum: 14 });
    const listed = await ex.list();
    expect(listed.total).toBe(5);
    expect(listed.items.every((s) => s.status === 'success')).toBe(true);
    const cacheAfter = await ex.client.cacheRecords();
    expect(cacheAfter).toHaveLength(23); // 4 × 5, and 3 for the one-item submission
    expect(cacheAfter).toEqual(expect.arrayContaining(cacheBefore));
    // Each stage ran once per submission: the restarts made nothing run twice.
    for (const key of ['before', 'restart', 'crash', 'after']) {
      expect(runs.count(`hold ${key} start`)).toBe(1);
      expect(runs.count(`finish ${key} start`)).toBe(1);
      for (const i of [1, 2, 3]) expect(runs.of(`check ${key} ${i} start`).map((r) => r.pid)).toEqual([remote.pid]);
    }
    expect((await ex.client.health()).redis).toBe('ok');
  }, 180_000);

  it('errors a submission whose stage throws with {stage, type, message, stack}, runs no later stage, and resumes on retry', async () => {
    const runs = new Runs(path.join(root, 'throws'));
    const ex = await procs.launch(path.join(root, 'x-throws'));
    runs.open('open-e');
    runs.open('broken-e-2');

    const id = await ex.submit(WORKFLOW, runs.input('e'));
    const err = await ex.waitUntilComplete(id).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SubmissionFailed);
    expect((err as Error).message).toBe(`Submission ${id} failed in stage "check": RangeError: item 2 of e is broken`);
    const failed = await ex.get(id);
    expect(failed.status).toBe('errored');
    expect(failed.error).toMatchObject({ stage: 'check', type: 'RangeError', message: 'item 2 of e is broken' });
    expect(failed.error?.stack).toMatch(/^RangeError: item 2 of e is broken\n\s+at (Object\.)?check\b/);
    // The stage after it never started, and a stage's own error is not tried again.
    expect(runs.exists('finished-e')).toBe(false);
    expect(runs.count('finish e start')).toBe(0);
    expect(runs.count('check e 2 start')).toBe(1);
    expect(failed.stages.map((s) => [s.stage, s.status])).toEqual([['hold', 'success'], ['check', 'errored'], ['finish', 'waiting']]);

    // The cause fixed, retry resumes at the failed stage; what succeeded before is reused.
    fs.rmSync(path.join(runs.dir, 'broken-e-2'));
    const retried = await ex.retry(id);
    expect(['waiting', 'running', 'success']).toContain(retried.status);
    expect(await ex.waitUntilComplete(id)).toEqual({ key: 'e', sum: 14 });
    expect(runs.count('hold e start')).toBe(1);
    expect(runs.count('check e 2 start')).toBe(2);
    for (const i of [1, 2, 3]) expect(runs.count(`check e ${i} done`)).toBe(1);
    expect(runs.count('finish e start')).toBe(1);
    expect(runs.exists('finished-e')).toBe(true);
  }, 120_000);

  it('computes each stage once for 50 concurrent identical submissions', async () => {
    const runs = new Runs(path.join(root, 'fifty'));
    // Two workers per stage: a duplicated task would find a free worker to run on.
    const ex = await procs.launch(path.join(root, 'x-fifty'), { workers: { hold: 2, check: 2, finish: 2 } });
    const client = Executor.connect(ex.url, ex.token);
    const input = runs.input('c');
    const ids = await Promise.all(Array.from({ length: 50 }, () => client.submit(WORKFLOW, input)));
    expect(new Set(ids).size).toBe(50);
    await runs.waitFor('hold c start');
    runs.open('open-c');
    const results = await Promise.all(ids.map((id) => client.waitUntilComplete(id)));
    expect(results).toEqual(Array.from({ length: 50 }, () => ({ key: 'c', sum: 14 })));
    expect(runs.count('hold c start')).toBe(1);
    for (const i of [1, 2, 3]) expect(runs.count(`check c ${i} start`)).toBe(1);
    expect(runs.count('finish c start')).toBe(1);
    expect((await client.list({ status: 'success', limit: 100 })).total).toBe(50);
  }, 120_000);
});
