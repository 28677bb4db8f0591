// The `xpr executor` commands and `xpr worker` as a user types them, through main() with string
// streams: launch serves until stopped; submit, watch, retrieve, list, cancel, retry and cache talk to
// it through --directory; one stage is served only by `xpr worker` over HTTP; `run` does it all once.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from '../../src/cli/main.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { stopLeftovers } from './leftovers.js';
import { skipWithoutRedis } from './redis.js';

const WORKFLOW = `
import { workflow } from 'xpr';

export const split = (n) => Array.from({ length: n }, (_, i) => i + 1);
export const square = (x) => x * x;
export const total = (xs, ctx) => ({ of: ctx.input, sum: xs.reduce((a, b) => a + b, 0) });
export function check(x) {
  if (x < 0) throw new RangeError('negative input ' + x);
  return x;
}
export const squares = workflow('squares', [
  { stage: 'split', run: split },
  { stage: 'square', run: square, each: true },
  { stage: 'total', run: total },
]);
export const checked = workflow('checked', [{ stage: 'check', run: check }, { stage: 'total', run: (x) => ({ sum: x }) }]);
`;

interface Running {
  /** Resolves with the exit code. */
  done: Promise<number>;
  out: () => string;
  err: () => string;
  /** Resolves when stdout has a match. */
  waitFor: (re: RegExp) => Promise<void>;
  /** What Ctrl-C would do. */
  stop: () => void;
}

describe.skipIf(skipWithoutRedis('the executor CLI tests'))('xpr executor', () => {
  let project: string;
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '', HOME: os.tmpdir(), NO_COLOR: '1' };

  function start(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Running {
    const stdout = Object.assign(new PassThrough(), { isTTY: false });
    const stderr = Object.assign(new PassThrough(), { isTTY: false });
    const stdin = Object.assign(new PassThrough(), { isTTY: false });
    stdin.end('');
    let out = '';
    let err = '';
    const waiters: { re: RegExp; resolve: () => void }[] = [];
    stdout.on('data', (b: Buffer) => {
      out += b.toString();
      for (const w of waiters.filter((x) => x.re.test(out))) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    });
    stderr.on('data', (b: Buffer) => { err += b.toString(); });
    let stopper: (() => void) | undefined;
    let stopAsked = false;
    const onStop = (stop: () => void) => {
      stopper = stop;
      if (stopAsked) stop();
      return () => { stopper = undefined; };
    };
    const io: Io = { stdout, stderr, stdin, env: { ...env, ...extraEnv }, cwd: project, onStop, onInterrupt: onStop };
    const done = main(args, io);
    return {
      done, out: () => out, err: () => err,
      waitFor: (re) => (re.test(out) ? Promise.resolve() : new Promise<void>((resolve, reject) => {
        waiters.push({ re, resolve });
        done.then((code) => reject(new Error(`xpr ${args.join(' ')} exited ${code} before printing ${re}:\n${out}\n${err}`)), reject);
      })),
      stop: () => { stopAsked = true; stopper?.(); },
    };
  }

  async function xpr(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = start(args, extraEnv);
    const code = await r.done;
    return { code, stdout: r.out(), stderr: r.err() };
  }

  beforeAll(() => {
    if (!fs.existsSync(path.join(PACKAGE_ROOT, 'dist/src/executor/worker-main.js'))) {
      throw new Error('dist/ is missing or old: run `npm run build` before the executor tests');
    }
    project = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr exec cli '));
    fs.mkdirSync(path.join(project, 'node_modules'));
    fs.symlinkSync(PACKAGE_ROOT, path.join(project, 'node_modules', 'xpr'), 'dir');
    fs.writeFileSync(path.join(project, 'workflow.mjs'), WORKFLOW);
    fs.writeFileSync(path.join(project, 'three.json'), '3\n');
    fs.writeFileSync(path.join(project, 'many.jsonl'), '1\n2\n\n4\n');
    fs.writeFileSync(path.join(project, 'negative.json'), '-5');
  });

  afterAll(async () => {
    if (!project) return;
    await stopLeftovers(path.join(project, 'ex'));
    fs.rmSync(project, { recursive: true, force: true });
  });

  it('launches, submits, watches, retrieves, lists, retries and handles the cache; one stage served by xpr worker', async () => {
    // No local worker for "square": only the remote worker below serves it.
    const launch = start(['executor', 'launch', '--workflow', 'workflow.mjs', '--directory', 'ex', '--port', '0',
      '--workers', 'square=0', '--grace', '2']);
    try {
      await launch.waitFor(/Ctrl-C stops it/);
      expect(launch.out()).toMatch(/xpr executor running at http:\/\/127\.0\.0\.1:\d+/);
      const state = JSON.parse(fs.readFileSync(path.join(project, 'ex', 'executor.json'), 'utf8')) as { url: string; token: string };

      // A worker without the executor's address is told which variable to set.
      const lost = await xpr(['worker', '--stage', 'square']);
      expect(lost.code).toBe(1);
      expect(lost.stderr).toContain('XPR_EXECUTOR_URL is not set');

      const worker = start(['worker', '--stage', 'square'], { XPR_EXECUTOR_URL: state.url, XPR_EXECUTOR_TOKEN: state.token });
      try {
        const sub = await xpr(['executor', 'submit', '--directory', 'ex', '--workflow', 'squares', '--input', 'three.json', '--input', 'many.jsonl']);
        expect(sub.stderr).toBe('');
        expect(sub.code).toBe(0);
        const rows = sub.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/));
        expect(rows.map((r) => r[0])).toEqual(['three.json', 'many.jsonl:1', 'many.jsonl:2', 'many.jsonl:4']);
        const ids = rows.map((r) => r[1] ?? '');

        const watched = await xpr(['executor', 'watch', '--directory', 'ex', ids[0]!]);
        expect(watched.code).toBe(0);
        expect(watched.stdout).toContain(`${ids[0]}  success  split 1/1 · square 3/3 · total 1/1`);

        const got = await xpr(['executor', 'retrieve', '--directory', 'ex', ids[0]!, '--output', 'out.json']);
        expect(got.code).toBe(0);
        expect(JSON.parse(fs.readFileSync(path.join(project, 'out.json'), 'utf8'))).toEqual({ of: 3, sum: 14 });
        for (const id of ids.slice(1)) expect((await xpr(['executor', 'watch', '--directory', 'ex', id])).code).toBe(0);

        const listed = await xpr(['--json', 'executor', 'list', '--directory', 'ex', '--status', 'success']);
        expect(JSON.parse(listed.stdout)).toMatchObject({ total: 4 });
        const badStatus = await xpr(['executor', 'list', '--directory', 'ex', '--status', 'done']);
        expect(badStatus.code).toBe(1);
        expect(badStatus.stderr).toContain('--status done is not a submission status');

        // A failing stage: watch and retrieve exit 1 and say where and why; nothing is written.
        const bad = await xpr(['executor', 'submit', '--directory', 'ex', '--workflow', 'checked', '--input', 'negative.json']);
        const badId = bad.stdout.trim().split('\n')[1]?.split(/\s+/)[1] ?? '';
        const failed = await xpr(['executor', 'watch', '--directory', 'ex', badId]);
        expect(failed.code).toBe(1);
        expect(failed.stdout).toContain('errored in stage check: RangeError: negative input -5');
        const none = await xpr(['executor', 'retrieve', '--directory', 'ex', badId, '--output', 'bad.json']);
        expect(none.code).toBe(1);
        expect(none.stdout).toContain('nothing written');
        expect(fs.existsSync(path.join(project, 'bad.json'))).toBe(false);
        const retried = await xpr(['executor', 'retry', '--directory', 'ex', badId]);
        expect(retried.code).toBe(0);
        expect(retried.stdout).toContain('from stage check');
        expect((await xpr(['executor', 'watch', '--directory', 'ex', badId])).code).toBe(1);

        // The cache: results of every stage, out to a file, cleared, and back in.
        const stats = await xpr(['--json', 'executor', 'cache', 'stats', '--directory', 'ex']);
        const entries = (JSON.parse(stats.stdout) as { stats: { entries: number; stages: Record<string, number> } }).stats;
        expect(entries.stages).toMatchObject({ split: 4, total: 4 });
        expect((await xpr(['executor', 'cache', 'export', '--directory', 'ex', 'cache.jsonl'])).stdout)
          .toContain(`Exported ${entries.entries} cache entries`);
        expect((await xpr(['executor', 'cache', 'clear', '--directory', 'ex'])).code).toBe(0);
        const imported = await xpr(['executor', 'cache', 'import', '--directory', 'ex', 'cache.jsonl']);
        expect(imported.stdout).toContain(`${entries.entries} new entries (${entries.entries} in the cache now)`);
        const again = await xpr(['executor', 'cache', 'import', '--directory', 'ex', 'cache.jsonl']);
        expect(again.stdout).toContain(`0 new entries (${entries.entries} in the cache now)`);
      } finally {
        worker.stop();
        expect(await worker.done).toBe(0);
      }
      expect(worker.out()).toMatch(/Worker .* stopped \(asked to stop\): [1-9]\d* task\(s\) run/);
    } finally {
      launch.stop();
      expect(await launch.done).toBe(0);
    }
    // Stopped: the commands say so instead of failing to connect.
    const after = await xpr(['executor', 'list', '--directory', 'ex']);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('is not running');
  });

  it('runs a workflow once with executor run, writing the output only on success', async () => {
    const ok = await xpr(['executor', 'run', '--workflow', 'squares', '--module', 'workflow.mjs', '--input', 'three.json', '--output', 'run.json']);
    expect(ok.stderr).toMatch(/success {2}split 1\/1 · square 3\/3 · total 1\/1/);
    expect(ok.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(project, 'run.json'), 'utf8'))).toEqual({ of: 3, sum: 14 });
    const bad = await xpr(['executor', 'run', '--workflow', 'checked', '--module', 'workflow.mjs', '--input', 'negative.json', '--output', 'run-bad.json']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('RangeError: negative input -5');
    expect(fs.existsSync(path.join(project, 'run-bad.json'))).toBe(false);
  });
});
