// The remote worker over real HTTP, against a small server that speaks the gateway's worker
// protocol: leases, heartbeats while a task runs, the outcome or the error reported, the time
// limit, a gateway that goes away and comes back, and errors that name the variables to fix.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { XprError } from '../../src/errors.js';
import { runRemoteWorker, type RemoteWorkerOptions } from '../../src/executor/remote-worker.js';
import type { TaskData } from '../../src/executor/types.js';
import { bundleModule, type CodeBundle } from '../../src/job/code.js';
import { decode, encode } from '../../src/util/codec.js';
import { freePort } from './redis.js';
import { startFakeGateway, type FakeGateway } from './fake-gateway.js';

const STAGES = path.resolve('test/fixtures/executor/stages.mjs');

let bundle: CodeBundle;
let codeDir: string;
let gw: FakeGateway;
let lines: string[];

beforeAll(async () => { bundle = await bundleModule(STAGES); });
beforeEach(async () => {
  codeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-remote-code-'));
  gw = await startFakeGateway();
  gw.code.set(bundle.hash, bundle.code);
  lines = [];
});
afterEach(async () => {
  await gw.close();
  fs.rmSync(codeDir, { recursive: true, force: true });
});

function task(stage: string, input: unknown, codeHash = bundle.hash): TaskData {
  return { workflow: 'demo', stage, stageIndex: 0, codeHash, input: encode(input), submissionInput: encode('sub'), sharedKey: `sk-${stage}` };
}

function options(extra: Partial<RemoteWorkerOptions> = {}): RemoteWorkerOptions {
  return { url: gw.url, token: gw.token, stage: 'slow', cores: 2, codeDir, log: (l) => lines.push(l), ...extra };
}

describe('runRemoteWorker', () => {
  it('leases a task, sends heartbeats while it runs, completes it, and stops leasing at its time limit', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-slow-'));
    gw.add('task-1', task('slow', { dir, ms: 700, value: 'done' }));
    const started = Date.now();
    const summary = await runRemoteWorker(options({ stopAfterMs: 1500, heartbeatMs: 100, maxMem: 4000 }));
    expect(summary).toMatchObject({ tasks: 1, failed: 0, stopped: 'time', cores: 2 });

    const lease = gw.requests.find((r) => r.path === '/api/v1/workers/lease')!;
    expect(lease.body).toEqual({ stage: 'slow', workerId: summary.workerId, cores: 2 });
    const complete = await gw.waitFor('/api/v1/workers/complete');
    expect(complete.body).toEqual({
      stage: 'slow', taskId: 'task-1', leaseToken: 'lease-1', workerId: summary.workerId, outcome: { value: 'done', readInput: false },
    });
    const beats = gw.requests.filter((r) => r.path === '/api/v1/workers/heartbeat');
    expect(beats.length).toBeGreaterThanOrEqual(3);
    expect(beats.every((b) => b.body.taskId === 'task-1' && b.body.leaseToken === 'lease-1' && b.body.workerId === summary.workerId)).toBe(true);
    expect(beats.every((b) => b.at <= complete.at)).toBe(true);
    // No lease is asked for once the time is up.
    const lastLease = gw.requests.filter((r) => r.path === '/api/v1/workers/lease').at(-1)!;
    expect(lastLease.at).toBeLessThan(started + 1500);
    expect(lines[0]).toMatch(/^xpr worker .*: stage slow, 2 cores \(as given\), executor http:\/\/127\.0\.0\.1:\d+$/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gives the stage its context (cores, memory per core) and reports a read of ctx.input', async () => {
    gw.add('task-2', task('describe', 7));
    await runRemoteWorker(options({ stage: 'describe', stopAfterMs: 400, maxMem: 4000 }));
    const complete = await gw.waitFor('/api/v1/workers/complete');
    const outcome = complete.body.outcome as { value: unknown; readInput: boolean };
    expect(outcome.readInput).toBe(true);
    expect(decode(outcome.value)).toEqual({ x: 7, submission: 'sub', cores: 2, maxMemPerCore: 2000, stage: 'describe', taskId: 'task-2' });
  });

  it('reports a stage that throws as a failure that is not transient, with its type, message and stack', async () => {
    gw.add('task-3', task('fails', 42));
    const summary = await runRemoteWorker(options({ stage: 'fails', stopAfterMs: 400 }));
    expect(summary).toMatchObject({ tasks: 1, failed: 1 });
    const fail = await gw.waitFor('/api/v1/workers/fail');
    expect(fail.body).toMatchObject({ stage: 'fails', taskId: 'task-3', leaseToken: 'lease-1', transient: false });
    const error = fail.body.error as { name: string; message: string; stack: string };
    expect(error).toMatchObject({ name: 'RangeError', message: 'value out of range: 42' });
    expect(error.stack).toMatch(/^RangeError: value out of range: 42\n\s+at /);
  });

  it('reports code it could not get as a transient failure (the task is worth another attempt)', async () => {
    gw.add('task-4', task('double', 1, 'a'.repeat(64)));
    await runRemoteWorker(options({ stage: 'double', stopAfterMs: 400 }));
    const fail = await gw.waitFor('/api/v1/workers/fail');
    expect(fail.body).toMatchObject({ taskId: 'task-4', transient: true });
    expect((fail.body.error as { message: string }).message).toContain('answered 404 to GET /api/v1/code/aaaa');
    expect((fail.body.error as { message: string }).message).toMatch(/: no such code$/);
  });

  it('stops leasing when its signal aborts, even during a lease that waits', async () => {
    const ac = new AbortController();
    const run = runRemoteWorker(options({ signal: ac.signal }));
    await gw.waitFor('/api/v1/workers/lease');
    ac.abort();
    expect(await run).toMatchObject({ tasks: 0, stopped: 'signal' });
  });

  it('waits out a gateway restart once it has reached it, and goes on with the next task', async () => {
    const ac = new AbortController();
    const run = runRemoteWorker(options({ stage: 'double', signal: ac.signal }));
    gw.add('before', task('double', 1));
    await gw.waitFor('/api/v1/workers/complete', (r) => r.body.taskId === 'before');
    await gw.close();
    const down = Date.now();
    // Down long enough for the worker to meet refused connections and retry.
    await new Promise((r) => setTimeout(r, 1500));
    gw.add('after', task('double', 5));
    await gw.listen();
    const after = await gw.waitFor('/api/v1/workers/complete', (r) => r.body.taskId === 'after');
    expect(after.body.outcome).toEqual({ value: 10, readInput: false });
    expect(after.at - down).toBeGreaterThanOrEqual(1500);
    ac.abort();
    expect(await run).toMatchObject({ tasks: 2, failed: 0 });
  });
});

describe('runRemoteWorker errors name XPR_EXECUTOR_URL and XPR_EXECUTOR_TOKEN', () => {
  it('a refused token', async () => {
    const err = await runRemoteWorker(options({ token: 'wrong' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XprError);
    expect((err as Error).message).toBe(`The token in XPR_EXECUTOR_TOKEN was refused by ${gw.url}`);
  });

  it('an empty token', async () => {
    await expect(runRemoteWorker(options({ token: '' }))).rejects.toThrow(/^XPR_EXECUTOR_TOKEN is empty/);
  });

  it('an address where nothing listens fails at once, naming the address and the variable', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const err = await runRemoteWorker(options({ url: `http://127.0.0.1:${port}/` })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XprError);
    expect((err as Error).message).toMatch(new RegExp(`^Cannot reach the executor at http://127\\.0\\.0\\.1:${port} \\(XPR_EXECUTOR_URL\\): connect ECONNREFUSED`));
    expect((err as XprError).hint).toContain('XPR_EXECUTOR_URL');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('something that is not a URL', async () => {
    await expect(runRemoteWorker(options({ url: 'host:8000' }))).rejects.toThrow(/^XPR_EXECUTOR_URL must be an http:\/\/ or https:\/\/ URL/);
    await expect(runRemoteWorker(options({ url: 'not a url' }))).rejects.toThrow('XPR_EXECUTOR_URL is not a URL: "not a url"');
  });

  it('a server that is not an executor', async () => {
    const err = await runRemoteWorker(options({ url: `${gw.url}/elsewhere` })).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`${gw.url}/elsewhere (XPR_EXECUTOR_URL) answered 404 to POST /api/v1/workers/lease: is it an xpr executor?`);
  });
});

describe('the remote worker module', () => {
  let outDir: string;
  beforeAll(() => { outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-bundle-')); });
  afterAll(() => { fs.rmSync(outDir, { recursive: true, force: true }); });

  it('bundles into a batch job with no npm package: node builtins, fetch and xpr\'s pure modules', async () => {
    const result = await build({
      entryPoints: [path.resolve('src/executor/remote-worker.ts')],
      bundle: true, platform: 'node', format: 'esm', write: false, metafile: true, logLevel: 'silent',
      outfile: path.join(outDir, 'worker.mjs'),
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs).toContain('src/executor/task-runner.ts');
    expect(inputs.filter((f) => f.includes('node_modules'))).toEqual([]);
    const external = Object.values(result.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
    expect(external.filter((p) => !p.startsWith('node:'))).toEqual([]);
  });
});
