// The local pool: real worker processes (forked from dist/, so run `npm run build` first).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runChunksInPool, workerExecArgv, WorkerCrashedError, WorkerPool } from '../../src/runner/pool.js';
import { autoparallelize } from '../../src/autopara/autoparallelize.js';
import { ConfigSet } from '../../src/configset/configset.js';
import { OutputSpec } from '../../src/configset/outputspec.js';
import { distFile } from '../../src/util/paths.js';
import { FIXTURES, jsonLines, runNode, sandbox } from './helpers.js';

const OPS = path.join(FIXTURES, 'pool-ops.js');
const workerScript = distFile('runner/main.js');
const target = (name: string) => ({ module: OPS, export: name });

let pool: WorkerPool | undefined;
afterEach(async () => { await pool?.close({ force: true }); pool = undefined; });

describe('WorkerPool', () => {
  it('returns results in input order however the chunks finish', async () => {
    const chunks = Array.from({ length: 40 }, (_v, i) => [i * 3, i * 3 + 1, i * 3 + 2]);
    const results: unknown[][] = [];
    await runChunksInPool({ size: 3, target: target('echo'), kwargs: { delayMs: 20 }, workerScript }, chunks, (i, r) => { results[i] = r; });
    const flat = results.flat() as { x: number; pid: number }[];
    expect(flat.map((r) => r.x)).toEqual(Array.from({ length: 120 }, (_v, i) => i));
    expect(new Set(flat.map((r) => r.pid)).size).toBe(3);
    expect(flat.every((r) => r.pid !== process.pid)).toBe(true);
  });

  it('runs the initializer once per worker', async () => {
    const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-pool-')), 'init.log');
    process.env.XPR_TEST_INIT_LOG = log;
    try {
      pool = await WorkerPool.start({ size: 2, target: target('echo'), workerScript, initializer: { module: OPS, export: 'init', args: ['hello'] } });
      const out = (await Promise.all(Array.from({ length: 20 }, (_v, i) => pool!.run([i])))).flat() as { pid: number; inits: number }[];
      expect(out.every((r) => r.inits === 1)).toBe(true);
      const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(new Set(lines.map((l) => l.split(' ')[1]))).toEqual(new Set(pool.pids.map(String)));
      expect(lines.every((l) => l.startsWith('hello '))).toBe(true);
    } finally {
      delete process.env.XPR_TEST_INIT_LOG;
      fs.rmSync(path.dirname(log), { recursive: true, force: true });
    }
  });

  it('fails the chunk of a crashed worker with a clear error and replaces the worker', async () => {
    pool = await WorkerPool.start({ size: 2, target: target('crashOn'), kwargs: { bad: 13 }, workerScript });
    const before = pool.pids;
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_v, i) => pool!.run([i])));
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(failed).toHaveLength(1);
    expect(outcomes[13]!.status).toBe('rejected');
    const err = failed[0]!.reason as WorkerCrashedError;
    expect(err).toBeInstanceOf(WorkerCrashedError);
    expect(err.message).toMatch(/A pool worker \(pid \d+\) exited with code 3 while running a chunk/);
    expect(err.exitCode).toBe(3);
    // Every other chunk got its result, and the pool is back to two live workers, one of them new.
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(19);
    await new Promise((r) => setTimeout(r, 300));
    expect(pool.pids).toHaveLength(2);
    expect(pool.pids.filter((p) => !before.includes(p))).toHaveLength(1);
    expect(await pool.run([1])).toEqual([{ x: 1, pid: expect.any(Number) }]);
  });

  it('passes the op\'s own error back with its type, message and stack', async () => {
    pool = await WorkerPool.start({ size: 1, target: target('throwsOn'), kwargs: { bad: 2 }, workerScript });
    const err = await pool.run([1, 2]).catch((e: unknown) => e) as Error;
    expect(err.name).toBe('RangeError');
    expect(err.message).toBe('bad item 2');
    expect(err.stack).toContain('pool-ops.js');
    expect(await pool.run([5])).toEqual([5]);
  });

  it('refuses an op that returns the wrong number of results', async () => {
    pool = await WorkerPool.start({ size: 1, target: target('wrongLength'), workerScript });
    await expect(pool.run([1, 2, 3])).rejects.toThrow('the op returned 2 result(s) for 3 item(s)');
  });

  it('gives workers this process\'s loaders but not `node -e` code, debuggers or the test runner', () => {
    expect(workerExecArgv(['--import', 'tsx', '-e', 'boom()', '--inspect=9229', '--enable-source-maps', '--eval=x', '--test', '-p', 'y']))
      .toEqual(['--import', 'tsx', '--enable-source-maps']);
  });

  it('does not start with a worker that cannot import the op', async () => {
    await expect(WorkerPool.start({ size: 2, target: target('nope'), workerScript })).rejects.toThrow(/does not export a function "nope"/);
  });
});

describe('autoparallelize, in this process', () => {
  function square(items: number[], { add = 0 }: { add?: number }) {
    return items.map((x) => (x === 3 ? null : x * x + add));
  }

  it('chunks, keeps input order and grouping, and skips items that give nothing', async () => {
    const seen: number[] = [];
    const sq = autoparallelize((items: number[], kw: { add?: number }) => { seen.push(items.length); return square(items, kw); },
      { name: 'square', numInputsPerSubprocess: 2 });
    const out = await sq(new ConfigSet([[1, 2, 3], [4, 5]]), null, { add: 1 }, { numSubprocesses: 0 });
    expect(await out.groups()).toEqual([[2, 5], [17, 26]]);
    expect(seen).toEqual([2, 2, 1]);
    expect(sq.opName).toBe('square');
    expect(sq.frameLabel).toMatch(/pool\.test\.ts::square$/);
  });

  it('with skipFailed: false an item that gives nothing is an error', async () => {
    const sq = autoparallelize(square, { skipFailed: false });
    await expect(sq([1, 2, 3, 4], null, {}, { numSubprocesses: 0 })).rejects.toThrow(/square: the op gave nothing \(null\) for input \/2/);
  });

  it('writes an output file and reuses it when it exists', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-ap-'));
    const calls: number[] = [];
    const op = (items: { x: number }[]) => { calls.push(items.length); return items.map((it) => ({ ...it, y: 2 * it.x })); };
    const calc = autoparallelize(op, { name: 'calc' });
    const file = path.join(dir, 'out.jsonl');
    await calc([{ x: 1 }, { x: 2 }], new OutputSpec(file), {}, { numSubprocesses: 0 });
    expect(fs.readFileSync(file, 'utf8')).toBe('{"x":1,"y":2}\n{"x":2,"y":4}\n');
    const again = await calc([{ x: 1 }, { x: 2 }], new OutputSpec(file), {}, { numSubprocesses: 0 });
    expect(calls).toEqual([1, 1]); // one item per op call by default; none the second time
    expect(await again.toArray()).toEqual([{ x: 1, y: 2 }, { x: 2, y: 4 }]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('rejects unknown autopara options, naming the valid ones', async () => {
    const sq = autoparallelize(square);
    await expect(sq([1], null, {}, { npool: 2 } as never)).rejects.toThrow(/unknown option "npool"; valid: numInputsPerSubprocess/);
    expect(() => autoparallelize(square, { chunksize: 2 } as never)).toThrow(/autoparallelize\(op, defaults\): unknown option "chunksize"/);
  });

  it('runs the initializer once, in this process', async () => {
    let n = 0;
    const sq = autoparallelize(square, { initializer: [(k: number) => { n += k; }, [5]] });
    await sq([1, 2], null, {}, { numSubprocesses: 0 });
    expect(n).toBe(5);
  });
});

describe('autoparallelize through the pool (a real script)', () => {
  it('gives the same outputs with WFL_NUM_PYTHON_SUBPROCESSES=2 as in-process', async () => {
    const box = sandbox();
    try {
      fs.copyFileSync(path.resolve('examples/inputs.jsonl'), path.join(box.dir, 'inputs.jsonl'));
      const script = path.resolve('examples/fit.js');
      const local = await runNode([script], { cwd: box.dir, env: box.env });
      expect(local.code, local.stderr).toBe(0);
      const serial = ['scaled.jsonl', 'even.jsonl'].map((f) => fs.readFileSync(path.join(box.dir, f), 'utf8'));
      for (const f of ['scaled.jsonl', 'even.jsonl']) fs.rmSync(path.join(box.dir, f));
      const pooled = await runNode([script], { cwd: box.dir, env: { ...box.env, WFL_NUM_PYTHON_SUBPROCESSES: '2' } });
      expect(pooled.code, pooled.stderr).toBe(0);
      expect(['scaled.jsonl', 'even.jsonl'].map((f) => fs.readFileSync(path.join(box.dir, f), 'utf8'))).toEqual(serial);
      expect(serial[0]!.trim().split('\n')).toHaveLength(60);
      expect(serial[1]!.trim().split('\n')).toHaveLength(30);
      expect(jsonLines(pooled.stdout)).toEqual([]);
    } finally {
      await box.cleanup();
    }
  });
});
