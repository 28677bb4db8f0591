// Executor.launch as a user runs it: a workflow module in a project that depends on xpr, a directory
// the executor makes, a redis-server it starts there itself, real worker processes and real HTTP.
// Then a relaunch on the same directory (data and token kept) and a launch on a busy port.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XprError } from '../../src/errors.js';
import { ExecutorClient } from '../../src/executor/client.js';
import { readState } from '../../src/executor/directory.js';
import { alive } from '../../src/util/processes.js';
import { Executor } from '../../src/executor/executor.js';
import { ping } from '../../src/executor/redis-server.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { stopLeftovers } from './leftovers.js';
import { freePort, skipWithoutRedis } from './redis.js';

const WORKFLOW = `
import { workflow } from 'xpr';

export function split(n) {
  return Array.from({ length: n }, (_, i) => i + 1);
}
export function square(x, ctx) {
  return { x, sq: x * x, cores: ctx.cores };
}
export function total(items, ctx) {
  return { of: ctx.input, sum: items.reduce((a, b) => a + b.sq, 0), cores: items.map((i) => i.cores) };
}
export const squares = workflow('squares', [
  { stage: 'split', run: split },
  { stage: 'square', run: square, each: true },
  { stage: 'total', run: total },
]);
`;

describe.skipIf(skipWithoutRedis('the executor launch tests'))('Executor.launch', () => {
  let root: string;
  let project: string;
  let directory: string;
  const lines: string[] = [];
  const log = (line: string): void => { lines.push(line); };

  beforeAll(() => {
    if (!fs.existsSync(path.join(PACKAGE_ROOT, 'dist/src/executor/worker-main.js'))) {
      throw new Error('dist/ is missing or old: run `npm run build` before the executor tests');
    }
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr exec launch '));
    // A project that depends on xpr, as a user's would: its node_modules/xpr is this package.
    project = path.join(root, 'my project');
    fs.mkdirSync(path.join(project, 'node_modules'), { recursive: true });
    fs.symlinkSync(PACKAGE_ROOT, path.join(project, 'node_modules', 'xpr'), 'dir');
    fs.writeFileSync(path.join(project, 'workflow.mjs'), WORKFLOW);
    directory = path.join(project, 'xpr-executor');
  });

  afterAll(async () => {
    if (!root) return;
    for (const dir of [directory, path.join(project, 'crashed')]) await stopLeftovers(dir);
    fs.rmSync(root, { recursive: true, force: true });
  });

  const launch = (extra: { port?: number } = {}): Promise<Executor> => Executor.launch({
    directory, workflowModule: path.join(project, 'workflow.mjs'), workers: { square: 2 }, cores: 'square=2',
    port: extra.port ?? 0, graceMs: 2_000, lockDurationMs: 5_000, env: {}, cwd: project, log,
  });

  let firstId = '';
  let firstToken = '';
  let redisUrl = '';

  it('starts Redis, workers and the gateway in a new directory, and runs a submission to its result', async () => {
    const ex = await launch();
    try {
      expect(ex.info.startedRedis).toBe(true);
      expect(ex.localWorkers()).toEqual({ split: 1, square: 2, total: 1 });
      // The directory and its secrets are the owner's only.
      expect(fs.statSync(directory).mode & 0o777).toBe(0o700);
      expect(fs.statSync(path.join(directory, 'executor.json')).mode & 0o777).toBe(0o600);
      const state = readState(directory);
      expect(state?.token).toBe(ex.token);
      expect(state?.url).toBe(ex.url);
      expect(state?.redisUrl).toMatch(/^redis:\/\/:[^@]+@127\.0\.0\.1:\d+$/);
      redisUrl = state?.redisUrl ?? '';
      expect(lines.join('\n')).toContain(`XPR_EXECUTOR_URL=${ex.info.remoteUrl} XPR_EXECUTOR_TOKEN=${ex.token} xpr worker --stage`);

      firstId = await ex.submit('squares', 3);
      const result = await ex.waitUntilComplete(firstId);
      // Each square ran in a worker with --cores square=2; the last stage saw the submission's input.
      expect(result).toEqual({ of: 3, sum: 14, cores: [2, 2, 2] });
      firstToken = ex.token;

      // A worker that dies is started again, and the directory knows its new pid.
      const pids = readState(directory)?.workerPids ?? [];
      expect(pids).toHaveLength(4);
      process.kill(pids[0]!, 'SIGKILL');
      for (let i = 0; i < 200 && !(readState(directory)?.workerPids ?? []).some((p) => !pids.includes(p)); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const now = readState(directory)?.workerPids ?? [];
      expect(now).toHaveLength(4);
      expect(now).not.toContain(pids[0]);
      expect(lines.join('\n')).toMatch(/exited \(SIGKILL\); starting it again/);
    } finally {
      await ex.close();
    }
    // It stops the Redis it started.
    expect(await ping(redisUrl)).toBe('down');
    expect(readState(directory)?.pid).toBeUndefined();
  });

  it('keeps finished results and the token when relaunched on the same directory', async () => {
    expect(firstId).not.toBe('');
    const ex = await launch();
    try {
      expect(ex.token).toBe(firstToken);
      // The directory's redis-server again, with the same password, on its data of the first run.
      expect(ex.info.startedRedis).toBe(true);
      expect(new URL(readState(directory)?.redisUrl ?? '').password).toBe(new URL(redisUrl).password);
      const sub = await ex.get(firstId, { results: true });
      expect(sub.status).toBe('success');
      expect(sub.result).toEqual({ of: 3, sum: 14, cores: [2, 2, 2] });
      // An unknown stage in --workers names the stages there are.
      await expect(Executor.launch({ directory: path.join(root, 'other'), workflowModule: path.join(project, 'workflow.mjs'), workers: { fit: 1 }, port: 0, env: {}, log }))
        .rejects.toThrow(/--workers names stage "fit", which no workflow has \(stages: split, square, total\)/);
    } finally {
      await ex.close();
    }
  });

  it('goes on after the executor process is SIGKILLed: same Redis and data, the old workers stopped', async () => {
    const crashDir = path.join(project, 'crashed');
    const child = spawn(process.execPath, [path.join(PACKAGE_ROOT, 'bin/xpr.js'), 'executor', 'launch', '--workflow', 'workflow.mjs',
      '--directory', crashDir, '--port', '0'], { cwd: project, env: { PATH: process.env['PATH'] ?? '', HOME: os.tmpdir() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => { out += b.toString(); if (out.includes('Ctrl-C stops it')) resolve(); });
      child.once('exit', (code) => reject(new Error(`launch exited ${code}:\n${out}`)));
    });
    const before = readState(crashDir);
    const client = ExecutorClient.connect(before?.url ?? '', before?.token ?? '');
    const id = await client.submit('squares', 2);
    expect(await client.waitUntilComplete(id)).toMatchObject({ of: 2, sum: 5 });
    const oldWorkers = before?.workerPids ?? [];
    expect(oldWorkers).toHaveLength(3);

    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    // Redis and the workers have their own process groups: they outlive the executor.
    expect(await ping(before?.redisUrl ?? '')).toBe('ok');

    const ex = await Executor.launch({ directory: crashDir, workflowModule: path.join(project, 'workflow.mjs'), port: 0, graceMs: 1_000, env: {}, cwd: project, log });
    try {
      expect(ex.info.startedRedis).toBe(false);
      expect(readState(crashDir)?.redisUrl).toBe(before?.redisUrl);
      expect(ex.token).toBe(before?.token);
      expect(lines.join('\n')).toContain(`the redis-server of ${crashDir} still runs; using it`);
      expect((await ex.get(id, { results: true })).result).toMatchObject({ of: 2, sum: 5 });
      // The dead executor's workers were told to stop; they exit once their drain is done.
      for (const pid of oldWorkers) {
        for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
        expect(alive(pid)).toBe(false);
      }
    } finally {
      await ex.close();
    }
    // The directory's Redis, adopted, is stopped with the executor that adopted it.
    expect(await ping(before?.redisUrl ?? '')).toBe('down');
  });

  it('fails at once naming the port when the port is busy, having started nothing', async () => {
    const port = await freePort();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    const fresh = path.join(root, 'busy');
    try {
      const err = await Executor.launch({ directory: fresh, workflowModule: path.join(project, 'workflow.mjs'), port, env: {}, log })
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(XprError);
      expect((err as XprError).message).toContain(`Port ${port} on 127.0.0.1 is already in use`);
      expect((err as XprError).hint).toContain('--port');
      expect(fs.existsSync(fresh)).toBe(false);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});
