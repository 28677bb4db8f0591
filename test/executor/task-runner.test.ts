// One task, as every worker runs it: the code comes by hash from `loadCode`, the stage function gets
// its decoded input and a context, and its errors are told apart from the worker's own troubles.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleModule, type CodeBundle } from '../../src/job/code.js';
import { decodeTaskFailure, encodeTaskFailure, runTask, StageFailed, type TaskEnvironment } from '../../src/executor/task-runner.js';
import type { TaskData } from '../../src/executor/types.js';
import { decode, encode } from '../../src/util/codec.js';

const STAGES = path.resolve('test/fixtures/executor/stages.mjs');

let bundle: CodeBundle;
let codeDir: string;
let loads: string[];
beforeAll(async () => {
  bundle = await bundleModule(STAGES);
  codeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-code-'));
});
afterAll(() => { fs.rmSync(codeDir, { recursive: true, force: true }); });

function env(overrides: Partial<TaskEnvironment> = {}): TaskEnvironment {
  loads = [];
  return {
    cores: 3,
    maxMemPerCore: 1000,
    codeDir,
    loadCode: async (hash) => {
      loads.push(hash);
      return bundle.code;
    },
    ...overrides,
  };
}

function task(stage: string, input: unknown, submissionInput: unknown = { mol: 'CCO' }, codeHash = bundle.hash): TaskData {
  return { workflow: 'demo', stage, stageIndex: 0, codeHash, input: encode(input), submissionInput: encode(submissionInput), sharedKey: 'shared-1' };
}

describe('runTask', () => {
  it('runs the stage on the decoded input and returns the encoded result; the code is loaded once', async () => {
    const e = env();
    const first = await runTask('t1', task('double', 21), e);
    expect(first).toEqual({ value: 42, readInput: false });
    const big = await runTask('t2', task('double', 2n ** 70n), e);
    expect(decode(big.value)).toBe(2n ** 71n);
    expect(loads).toEqual([bundle.hash]);
    expect(fs.existsSync(path.join(codeDir, `${bundle.hash}.mjs`))).toBe(true);
  });

  it('gives the context: the submission input (noting it was read), cores, memory per core, stage, task id', async () => {
    const out = await runTask('t3', task('describe', 5, new Map([['a', 1]])), env());
    expect(out.readInput).toBe(true);
    expect(decode(out.value)).toEqual({ x: 5, submission: new Map([['a', 1]]), cores: 3, maxMemPerCore: 1000, stage: 'describe', taskId: 't3' });
  });

  it('gives each task a scratch dir of its own, removed when the task ends unless temp files are kept', async () => {
    const gone = decode((await runTask('t7', task('scratch', 'a.txt'), env())).value) as string;
    expect(path.basename(gone)).toMatch(/^xpr-task-scratch-/);
    expect(fs.existsSync(gone)).toBe(false);
    const lines: string[] = [];
    const kept = decode((await runTask('t8', task('scratch', 'b.txt'), env({ keepTempFiles: true, log: (l) => lines.push(l) }))).value) as string;
    try {
      expect(kept).not.toBe(gone);
      expect(fs.readFileSync(path.join(kept, 'b.txt'), 'utf8')).toBe('scratch');
      expect(lines).toEqual([`xpr worker: kept the scratch dir of task t8 (scratch): ${kept}`]);
    } finally {
      fs.rmSync(kept, { recursive: true, force: true });
    }
  });

  it('throws StageFailed with the type, message and stack of what the stage threw', async () => {
    const err = await runTask('t4', task('fails', 42), env()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StageFailed);
    const { failure, stage } = err as StageFailed;
    expect(stage).toBe('fails');
    expect(failure.name).toBe('RangeError');
    expect(failure.message).toBe('value out of range: 42');
    expect(failure.stack.split('\n')[0]).toBe('RangeError: value out of range: 42');
    expect(failure.stack).toMatch(/\n\s+at Object\.fails \[as run\] /);
    // The worker's own frames say nothing about the stage's bug.
    expect(failure.stack).not.toContain('runTask');
  });

  it('a stage the code does not have is a StageFailed naming the stages there are', async () => {
    const err = await runTask('t5', task('nope', 1), env()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StageFailed);
    expect((err as StageFailed).failure.message).toBe('workflow "demo" has no stage "nope" (its stages: double, describe, fails, slow, slow-kill, scratch)');
  });

  it('runs a workflow declared with workflow() from xpr, and names the workflows a code has when asked for another', async () => {
    const shim = await bundleModule(path.resolve('test/fixtures/executor/shim-workflow.mjs'));
    const e = env({ loadCode: async () => shim.code });
    const data = { ...task('square', 7, null, shim.hash), workflow: 'squares' };
    expect(await runTask('t8', data, e)).toEqual({ value: 49, readInput: false });
    const err = await runTask('t9', { ...data, workflow: 'other' }, e).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(StageFailed);
    expect((err as StageFailed).failure.message).toBe(`code ${shim.hash} has no workflow "other" (known: squares)`);
  });

  it('code that does not match its hash is not run, and is a transient error (fetched again next time)', async () => {
    const other = 'f'.repeat(64);
    const e = env({ loadCode: async (hash) => { loads.push(hash); return 'export const x = 1;'; } });
    const err = await runTask('t6', task('double', 1, null, other), e).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(StageFailed);
    expect((err as Error).message).toContain('damaged on the way');
    expect(fs.existsSync(path.join(codeDir, `${other}.mjs`))).toBe(false);
    await runTask('t7', task('double', 1, null, other), e).catch(() => undefined);
    expect(loads).toEqual([other, other]);
  });

  it('a failure survives the trip through a queue reason; a plain reason reads as an Error', () => {
    const failure = { name: 'RangeError', message: 'm', stack: 'RangeError: m\n    at f (x.js:1:1)' };
    expect(decodeTaskFailure(encodeTaskFailure(failure))).toEqual(failure);
    expect(decodeTaskFailure('job stalled more than allowable limit')).toEqual({
      name: 'Error', message: 'job stalled more than allowable limit', stack: 'Error: job stalled more than allowable limit',
    });
  });
});
