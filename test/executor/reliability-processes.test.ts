// Reliability across processes, with `xpr` itself as the child process a user would run: the whole
// executor SIGKILLed and launched again on its directory, a launch on a busy port, `xpr worker`
// pointed at the wrong place or with the wrong token, and a remote worker that serves a stage over
// HTTP only.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExecutorClient } from '../../src/executor/client.js';
import { readState } from '../../src/executor/directory.js';
import { alive } from '../../src/util/processes.js';
import { ping } from '../../src/executor/redis-server.js';
import { freePort, skipWithoutRedis } from './redis.js';
import { FIXTURE, Processes, requireBuild, Runs, STACK_FRAME, tempDir, until, WORKFLOW } from './reliability-harness.js';

describe.skipIf(skipWithoutRedis('the executor reliability tests with processes'))('executor reliability across processes', () => {
  let root: string;
  const procs = new Processes();

  beforeAll(() => {
    requireBuild();
    root = tempDir('proc');
  });
  afterEach(async () => {
    await procs.stopAll();
  });
  afterAll(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('loses nothing when the whole executor is SIGKILLed, and re-runs its interrupted task when launched again', async () => {
    const directory = path.join(root, 'x-crash');
    const runs = new Runs(path.join(root, 'crash'));
    procs.track(directory);
    // Its own process group, as a launch from a shell has: the kill takes the whole group.
    const launch = () => procs.xpr(['executor', 'launch', '--workflow', FIXTURE, '--directory', directory, '--port', '0', '--grace', '1'], { detached: true });

    const first = launch();
    await first.waitFor(/Ctrl-C stops it/);
    const state = readState(directory)!;
    const client = ExecutorClient.connect(state.url, state.token);
    runs.open('open-done');
    const done = await client.submit(WORKFLOW, runs.input('done'));
    expect(await client.waitUntilComplete(done)).toEqual({ key: 'done', sum: 14 });
    const cache = await client.cacheRecords();
    expect(cache).toHaveLength(5);
    // One task running (held at its gate) and one accepted behind it: one hold worker only.
    const interrupted = await client.submit(WORKFLOW, runs.input('mid'));
    const firstRun = await runs.waitFor('hold mid start');
    const queued = await client.submit(WORKFLOW, runs.input('queued'));
    // Accepted, but its task cannot start: the one hold worker is busy.
    expect(['waiting', 'running']).toContain((await client.get(queued)).status);
    expect(runs.count('hold queued start')).toBe(0);

    process.kill(-first.pid, 'SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    expect(await ping(state.redisUrl)).toBe('ok');

    const second = launch();
    await second.waitFor(/Ctrl-C stops it/);
    const relaunched = readState(directory)!;
    expect(relaunched.token).toBe(state.token);
    expect(relaunched.redisUrl).toBe(state.redisUrl);
    const again = ExecutorClient.connect(relaunched.url, relaunched.token);
    // The task handed back goes behind the one that waited: let that one through first.
    runs.open('open-queued');
    // The interrupted task runs again on a worker of the new launch.
    const rerun = await runs.waitFor('hold mid start', 2);
    expect(rerun.pid).not.toBe(firstRun.pid);
    expect(relaunched.workerPids).toContain(rerun.pid);
    // The old worker, told to stop by the new launch, handed its task back and is gone.
    await until(() => !alive(firstRun.pid), `the old worker ${firstRun.pid} to exit`, 20_000);
    runs.open('open-mid');
    expect(await again.waitUntilComplete(interrupted)).toEqual({ key: 'mid', sum: 14 });
    expect(await again.waitUntilComplete(queued)).toEqual({ key: 'queued', sum: 14 });

    // Every accepted submission, finished result and cache entry is still there.
    expect((await again.get(done, { results: true })).result).toEqual({ key: 'done', sum: 14 });
    const listed = await again.list();
    expect(listed.items.map((s) => s.id).sort()).toEqual([done, interrupted, queued].sort());
    const cacheNow = await again.cacheRecords();
    expect(cacheNow).toEqual(expect.arrayContaining(cache));
    expect(cacheNow).toHaveLength(15);
    expect(runs.count('hold done start')).toBe(1);
    expect(runs.count('hold mid start')).toBe(2);
    expect(runs.of('hold mid done').map((r) => r.pid)).toEqual([rerun.pid]);
    expect(runs.count('hold queued start')).toBe(1);

    // Ctrl-C's SIGTERM drains and stops it, Redis included.
    process.kill(second.pid, 'SIGTERM');
    expect(await second.exited).toBe(0);
    expect(await ping(state.redisUrl)).toBe('down');
  }, 180_000);

  it('fails a launch on a busy port at once, naming the port, having started nothing', async () => {
    const port = await freePort();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    const directory = path.join(root, 'x-busy');
    try {
      const started = Date.now();
      const x = procs.xpr(['executor', 'launch', '--workflow', FIXTURE, '--directory', directory, '--port', String(port)]);
      const code = await x.exited;
      expect(code).not.toBe(0);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(x.stderr).toContain(`Port ${port} on 127.0.0.1 is already in use`);
      expect(x.stderr).toContain('--port');
      expect(x.stderr).not.toMatch(STACK_FRAME);
      expect(fs.existsSync(directory)).toBe(false);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  }, 60_000);

  describe('with an executor that has no local worker for one stage', () => {
    it('`xpr worker` with a wrong address, a wrong token or none fails clearly, naming the variable', async () => {
      const ex = await procs.launch(path.join(root, 'x-wrong'), { workers: { check: 0 } });
      const nobody = `http://127.0.0.1:${await freePort()}`;
      const cases = [
        { env: { XPR_EXECUTOR_URL: nobody, XPR_EXECUTOR_TOKEN: ex.token }, says: [`Cannot reach the executor at ${nobody} (XPR_EXECUTOR_URL)`, 'ECONNREFUSED'] },
        { env: { XPR_EXECUTOR_URL: ex.url, XPR_EXECUTOR_TOKEN: 'not-the-token' }, says: [`The token in XPR_EXECUTOR_TOKEN was refused by ${ex.url}`] },
        { env: { XPR_EXECUTOR_URL: 'host:8000', XPR_EXECUTOR_TOKEN: ex.token }, says: ['XPR_EXECUTOR_URL'] },
        { env: {}, says: ['XPR_EXECUTOR_URL is not set'] },
        { env: { XPR_EXECUTOR_URL: ex.url }, says: ['XPR_EXECUTOR_TOKEN is not set'] },
      ];
      for (const c of cases) {
        const x = procs.xpr(['worker', '--stage', 'check'], { env: c.env });
        const code = await x.exited;
        expect(code, x.stderr).not.toBe(0);
        expect(typeof code).toBe('number');
        for (const s of c.says) expect(x.stderr).toContain(s);
        expect(x.stderr).not.toMatch(STACK_FRAME);
      }
    }, 120_000);

    it('a remote `xpr worker` with only XPR_EXECUTOR_URL and XPR_EXECUTOR_TOKEN serves the stage through the gateway', async () => {
      const runs = new Runs(path.join(root, 'remote'));
      const ex = await procs.launch(path.join(root, 'x-remote'), { workers: { check: 0 } });
      expect(ex.localWorkers()['check'] ?? 0).toBe(0);
      runs.open('open-r');
      const id = await ex.submit(WORKFLOW, runs.input('r'));
      // Its check tasks wait: nothing serves that stage yet.
      await until(async () => (await ex.get(id)).stages[1]?.total === 3, 'the check stage to be queued');

      const worker = procs.xpr(['worker', '--stage', 'check'], { env: { XPR_EXECUTOR_URL: ex.url, XPR_EXECUTOR_TOKEN: ex.token } });
      expect(await ex.waitUntilComplete(id)).toEqual({ key: 'r', sum: 14 });
      for (const i of [1, 2, 3]) expect(runs.of(`check r ${i} done`).map((r) => r.pid)).toEqual([worker.pid]);
      expect((await ex.client.health()).workers['check']).toBe(1);

      // SIGTERM: it stops leasing and says what it did.
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
      expect(worker.stdout + worker.stderr).toMatch(/3 task\(s\) run, 0 failed/);
    }, 120_000);

    it('a remote worker keeps its lease on a task longer than a short lock duration', async () => {
      const runs = new Runs(path.join(root, 'long task'));
      const lockDurationMs = 3_000;
      const ex = await procs.launch(path.join(root, 'x-long'), { workers: { check: 0 }, lockDurationMs });
      runs.open('open-l');
      const id = await ex.submit(WORKFLOW, runs.input('l', { n: 1, checkGate: true }));
      const worker = procs.xpr(['worker', '--stage', 'check'], { env: { XPR_EXECUTOR_URL: ex.url, XPR_EXECUTOR_TOKEN: ex.token } });
      await runs.waitFor('check l 1 start');
      // The task takes three lock durations: only heartbeats keep it leased that long.
      await new Promise((r) => setTimeout(r, 3 * lockDurationMs));
      runs.open('open-l-check');
      expect(await ex.waitUntilComplete(id)).toEqual({ key: 'l', sum: 1 });
      expect(runs.of('check l 1 start').map((r) => r.pid)).toEqual([worker.pid]);
      expect(worker.stderr).not.toContain('was lost');
    }, 120_000);
  });
});
