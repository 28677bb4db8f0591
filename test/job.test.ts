// The job life cycle end to end on the built-in local system: real job scripts, the real local
// queue, real child processes, a real SQLite file.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobDiedError, JobTimeoutError, RemoteError, XprError } from '../src/errors.js';
import { Job } from '../src/job/job.js';
import { readPid } from '../src/localq/queue.js';
import { tempProject, type TempProject } from './helpers/project.js';
import * as ops from './fixtures/jobs/ops.js';

const OPS = path.resolve('test/fixtures/jobs/ops.js');
const ONE_CORE = { resources: { num_cores: 1, max_time: '5m' } };

let t: TempProject;
beforeEach(() => { t = tempProject(); });
afterEach(async () => { await t.cleanup(); });

function create(name: string, fn: (...a: never[]) => unknown, extra: Record<string, unknown> = {}): Promise<Job> {
  return Job.create({ name, fn, module: OPS, project: t.project, ...extra });
}

describe('a job on the local system', () => {
  it('runs the function and returns its result and output', async () => {
    const job = await create('scale', ops.scale, { args: [[1, 2, 3]], kwargs: { factor: 3 } });
    expect(job.status).toBe('created');
    await job.start(ONE_CORE);
    expect(job.status).toBe('submitted');
    const { result, stdout } = await job.getResults({ timeout: 60 });
    expect(result).toEqual([3, 6, 9]);
    expect(stdout).toBe('scaling 3 items\n');
    expect(job.status).toBe('succeeded');
  });

  it('round-trips values JSON cannot hold', async () => {
    const job = await create('rich', ops.rich);
    await job.start(ONE_CORE);
    const { result } = await job.getResults<Record<string, unknown>>({ timeout: 60 });
    expect(result.when).toEqual(new Date(0));
    expect(result.big).toBe(10n);
    expect(result.nums).toEqual(new Float64Array([1.5, NaN]));
    expect(result.set).toEqual(new Set([1]));
    expect('nothing' in result && result.nothing === undefined).toBe(true);
  });

  it('works with a job name holding +, a quote, a space and $', async () => {
    const name = "fit+x 'a' $HOME";
    const job = await create(name, ops.scale, { args: [[2]], kwargs: { factor: 2 } });
    expect(job.id.startsWith(`${name}_`)).toBe(true);
    await job.start(ONE_CORE);
    expect((await job.getResults({ timeout: 60 })).result).toEqual([4]);
    expect(fs.existsSync(path.join(t.project.stageRoot, `run_${job.id}`, '_xpr_result.json'))).toBe(true);
    expect(t.project.store.list({ name: ["fit\\+x 'a' \\$HOME"] }).map((r) => r.id)).toEqual([job.id]);
  });

  it('copies input files into the job dir', async () => {
    const input = path.join(t.dir, 'in.txt');
    fs.writeFileSync(input, 'hello from a file\n');
    const job = await create('reader', ops.readInput, { args: ['in.txt'], inputFiles: [input] });
    await job.start(ONE_CORE);
    expect((await job.getResults({ timeout: 60 })).result).toBe('hello from a file');
  });

  it('re-throws a remote exception with its type name, message and stack', async () => {
    const job = await create('fails', ops.fails);
    await job.start(ONE_CORE);
    const err = await job.getResults({ timeout: 60 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    const re = err as RemoteError;
    expect(re.remoteName).toBe('RangeError');
    expect(re.message).toContain('value out of range: 42');
    // Source maps put the user's own file in the remote stack.
    expect(re.remoteStack).toMatch(/at fails \(.*test\/fixtures\/jobs\/ops\.js:\d+:\d+\)/);
    expect(re.job.stderrTail).toContain('RangeError');
    expect(re.describe()).toContain(`xpr logs`);
    expect(job.status).toBe('failed');
  });

  it('reports a job killed from outside as died', async () => {
    const job = await create('sleepy', ops.sleepy, { args: [60] });
    await job.start(ONE_CORE);
    const qdir = process.env.XPR_LOCALQ_DIR!;
    let pid: number | undefined;
    for (let i = 0; i < 100 && pid === undefined; i++) {
      pid = readPid(qdir, job.info.remoteId!)?.pid;
      if (pid === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(pid).toBeDefined();
    process.kill(-pid!, 'SIGKILL');
    const err = await job.getResults({ timeout: 60 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobDiedError);
    expect(job.status).toBe('died');
  });

  it('names a cancel as the reason the job died', async () => {
    const job = await create('sleepy', ops.sleepy, { args: [60] });
    await job.start(ONE_CORE);
    await job.cancel();
    const err = await job.getResults({ timeout: 60 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobDiedError);
    expect((err as JobDiedError).reason).toBe('CANCELLED');
  });

  it('names a wall-time kill TIMEOUT', async () => {
    const job = await create('sleepy', ops.sleepy, { args: [60] });
    await job.start({ resources: { num_cores: 1, max_time: 1 } });
    const err = await job.getResults({ timeout: 60 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobDiedError);
    expect((err as JobDiedError).reason).toBe('TIMEOUT');
  });

  it('stops waiting after the timeout while the job goes on', async () => {
    const job = await create('sleepy', ops.sleepy, { args: [3] });
    await job.start(ONE_CORE);
    const t0 = Date.now();
    await expect(job.getResults({ timeout: 0.5 })).rejects.toBeInstanceOf(JobTimeoutError);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await job.getResults({ timeout: 60 })).result).toBe('woke');
  });

  it('refuses a function that is not a module export, saying what to do', async () => {
    const closure = ops.makeClosure();
    await expect(create('closure', closure)).rejects.toThrow(/not exported from .*ops\.js/);
    await expect(create('closure', closure)).rejects.toBeInstanceOf(XprError);
  });
});

describe('restart', () => {
  it('re-attaches an identical call instead of running it again', async () => {
    const log = path.join(t.dir, 'runs.log');
    process.env.XPR_TEST_RUN_LOG = log;
    const first = await create('counted', ops.counted, { args: [1] });
    await first.start(ONE_CORE);
    expect((await first.getResults({ timeout: 60 })).result).toBe(2);

    const second = await create('counted', ops.counted, { args: [1] });
    expect(second.reattached).toBe(true);
    expect(second.id).toBe(first.id);
    await second.start(ONE_CORE);
    expect((await second.getResults({ timeout: 60 })).result).toBe(2);
    expect(fs.readFileSync(log, 'utf8')).toBe('1\n');
  });

  it('makes a new job after the old one failed or was processed', async () => {
    const failed = await create('fails', ops.fails);
    await failed.start(ONE_CORE);
    await failed.getResults({ timeout: 60 }).catch(() => undefined);
    const again = await create('fails', ops.fails);
    expect(again.reattached).toBe(false);
    expect(again.id).not.toBe(failed.id);

    const ok = await create('scale', ops.scale, { args: [[1]], kwargs: { factor: 1 } });
    await ok.start(ONE_CORE);
    await ok.getResults({ timeout: 60 });
    ok.markProcessed();
    const fresh = await create('scale', ops.scale, { args: [[1]], kwargs: { factor: 1 } });
    expect(fresh.reattached).toBe(false);
  });
});

describe('the restart hash', () => {
  const hashOf = async (extra: Record<string, unknown>, fn: (...a: never[]) => unknown = ops.scale, module = OPS) =>
    (await Job.create({ name: 'h', fn, module, project: t.project, ...extra })).info;

  it('changes with an argument, an input file\'s bytes and the code; not with hash_ignore keys', async () => {
    const base = await hashOf({ args: [[1]], kwargs: { factor: 2, verbose: true } });
    const sameAgain = await hashOf({ args: [[1]], kwargs: { factor: 2, verbose: true } });
    expect(sameAgain.hash).toBe(base.hash);

    const otherArg = await hashOf({ args: [[1]], kwargs: { factor: 3, verbose: true } });
    expect(otherArg.hash).not.toBe(base.hash);
    expect(otherArg.hashParts.code).toBe(base.hashParts.code);

    const ignored1 = await hashOf({ args: [[1]], kwargs: { factor: 2, verbose: true }, hashIgnore: ['verbose'] });
    const ignored2 = await hashOf({ args: [[1]], kwargs: { factor: 2, verbose: false }, hashIgnore: ['verbose'] });
    expect(ignored2.hash).toBe(ignored1.hash);

    const input = path.join(t.dir, 'data.txt');
    fs.writeFileSync(input, 'one');
    const withFile = await hashOf({ args: [[1]], inputFiles: [input] });
    fs.writeFileSync(input, 'two');
    const changedFile = await hashOf({ args: [[1]], inputFiles: [input] });
    expect(changedFile.hash).not.toBe(withFile.hash);
    expect(changedFile.hashParts.inputs).not.toBe(withFile.hashParts.inputs);

    // Same function name, same arguments, different code: a copy of the module with an edit.
    const edited = path.join(t.dir, 'ops-edited.js');
    fs.writeFileSync(edited, fs.readFileSync(OPS, 'utf8').replace('x * factor', 'x * factor + 0'));
    const mod = (await import(edited)) as typeof ops;
    const editedHash = await hashOf({ args: [[1]], kwargs: { factor: 2, verbose: true } }, mod.scale, edited);
    expect(editedHash.hashParts.code).not.toBe(base.hashParts.code);
    expect(editedHash.hash).not.toBe(base.hash);
  });

  it('says why a new call did not re-attach', async () => {
    const create = (extra: Record<string, unknown>, fn: (...a: never[]) => unknown = ops.scale, module = OPS) =>
      Job.create({ name: 'why', fn, module, project: t.project, ...extra });
    const first = await create({ args: [[1]], kwargs: { factor: 2 } });
    expect(first.missReason).toBe('no earlier job of this name');
    const otherArgs = await create({ args: [[2]], kwargs: { factor: 2 } });
    expect(otherArgs.missReason).toBe(`the call differs from ${first.id} in: args`);
    const edited = path.join(t.dir, 'ops-why.js');
    fs.writeFileSync(edited, fs.readFileSync(OPS, 'utf8').replace('x * factor', 'factor * x'));
    const mod = (await import(edited)) as typeof ops;
    const otherCode = await create({ args: [[2]], kwargs: { factor: 2 } }, mod.scale, edited);
    expect(otherCode.missReason).toBe(`the call differs from ${otherArgs.id} in: code`);
    t.project.store.update(otherCode.id, { status: 'failed' });
    const rerun = await create({ args: [[2]], kwargs: { factor: 2 } }, mod.scale, edited);
    expect(rerun.missReason).toBe(`the same call ran as ${otherCode.id}, which is failed`);
    expect((await create({ args: [[2]], kwargs: { factor: 2 } }, mod.scale, edited)).reattached).toBe(true);
  });
});

describe('clean', () => {
  it('removes staged inputs, and with wipe the whole stage dir', async () => {
    const a = await create('scale', ops.scale, { args: [[1]], kwargs: { factor: 5 } });
    await a.start(ONE_CORE);
    await a.getResults({ timeout: 60 });
    await a.clean();
    expect(a.status).toBe('cleaned');
    expect(fs.existsSync(path.join(a.stageDir, '_xpr_call.json'))).toBe(false);
    expect(fs.existsSync(path.join(a.stageDir, '_xpr_result.json'))).toBe(true);

    const b = await create('scale', ops.scale, { args: [[2]], kwargs: { factor: 5 } });
    await b.start(ONE_CORE);
    await b.getResults({ timeout: 60 });
    await b.clean({ wipe: true });
    expect(fs.existsSync(b.stageDir)).toBe(false);
    expect(b.status).toBe('cleaned');
  });

  it('refuses to clean a running job', async () => {
    const job = await create('sleepy', ops.sleepy, { args: [30] });
    await job.start(ONE_CORE);
    await expect(job.clean()).rejects.toThrow(/still (submitted|started)/);
    await job.cancel();
  });
});

describe('arrays', () => {
  it('submits many jobs as one array, each in its own dir', async () => {
    const jobs = await Promise.all([1, 2, 3, 4].map((x) => create(`arr${x}`, ops.scale, { args: [[x]], kwargs: { factor: 10 } })));
    await Job.startMany(jobs, ONE_CORE);
    const schedNames = new Set(jobs.map((j) => j.info.schedName));
    expect(schedNames.size).toBe(1);
    expect(jobs.map((j) => j.info.remoteId)).toEqual(jobs.map((_j, i) => `${jobs[0]!.info.remoteId!.split('_')[0]}_${i}`));
    const results = await Promise.all(jobs.map((j) => j.getResults({ timeout: 60 })));
    expect(results.map((r) => r.result)).toEqual([[10], [20], [30], [40]]);
  });
});
