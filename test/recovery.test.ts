// Submission safety: the intent is on disk before the scheduler hears of a job, so a driver that
// dies between the two finds its job again by name instead of submitting it twice. The drivers here
// are real processes killed by xpr's own crash points (XPR_TEST_CRASH_AT), on the local queue.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDriver } from './helpers/driver.js';
import { tempProject, type TempProject } from './helpers/project.js';

const run = promisify(execFile);
const OPS = path.resolve('test/fixtures/jobs/ops.js');
let t: TempProject;
beforeEach(() => { t = tempProject(); });
afterEach(async () => { await t.cleanup(); });

const localqStatus = async () => (await run(process.execPath, [path.resolve('dist/src/localq/main.js'), 'status'], { env: process.env })).stdout;
/** Jobs the local queue holds, one line each. */
const queued = async () => (await localqStatus()).split('\n').filter(Boolean);

/**
 * A driver script making one call, `counted(7)` (which logs each real run), starting it and printing
 * whether it re-attached, the job's remote id and the result.
 */
function countedDriver(): string {
  const file = path.join(t.dir, 'counted.mjs');
  fs.writeFileSync(file, `
    import { Job, Project } from ${JSON.stringify(path.resolve('dist/src/index.js'))};
    import { counted } from ${JSON.stringify(OPS)};
    const project = Project.open();
    const job = await Job.create({ name: 'once', fn: counted, args: [7], module: ${JSON.stringify(OPS)}, project });
    await job.start({ resources: { num_cores: 1, max_time: '5m' } });
    console.log('SUBMITTED', job.reattached, job.info.remoteId);
    const { result } = await job.getResults({ timeout: 60 });
    console.log('RESULT', result);
    await project.close();
  `);
  return file;
}

describe('a driver killed by its crash point between submit and record (after-submit)', () => {
  it('leaves the intent and one queued job; the next run finds the job by its scheduler name and does not submit again', async () => {
    const log = path.join(t.dir, 'runs.log');
    const env = { ...t.env, XPR_TEST_RUN_LOG: log };
    const driver = countedDriver();
    const killed = await runDriver(driver, t.dir, { ...env, XPR_TEST_CRASH_AT: 'after-submit' });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const [left] = t.project.store.list();
    expect(left).toMatchObject({ status: 'created', remoteId: null, system: 'local' });
    expect(left!.submitIntent).not.toBeNull();
    expect(await queued()).toHaveLength(1);

    // The next run of the script: same call, re-attached, found in the queue, not submitted again.
    const again = await runDriver(driver, t.dir, env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^SUBMITTED true \d+$/m);
    expect(again.stdout).toContain('RESULT 8');
    expect(t.project.store.get(left!.id)).toMatchObject({ status: 'succeeded', schedName: left!.schedName, submitIntent: null });
    expect(fs.readFileSync(log, 'utf8')).toBe('7\n');
    expect(await queued()).toHaveLength(1);
  });
});

describe('a driver killed by its crash point after recording the intent, before the submit command (after-intent)', () => {
  it('leaves an intent that never reached the scheduler; the next run looks for it, then submits it once', async () => {
    const log = path.join(t.dir, 'runs.log');
    const env = { ...t.env, XPR_TEST_RUN_LOG: log };
    const driver = countedDriver();
    const killed = await runDriver(driver, t.dir, { ...env, XPR_TEST_CRASH_AT: 'after-intent' });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const [left] = t.project.store.list();
    expect(left).toMatchObject({ status: 'created', remoteId: null });
    expect(left!.submitIntent).not.toBeNull();
    expect(await queued()).toHaveLength(0);

    const again = await runDriver(driver, t.dir, env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^SUBMITTED true \d+$/m);
    expect(again.stdout).toContain('RESULT 8');
    // Submitted under a new name: the lost intent's name is never reused.
    expect(t.project.store.get(left!.id)!.schedName).not.toBe(left!.schedName);
    expect(fs.readFileSync(log, 'utf8')).toBe('7\n');
    expect(await queued()).toHaveLength(1);
  });
});

describe('a driver killed by its crash point before recording the intent (before-intent)', () => {
  it('leaves a created job with no intent; the next run submits it once', async () => {
    const log = path.join(t.dir, 'runs.log');
    const env = { ...t.env, XPR_TEST_RUN_LOG: log };
    const driver = countedDriver();
    const killed = await runDriver(driver, t.dir, { ...env, XPR_TEST_CRASH_AT: 'before-intent' });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const [left] = t.project.store.list();
    expect(left).toMatchObject({ status: 'created', remoteId: null, submitIntent: null });
    expect(await queued()).toHaveLength(0);

    const again = await runDriver(driver, t.dir, env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('RESULT 8');
    expect(fs.readFileSync(log, 'utf8')).toBe('7\n');
    expect(await queued()).toHaveLength(1);
  });
});

// No crash point is on the wait for results, so this driver is killed from outside once it says so.
describe('a driver killed with SIGKILL while it waits for its submitted job', () => {
  it('re-attaches on the next run without a second submission', async () => {
    const log = path.join(t.dir, 'runs.log');
    const driver = path.join(t.dir, 'driver.mjs');
    fs.writeFileSync(driver, `
      import { Job, Project } from ${JSON.stringify(path.resolve('dist/src/index.js'))};
      import { sleepyCount } from ${JSON.stringify(path.resolve('test/fixtures/jobs/slow-ops.js'))};
      const project = Project.open();
      const job = await Job.create({ name: 'slow', fn: sleepyCount, args: [1.5], project });
      await job.start({ resources: { num_cores: 1, max_time: '5m' } });
      console.log('SUBMITTED', job.reattached);
      const { result } = await job.getResults({ timeout: 60 });
      console.log('RESULT', result);
      await project.close();
    `);
    const env = { ...t.env, XPR_TEST_RUN_LOG: log };
    const first = spawn(process.execPath, [driver], { cwd: t.dir, env });
    let stderr = '';
    first.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    await new Promise<void>((resolve, reject) => {
      first.stdout.on('data', (b: Buffer) => { if (b.toString().includes('SUBMITTED')) resolve(); });
      first.on('exit', (code) => reject(new Error(`the driver ended (${code}) before it submitted:\n${stderr}`)));
    });
    first.kill('SIGKILL');
    const second = await run(process.execPath, [driver], { cwd: t.dir, env });
    expect(second.stdout).toContain('SUBMITTED true');
    expect(second.stdout).toContain('RESULT 1.5');
    expect(fs.readFileSync(log, 'utf8')).toBe('ran\n');
    expect((await localqStatus()).trim().split('\n')).toHaveLength(1);
  });
});
