// Jobs on a system that is reached through a transport, with its own home and rundir, the way a
// cluster is reached over SSH: a relative rundir resolves against that home, files are staged there
// and fetched back. The "remote" is this machine (see helpers/home-transport.ts) and the scheduler
// is the real local queue, so every job really runs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sync } from '../src/cli/commands/sync.js';
import { rundirExtra } from '../src/config/rundir.js';
import { JobDiedError } from '../src/errors.js';
import { Job } from '../src/job/job.js';
import { Project } from '../src/job/project.js';
import { CODE_DIR, RESULT_FILE } from '../src/runner/protocol.js';
import { HomeTransport } from './helpers/home-transport.js';
import * as ops from './fixtures/jobs/ops.js';
import { removeProjectDir } from './helpers/localq.js';

const OPS = path.resolve('test/fixtures/jobs/ops.js');
const ONE_CORE = { resources: { num_cores: 1, max_time: '5m' } };

let dir: string;
let remoteHome: string;
let env: NodeJS.ProcessEnv;
const opened: Project[] = [];
const saved = { HOSTNAME: process.env.HOSTNAME, XPR_MISSING_JOB_GRACE: process.env.XPR_MISSING_JOB_GRACE };

beforeEach(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-remote-')));
  remoteHome = path.join(dir, 'remote-home');
  fs.mkdirSync(remoteHome);
  fs.mkdirSync(path.join(dir, '_expyre'));
  fs.writeFileSync(path.join(dir, '_expyre', 'config.json'), JSON.stringify({
    systems: {
      // No rundir: ExPyRe's default, `run_expyre` relative to the remote home.
      far: { host: 'far.example', scheduler: 'local' },
      farAbs: { host: 'far.example', scheduler: 'local', rundir: path.join(remoteHome, 'abs_rundir') },
      // This machine, but jobs are copied to a rundir and their files fetched back.
      copied: { host: null, scheduler: 'local', rundir: path.join(dir, 'copied_rundir') },
    },
  }));
  process.env.XPR_LOCALQ_DIR = path.join(dir, 'localq');
  process.env.HOSTNAME = 'submit-host';
  delete process.env.XPR_MISSING_JOB_GRACE;
  env = { ...process.env, EXPYRE_ROOT: path.join(dir, '_expyre'), HOME: dir };
});

afterEach(async () => {
  for (const p of opened.splice(0)) await p.close();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await removeProjectDir(dir);
});

/** The project as one run of a driver script opens it; every host is reached through `transport`. */
function open(transport = new HomeTransport(remoteHome)): { project: Project; transport: HomeTransport } {
  const project = Project.open({ cwd: dir, env, home: dir, transportFactory: () => transport });
  opened.push(project);
  return { project, transport };
}

const create = (project: Project, name: string, args: unknown[], fn: (...a: never[]) => unknown = ops.scale) =>
  Job.create({ name, fn, module: OPS, args, kwargs: fn === ops.scale ? { factor: 2 } : undefined, project });

describe('a system with a host and no rundir (relative run_expyre)', () => {
  it('stages, runs and fetches the first job of a fresh remote home', async () => {
    const { project } = open();
    const job = await create(project, 'first', [[1, 2]]);
    await job.start({ ...ONE_CORE, system: 'far' });
    expect((await job.getResults({ timeout: 60 })).result).toEqual([2, 4]);
    const remoteDir = job.info.remoteDir!;
    expect(path.isAbsolute(remoteDir)).toBe(false);
    expect(remoteDir.startsWith('run_expyre/submit-host-')).toBe(true);
    expect(fs.existsSync(path.join(remoteHome, remoteDir, RESULT_FILE))).toBe(true);
    // The code went into place; nothing is left in a private upload dir.
    const codeDir = path.join(remoteHome, path.dirname(remoteDir), CODE_DIR);
    expect(fs.readdirSync(codeDir).filter((f) => f.startsWith('.incoming'))).toEqual([]);
  });
});

describe('the remote dir recorded at submission', () => {
  it('is where a later run with another HOSTNAME (or none) collects the job', async () => {
    const first = open();
    const job = await create(first.project, 'moved', [[3]]);
    await job.start({ ...ONE_CORE, system: 'farAbs' });
    const recorded = job.info.remoteDir!;
    expect(recorded).toContain('submit-host-');
    await first.project.close();

    delete process.env.HOSTNAME;
    const later = open();
    const again = Job.get(job.id, later.project);
    expect((await again.getResults({ timeout: 60 })).result).toEqual([6]);
    expect(again.status).toBe('succeeded');
    expect(again.info.remoteDir).toBe(recorded);
    // Removing it removes the recorded dir, not one named after this shell's host.
    await again.clean();
    expect(fs.existsSync(recorded)).toBe(false);
  });

  it('fetches the jobs of one rundir in one transfer, and a job recorded elsewhere from its own dir', async () => {
    const { project, transport } = open();
    const system = project.system('farAbs');
    const downloads: { from: string; names: string[] }[] = [];
    const download = transport.download.bind(transport);
    transport.download = (from, names, to) => { downloads.push({ from, names: [...names] }); return download(from, names, to); };
    await system.fetch([
      { id: 'a', remoteDir: system.remoteDirOf('a'), outputFiles: [] },
      { id: 'b', remoteDir: system.remoteDirOf('b'), outputFiles: ['*.xyz'] },
      { id: 'c', remoteDir: '/elsewhere/old-host-_p/run_c', outputFiles: [] },
    ]);
    expect(downloads.map((d) => d.from)).toEqual([system.rundir, '/elsewhere/old-host-_p']);
    expect(downloads[0]!.names).toContain(`run_a/${RESULT_FILE}`);
    expect(downloads[0]!.names).toContain('run_b/*.xyz');
    expect(downloads[1]!.names).toContain(`run_c/${RESULT_FILE}`);
  });

  it('names the project dir after os.hostname() when HOSTNAME is unset', () => {
    expect(rundirExtra({}, '/a/b/_expyre', {})).toBe(`${os.hostname()}-_a_b`);
    expect(rundirExtra({}, '/a/b/_expyre', { HOSTNAME: 'h1' })).toBe('h1-_a_b');
    expect(rundirExtra({ remote_rundir_submit_hostname: 'login' }, '/a/b/_expyre', { HOSTNAME: 'h1' })).toBe('login-_a_b');
  });
});

describe('code files', () => {
  it('are sent again after a first submission that never ran', async () => {
    const { project, transport } = open();
    // The first submission is lost on the way (the connection was refused): its command never ran.
    let refused = 0;
    transport.onExec = async (command, run) => {
      if (command.includes(' submit ') && refused++ === 0) return { code: 255, stdout: '', stderr: 'ssh: connect to host far.example: Connection refused' };
      return run();
    };
    const job = await create(project, 'code', [[4]]);
    await expect(job.start({ ...ONE_CORE, system: 'farAbs' })).rejects.toThrow(/Connection refused/);
    await job.start({ ...ONE_CORE, system: 'farAbs' });
    expect((await job.getResults({ timeout: 60 })).result).toEqual([8]);
  });
});

describe('a job whose files show up late (a lagging shared file system)', () => {
  /** Downloads see nothing until `ms` from now. */
  function lagFor(transport: HomeTransport, ms: number): void {
    const until = Date.now() + ms;
    transport.hide = () => Date.now() < until;
  }

  it('is waited for during the grace period instead of being declared died', async () => {
    process.env.XPR_MISSING_JOB_GRACE = '20';
    const { project, transport } = open();
    const job = await create(project, 'lag', [[5]]);
    await job.start({ ...ONE_CORE, system: 'copied' });
    lagFor(transport, 2500);
    expect((await job.getResults({ timeout: 60 })).result).toEqual([10]);
  });

  it('is judged again by xpr sync after it was declared died', async () => {
    process.env.XPR_MISSING_JOB_GRACE = '0.2';
    const { project, transport } = open();
    const job = await create(project, 'late', [[6]]);
    await job.start({ ...ONE_CORE, system: 'copied' });
    lagFor(transport, 60_000);
    await expect(job.getResults({ timeout: 60 })).rejects.toBeInstanceOf(JobDiedError);
    expect(job.status).toBe('died');

    // The files are there now: sync reaches the rundir with the ordinary transport.
    const r = await sync({ cwd: dir, env });
    expect(r.synced.find((s) => s.id === job.id)).toMatchObject({ before: 'died', after: 'succeeded' });
    expect((await Job.get(job.id, project).getResults({ timeout: 5 })).result).toEqual([12]);
  });

  it('still counts as died at once when the scheduler names a reason', async () => {
    process.env.XPR_MISSING_JOB_GRACE = '600';
    const { project } = open();
    const job = await create(project, 'over', [3], ops.sleepy);
    await job.start({ resources: { num_cores: 1, max_time: 1 }, system: 'copied' });
    const t0 = Date.now();
    const err = await job.getResults({ timeout: 60 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobDiedError);
    expect((err as JobDiedError).reason).toBe('TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
});
