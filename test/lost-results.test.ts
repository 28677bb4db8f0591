// Results that are gone or damaged after a job ended, with real jobs: a remote job dir deleted
// between the job's end and the fetch, a truncated result file, a deleted stage dir. Each is a job
// `died` with a named reason (RESULT_MISSING, RESULT_CORRUPT) and a message naming the dir or file,
// and a rerun of the call resubmits it. The "remote" is this machine reached through a transport
// with a home of its own (helpers/home-transport.ts), or a rundir the job is copied to.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { logs } from '../src/cli/commands/logs.js';
import { renderSync, sync } from '../src/cli/commands/sync.js';
import { exitCodeOf } from '../src/cli/exit.js';
import { PLAIN } from '../src/cli/format.js';
import { JobDiedError } from '../src/errors.js';
import { Job } from '../src/job/job.js';
import { Project } from '../src/job/project.js';
import { EXIT_CODE_FILE, RESULT_FILE } from '../src/runner/protocol.js';
import { HomeTransport } from './helpers/home-transport.js';
import * as ops from './fixtures/jobs/ops.js';
import { removeProjectDir } from './helpers/localq.js';

const OPS = path.resolve('test/fixtures/jobs/ops.js');
const ONE_CORE = { resources: { num_cores: 1, max_time: '5m' } };

let dir: string;
let remoteHome: string;
let env: NodeJS.ProcessEnv;
let project: Project;
const saved = process.env.XPR_MISSING_JOB_GRACE;

beforeEach(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-lost-')));
  remoteHome = path.join(dir, 'remote-home');
  fs.mkdirSync(remoteHome);
  fs.mkdirSync(path.join(dir, '_expyre'));
  fs.writeFileSync(path.join(dir, '_expyre', 'config.json'), JSON.stringify({
    systems: {
      // Reached through a transport; the rundir is ExPyRe's default, relative to the remote home.
      far: { host: 'far.example', scheduler: 'local' },
      // This machine, but jobs are copied to a rundir and their files fetched back.
      copied: { host: null, scheduler: 'local', rundir: path.join(dir, 'copied_rundir') },
    },
  }));
  process.env.XPR_LOCALQ_DIR = path.join(dir, 'localq');
  // A long grace period: a job with no files is not declared died for want of them while we look.
  process.env.XPR_MISSING_JOB_GRACE = '600';
  env = { ...process.env, EXPYRE_ROOT: path.join(dir, '_expyre'), HOME: dir };
  project = Project.open({ cwd: dir, env, home: dir, transportFactory: () => new HomeTransport(remoteHome) });
});

afterEach(async () => {
  await project.close();
  if (saved === undefined) delete process.env.XPR_MISSING_JOB_GRACE;
  else process.env.XPR_MISSING_JOB_GRACE = saved;
  await removeProjectDir(dir);
});

const double = (x: number) => Job.create({ name: 'double', fn: ops.scale, module: OPS, args: [[x]], kwargs: { factor: 2 }, project });

/** Wait until the job script has ended in `jobDir` (its exit code is written last), without asking xpr. */
async function scriptEnded(jobDir: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (fs.existsSync(path.join(jobDir, EXIT_CODE_FILE))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the job in ${jobDir} did not end`);
}

async function diedOf(job: Job): Promise<JobDiedError> {
  const err = await job.getResults({ timeout: 60 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(JobDiedError);
  return err as JobDiedError;
}

describe('a remote job dir deleted after the job ended, before its files were fetched', () => {
  it('xpr sync says died (RESULT_MISSING) at once; the error names the remote dir; a rerun resubmits', async () => {
    const job = await double(3);
    await job.start({ ...ONE_CORE, system: 'copied' });
    const remoteDir = job.info.remoteDir!;
    expect(remoteDir.startsWith(path.join(dir, 'copied_rundir'))).toBe(true);
    await scriptEnded(remoteDir);
    fs.rmSync(remoteDir, { recursive: true, force: true });

    const r = await sync({ cwd: dir, env });
    expect(r.synced.find((s) => s.id === job.id)).toMatchObject({ after: 'died', remoteReason: 'RESULT_MISSING' });
    expect(renderSync(r, PLAIN)).toContain(`${job.id}: submitted -> died (RESULT_MISSING)`);

    const err = await diedOf(Job.get(job.id, project));
    expect(err.reason).toBe('RESULT_MISSING');
    expect(err.message).toBe(`Job ${job.id} died (RESULT_MISSING): the scheduler says it ended (COMPLETED), ` +
      `but its job dir copied:${remoteDir} is gone, and its result with it`);
    expect(err.hint).toContain('To run the call again: run it again as it was: it is resubmitted');

    const rerun = await double(3);
    expect(rerun.id).toBe(job.id);
    await rerun.start({ ...ONE_CORE, system: 'copied' });
    expect(rerun.id).not.toBe(job.id);
    expect((await rerun.getResults({ timeout: 60 })).result).toEqual([6]);
  });

  it('over a transport with a relative rundir: named as system:dir, found by getResults', async () => {
    const job = await double(4);
    await job.start({ ...ONE_CORE, system: 'far' });
    const remoteDir = job.info.remoteDir!;
    expect(path.isAbsolute(remoteDir)).toBe(false);
    await scriptEnded(path.join(remoteHome, remoteDir));
    fs.rmSync(path.join(remoteHome, remoteDir), { recursive: true, force: true });

    const t0 = Date.now();
    const err = await diedOf(job);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(err.reason).toBe('RESULT_MISSING');
    expect(err.message).toContain(`its job dir far:${remoteDir} is gone`);
    expect(project.store.get(job.id)).toMatchObject({ status: 'died', remoteReason: 'RESULT_MISSING' });
  });
});

describe('a job declared died for want of files, whose remote dir is then deleted', () => {
  it('is told by xpr sync to have lost its result (RESULT_MISSING), no longer waiting for files', async () => {
    process.env.XPR_MISSING_JOB_GRACE = '0.2';
    const transport = new HomeTransport(remoteHome);
    const lagging = Project.open({ cwd: dir, env, home: dir, transportFactory: () => transport });
    try {
      const job = await Job.create({ name: 'lag', fn: ops.scale, module: OPS, args: [[9]], kwargs: { factor: 2 }, project: lagging });
      await job.start({ ...ONE_CORE, system: 'copied' });
      // A shared file system that shows nothing: the job is declared died with no reason named.
      transport.hide = () => true;
      expect((await diedOf(job)).reason).toBeUndefined();
      fs.rmSync(job.info.remoteDir!, { recursive: true, force: true });

      const r = await sync({ cwd: dir, env });
      expect(r.synced.find((s) => s.id === job.id)).toMatchObject({ before: 'died', after: 'died', remoteReason: 'RESULT_MISSING' });
      expect((await diedOf(Job.get(job.id, project))).message).toContain(`its job dir copied:${job.info.remoteDir} is gone`);
    } finally {
      await lagging.close();
    }
  });
});

describe('a result file that cannot be parsed', () => {
  it('found when the job is judged: died (RESULT_CORRUPT) naming the file; a rerun resubmits', async () => {
    const job = await double(5);
    await job.start(ONE_CORE);
    await scriptEnded(job.stageDir);
    const file = path.join(job.stageDir, RESULT_FILE);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').slice(0, 15));

    const err = await diedOf(job);
    expect(err.reason).toBe('RESULT_CORRUPT');
    expect(err.message).toMatch(new RegExp(`^Job ${job.id} died \\(RESULT_CORRUPT\\): its result file ${escape(file)} cannot be parsed \\(.*JSON.*; 15 bytes\\)$`));
    expect(job.status).toBe('died');

    const rerun = await double(5);
    await rerun.start(ONE_CORE);
    expect(rerun.id).not.toBe(job.id);
    expect((await rerun.getResults({ timeout: 60 })).result).toEqual([10]);
  });

  it('damaged after the job succeeded: the same, instead of a bare SyntaxError', async () => {
    const job = await double(6);
    await job.start(ONE_CORE);
    await job.getResults({ timeout: 60 });
    const file = path.join(job.stageDir, RESULT_FILE);
    fs.writeFileSync(file, '{"ok":true,"val');

    const err = await job.getResults({ timeout: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobDiedError);
    expect((err as JobDiedError).message).toContain(`its result file ${file} cannot be parsed`);
    expect(project.store.get(job.id)).toMatchObject({ status: 'died', remoteReason: 'RESULT_CORRUPT' });
  });
});

describe('a deleted stage dir of a succeeded job', () => {
  it('gives an error with the next step; xpr logs says the dir is gone (exit 1); a rerun resubmits', async () => {
    const job = await double(7);
    await job.start(ONE_CORE);
    await job.getResults({ timeout: 60 });
    fs.rmSync(job.stageDir, { recursive: true, force: true });

    const err = await job.getResults({ timeout: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobDiedError);
    const died = err as JobDiedError;
    expect(died.message).toBe(`Job ${job.id} died (RESULT_MISSING): its stage dir ${job.stageDir} is gone, and its result with it`);
    expect(died.hint).toContain(`run it again as it was: it is resubmitted. Or forget this job: xpr rm -i ${job.id}`);

    const logsErr = await logs({ cwd: dir, env, id: job.id }).catch((e: unknown) => e);
    expect(exitCodeOf(logsErr)).toBe(1);
    expect((logsErr as Error).message).toBe(`The stage dir of job ${job.id} (died) is gone: ${job.stageDir}`);

    const rerun = await double(7);
    await rerun.start(ONE_CORE);
    expect(rerun.id).not.toBe(job.id);
    expect((await rerun.getResults({ timeout: 60 })).result).toEqual([14]);
  });

  it('is resubmitted by the next run at once, before anything waits on it', async () => {
    const job = await double(8);
    await job.start(ONE_CORE);
    await job.getResults({ timeout: 60 });
    fs.rmSync(job.stageDir, { recursive: true, force: true });

    const rerun = await double(8);
    expect(rerun.id).toBe(job.id);
    await rerun.start(ONE_CORE);
    expect(rerun.id).not.toBe(job.id);
    expect(project.store.get(job.id)).toMatchObject({ status: 'died', remoteReason: 'RESULT_MISSING' });
    expect((await rerun.getResults({ timeout: 60 })).result).toEqual([16]);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
