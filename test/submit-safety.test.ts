// Nothing is submitted twice: not when the scheduler's answer is lost, not when two drivers of the
// same script start together, not when a driver is killed between submitting and recording. Every
// count of submissions is the local queue's own listing. Needs `npm run build` (drivers use dist/).
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { waitForOtherSubmitters } from '../src/job/engine.js';
import { XprError } from '../src/errors.js';
import { Job } from '../src/job/job.js';
import { noJobIdError } from '../src/schedulers/common.js';
import { local } from '../src/schedulers/local.js';
import { runDriver as runDriverIn, type DriverRun } from './helpers/driver.js';
import { tempProject, type TempProject } from './helpers/project.js';
import * as ops from './fixtures/jobs/ops.js';

const run = promisify(execFile);
const OPS = path.resolve('test/fixtures/jobs/ops.js');
const ONE_CORE = { resources: { num_cores: 1, max_time: '5m' } };
let t: TempProject;
beforeEach(() => { t = tempProject(); });
afterEach(async () => {
  vi.restoreAllMocks();
  await t.cleanup();
});

/** Jobs (not array elements) the local queue holds: `<task> <STATE> <exit> <name>`, task `12_3` of job 12. */
async function queuedJobs(): Promise<string[]> {
  const { stdout } = await run(process.execPath, [path.resolve('dist/src/localq/main.js'), 'status'], { env: process.env });
  return [...new Set(stdout.split('\n').filter(Boolean).map((l) => l.split(' ')[0]!.split('_')[0]!))];
}

describe('a submission whose output holds no job id', () => {
  // The job is queued, but the scheduler's answer cannot be read (as sbatch/qsub parsing does).
  const unreadable = () => vi.spyOn(local, 'parseSubmit').mockImplementationOnce((out) => { throw noJobIdError('localq submit', out.replace(/\d/g, '?')); });

  it('is found by its scheduler name at once, and not submitted again', async () => {
    unreadable();
    const job = await Job.create({ name: 'noid', fn: ops.scale, args: [[1]], kwargs: { factor: 2 }, module: OPS, project: t.project });
    await job.start(ONE_CORE).catch(() => undefined);
    await job.start(ONE_CORE);
    expect(job.info.remoteId).toMatch(/^\d+$/);
    expect((await job.getResults({ timeout: 60 })).result).toEqual([2]);
    expect(await queuedJobs()).toHaveLength(1);
  });

  it('keeps its intent when the name is not listed yet, and the next start finds it', async () => {
    unreadable();
    vi.spyOn(local, 'parseFindByName').mockImplementationOnce(() => undefined);
    const job = await Job.create({ name: 'noid2', fn: ops.scale, args: [[2]], kwargs: { factor: 2 }, module: OPS, project: t.project });
    await expect(job.start(ONE_CORE)).rejects.toThrow(/no job id|Could not find a job id/i);
    expect(job.reload().submitIntent).not.toBeNull();
    await job.start(ONE_CORE);
    expect((await job.getResults({ timeout: 60 })).result).toEqual([4]);
    expect(await queuedJobs()).toHaveLength(1);
  });
});

describe('jobs another live process is submitting', () => {
  it('are waited for; the wait ends in an error naming them, and once that process is gone they are submitted', async () => {
    const job = await Job.create({ name: 'busy', fn: ops.scale, args: [[3]], kwargs: { factor: 2 }, module: OPS, project: t.project });
    // A live process on this machine holds the intent, as a driver does while it submits. Set by hand:
    // a crash point only kills a driver, and this needs one that stays alive holding the intent.
    const other = spawn('sleep', ['60']);
    t.project.store.claimForSubmit([job.id], `${os.hostname()}:${other.pid}`, () => ({ system: 'local', schedName: 'xpr_busy_Other' }));
    const err = await waitForOtherSubmitters(t.project.store, [job.id], Date.now() + 300).catch((e: unknown) => e) as XprError;
    expect(err).toBeInstanceOf(XprError);
    expect(err.message).toContain(`process ${other.pid} on ${os.hostname()} to submit this job: ${job.id}`);
    expect(err.hint).toContain('xpr ls -n busy -s created');
    expect(err.hint).toContain('xpr sync');

    await new Promise((r) => { other.on('exit', r); other.kill(); });
    // Its intent is abandoned now: the job is looked for by name (not found), then submitted once.
    await job.start(ONE_CORE);
    expect((await job.getResults({ timeout: 60 })).result).toEqual([6]);
    expect(await queuedJobs()).toHaveLength(1);
  });
});

/**
 * A driver script: three calls as one array, waits, prints the results. With XPR_TEST_GO set it
 * first does the slow part of making jobs (bundling the code, opening the database), then waits for
 * that file, so that drivers started together really do create and submit their jobs together.
 */
function writeDriver(name: string): string {
  const file = path.join(t.dir, `${name}.mjs`);
  fs.writeFileSync(file, `
    import fs from 'node:fs';
    import { Job, Project } from ${JSON.stringify(path.resolve('dist/src/index.js'))};
    import { bundleModule, locateFunction, runnerBundle } from ${JSON.stringify(path.resolve('dist/src/job/code.js'))};
    import { scale } from ${JSON.stringify(OPS)};
    const project = Project.open();
    const go = process.env.XPR_TEST_GO;
    if (go) {
      await Promise.all([locateFunction(scale, { module: ${JSON.stringify(OPS)}, callerFile: 'driver' }), bundleModule(${JSON.stringify(OPS)}), runnerBundle(), project.store]);
      fs.writeFileSync(go + '.' + process.pid, '');
      while (!fs.existsSync(go)) await new Promise((r) => setTimeout(r, 2));
    }
    const factor = Number(process.env.XPR_TEST_FACTOR ?? 10);
    const calls = [1, 2, 3].map((x) => ({ name: 'pair', fn: scale, module: ${JSON.stringify(OPS)}, args: [[x]], kwargs: { factor }, project }));
    const jobs = await Job.createMany(calls, 'driver');
    await Job.startMany(jobs, { resources: { num_cores: 1, max_time: '5m' } });
    const results = [];
    for (const j of jobs) results.push((await j.getResults({ timeout: 60 })).result);
    console.log('RESULTS', JSON.stringify(results), jobs.map((j) => j.id).join(','));
    await project.close();
  `);
  return file;
}

const runDriver = (file: string, env: NodeJS.ProcessEnv = {}): Promise<DriverRun> => runDriverIn(file, t.dir, { ...t.env, ...env });

const resultsLine = (out: string) => out.split('\n').find((l) => l.startsWith('RESULTS'));

describe('two drivers of the same script started together', () => {
  it('make one set of jobs, submit them once, and all get the same results', async () => {
    const driver = writeDriver('pair');
    // Which driver gets where first varies from run to run: two rounds, each with calls of its own.
    for (const [round, factor] of [10, 100].entries()) {
      const go = path.join(t.dir, `go${round}`);
      const drivers = [1, 2, 3].map(() => runDriver(driver, { XPR_TEST_GO: go, XPR_TEST_FACTOR: String(factor) }));
      // Release them together once every one is loaded and waiting.
      while (fs.readdirSync(t.dir).filter((f) => f.startsWith(`go${round}.`)).length < drivers.length) await new Promise((r) => setTimeout(r, 10));
      fs.writeFileSync(go, '');
      const runs = await Promise.all(drivers);
      for (const r of runs) expect(r.code, r.stderr).toBe(0);
      const lines = runs.map((r) => resultsLine(r.stdout));
      expect(lines[0]).toContain(JSON.stringify([[factor], [2 * factor], [3 * factor]]));
      expect(new Set(lines).size).toBe(1);
      expect(t.project.store.count()).toBe(3 * (round + 1));
      expect(await queuedJobs()).toHaveLength(round + 1);
    }
  });
});

describe('a driver killed right after the submit command returned', () => {
  it('is re-attached by the next run without a second submission', async () => {
    const driver = writeDriver('crash');
    const killed = await runDriver(driver, { XPR_TEST_CRASH_AT: 'after-submit' });
    expect(killed.signal).toBe('SIGKILL');
    expect(t.project.store.list().map((j) => [j.status, j.remoteId])).toEqual([['created', null], ['created', null], ['created', null]]);
    expect(await queuedJobs()).toHaveLength(1);

    const again = await runDriver(driver);
    expect(again.code, again.stderr).toBe(0);
    expect(resultsLine(again.stdout)).toContain('[[10],[20],[30]]');
    expect(await queuedJobs()).toHaveLength(1);
  });
});
