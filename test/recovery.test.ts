// Submission safety: the intent is on disk before the scheduler hears of a job, so a driver that
// dies between the two finds its job again by name instead of submitting it twice.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Job } from '../src/job/job.js';
import { renderScript } from '../src/job/script.js';
import { getScheduler } from '../src/schedulers/registry.js';
import { SUBMIT_DIR } from '../src/runner/protocol.js';
import { runnerBundle } from '../src/job/code.js';
import { tempProject, type TempProject } from './helpers/project.js';
import * as ops from './fixtures/jobs/ops.js';

const run = promisify(execFile);
const OPS = path.resolve('test/fixtures/jobs/ops.js');
const ONE_CORE = { resources: { num_cores: 1, max_time: '5m' } };
let t: TempProject;
beforeEach(() => { t = tempProject(); });
afterEach(async () => { await t.cleanup(); });

const localqStatus = async () => (await run(process.execPath, [path.resolve('dist/src/localq/main.js'), 'status'], { env: process.env })).stdout;

describe('a crash between submit and record', () => {
  it('finds the submitted job by its scheduler name and does not submit again', async () => {
    const log = path.join(t.dir, 'runs.log');
    process.env.XPR_TEST_RUN_LOG = log;
    const job = await Job.create({ name: 'once', fn: ops.counted, args: [7], module: OPS, project: t.project });
    // What a driver killed right after `submit` leaves behind: the intent, and a job in the queue.
    const schedName = 'xpr_once_CrashedRun';
    t.project.store.update(job.id, { system: 'local', schedName, submitIntent: Date.now() / 1000, remoteDir: job.stageDir });
    const runner = await runnerBundle();
    fs.mkdirSync(path.join(t.project.stageRoot, '_xpr_code'), { recursive: true });
    fs.writeFileSync(path.join(t.project.stageRoot, '_xpr_code', `runner-${runner.hash}.mjs`), runner.code);
    const script = renderScript({
      scheduler: getScheduler('local'), schedName,
      node: { partitionKey: 'local', partition: 'local', numNodes: 1, numCores: 1, numCoresPerNode: 1, maxTime: 300 },
      jobDirs: [`run_${job.id}`], stdoutFile: `${SUBMIT_DIR}/x.out`, stderrFile: `${SUBMIT_DIR}/x.err`, header: [],
      noDefaultHeader: false, partitionHeader: [], headerExtra: [], commands: [], preCmds: [], postCmds: [], envVars: {},
      nodeCommand: process.execPath, shell: '/bin/bash', runnerHash: runner.hash,
    });
    fs.mkdirSync(path.join(t.project.stageRoot, SUBMIT_DIR), { recursive: true });
    const scriptFile = path.join(t.project.stageRoot, SUBMIT_DIR, `${schedName}.sh`);
    fs.writeFileSync(scriptFile, script);
    await run('bash', ['-c', `cd '${t.project.stageRoot}' && ${getScheduler('local').submitCommand(scriptFile)}`]);

    // The next run of the script: same call, re-attached, started again.
    const again = await Job.create({ name: 'once', fn: ops.counted, args: [7], module: OPS, project: t.project });
    expect(again.id).toBe(job.id);
    await again.start(ONE_CORE);
    expect(again.info.remoteId).toMatch(/^\d+$/);
    expect((await again.getResults({ timeout: 60 })).result).toBe(8);
    expect(fs.readFileSync(log, 'utf8')).toBe('7\n');
    expect((await localqStatus()).trim().split('\n')).toHaveLength(1);
  });

  it('submits a job whose intent was recorded but that never reached the scheduler', async () => {
    const job = await Job.create({ name: 'never', fn: ops.scale, args: [[1]], kwargs: { factor: 2 }, module: OPS, project: t.project });
    t.project.store.update(job.id, { system: 'local', schedName: 'xpr_never_Lost', submitIntent: Date.now() / 1000 });
    await job.start(ONE_CORE);
    expect(job.info.schedName).not.toBe('xpr_never_Lost');
    expect((await job.getResults({ timeout: 60 })).result).toEqual([2]);
  });
});

describe('a driver killed with SIGKILL after submitting', () => {
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
    await new Promise<void>((resolve) => first.stdout.on('data', (b: Buffer) => { if (b.toString().includes('SUBMITTED')) resolve(); }));
    first.kill('SIGKILL');
    const second = await run(process.execPath, [driver], { cwd: t.dir, env });
    expect(second.stdout).toContain('SUBMITTED true');
    expect(second.stdout).toContain('RESULT 1.5');
    expect(fs.readFileSync(log, 'utf8')).toBe('ran\n');
    expect((await localqStatus()).trim().split('\n')).toHaveLength(1);
  });
});
