// xpr db_rebuild on a real project: jobs run on the built-in local queue (one core, so some finish
// while others wait), jobs.db is truncated mid-run, the database is rebuilt from the stage dirs by
// bin/xpr.js as a real process, and a rerun of the same calls re-attaches to every job — no new
// submission, counted from the local queue's own listing — and gets the same results.
// Needs `npm run build` (the queue and bin/xpr.js run from dist/).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderDbRebuild, type DbRebuildResult } from '../../src/cli/commands/db-rebuild.js';
import { PLAIN } from '../../src/cli/format.js';
import { RemoteError } from '../../src/errors.js';
import { Job } from '../../src/job/job.js';
import type { Project } from '../../src/job/project.js';
import { JOB_FILE } from '../../src/runner/protocol.js';
import { distFile } from '../../src/util/paths.js';
import * as ops from '../fixtures/cli/rebuild-ops.js';
import { holdDatabase } from '../helpers/db-holder.js';
import { cliProject, ONE_CORE, openProject, openStore, until, type CliProject } from './helpers.js';
import { filesUnder } from '../helpers/files.js';

const BIN = path.resolve('bin/xpr.js');
const OPS = path.resolve('test/fixtures/cli/rebuild-ops.js');
/** Long enough for everything between its start and the rerun, so it is still running when jobs.db goes. */
const SLEEP_S = 15;

let p: CliProject;
let projects: Project[];
const prevCores = process.env.XPR_LOCALQ_CORES;
beforeEach(() => {
  // One core: a job that sleeps keeps the next one queued. An unreachable system that also uses the
  // local scheduler: the queue that knows a job's submission tells which system it went to.
  process.env.XPR_LOCALQ_CORES = '1';
  p = cliProject({ systems: { far: { host: 'nowhere.invalid', scheduler: 'local' } } });
  projects = [];
});
afterEach(async () => {
  for (const pr of projects) await pr.close();
  if (prevCores === undefined) delete process.env.XPR_LOCALQ_CORES;
  else process.env.XPR_LOCALQ_CORES = prevCores;
  await p.cleanup();
});

function open(): Project {
  const pr = openProject(p);
  projects.push(pr);
  return pr;
}

function xpr(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: p.dir, env: { ...p.ctx.env, NO_COLOR: '1' }, encoding: 'utf8', input: '' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Submissions the local queue has had (an array counts once), from its own listing. */
function submissions(): number {
  const out = execFileSync(process.execPath, [distFile('localq/main.js'), 'status'], { env: { ...p.ctx.env }, encoding: 'utf8' });
  return new Set(out.split('\n').filter(Boolean).map((l) => l.split(' ')[0]!.split('_')[0])).size;
}

/** Every file under the project dir with its size. */
const files = (dir = p.root): Record<string, number> => filesUnder(dir);

const records = () => {
  const store = openStore(p);
  try {
    return new Map(store.list().map((j) => [j.id, j]));
  } finally {
    store.close();
  }
};

/** The calls of the test's script, made (or re-attached to) in `project`. */
async function calls(project: Project) {
  const make = (name: string, fn: (...a: never[]) => unknown, args: unknown[]) => Job.create({ name, fn, module: OPS, args, project });
  return {
    a: await make('a', ops.double, [1]),
    b: await make('b', ops.double, [2]),
    f: await make('f', ops.fails, ['x']),
    c: await make('c', ops.sleepy, [SLEEP_S]),
    d: await make('d', ops.double, [4]),
    e: await make('e', ops.double, [5]),
  };
}

describe('xpr db_rebuild', () => {
  it('rebuilds a database truncated mid-run; the rerun re-attaches to every job and gets the same results', async () => {
    // The first run: a and b end (one array), f fails, c runs while d waits behind it (one array), e is never started.
    const first = await calls(open());
    await Job.startMany([first.a, first.b], ONE_CORE);
    await first.f.start(ONE_CORE);
    expect((await first.a.getResults()).result).toBe(2);
    expect((await first.b.getResults()).result).toBe(4);
    await expect(first.f.getResults()).rejects.toThrow(RemoteError);
    await Job.startMany([first.c, first.d], ONE_CORE);
    await until('c to start', () => first.c.sync(), (s) => s === 'started');
    const before = records();
    expect([...before.values()].map((j) => `${j.name}:${j.status}`).sort())
      .toEqual(['a:succeeded', 'b:succeeded', 'c:started', 'd:submitted', 'e:created', 'f:failed']);
    const submitted = submissions();
    expect(submitted).toBe(3);

    // A dir staged by an older xpr (no job file), and a dir that is no job's.
    fs.rmSync(path.join(first.d.stageDir, JOB_FILE));
    fs.mkdirSync(path.join(p.root, 'run_not_a_job'));
    // The driver is gone; jobs.db loses its second half.
    for (const pr of projects.splice(0)) await pr.close();
    fs.truncateSync(p.dbPath, Math.floor(fs.statSync(p.dbPath).size / 2));
    const damaged = fs.readFileSync(p.dbPath);
    const broken = xpr(['ls']);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(p.dbPath);
    expect(broken.stderr).toContain('xpr db_rebuild');

    // Refused while another process has the database open: nothing touched.
    const holder = await holdDatabase(p.dbPath, { lock: false });
    const untouched = files();
    try {
      const refused = xpr(['db_rebuild']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`process ${holder.pid}`);
      expect(refused.stderr).toMatch(/in use/);
      expect(files()).toEqual(untouched);
    } finally {
      await holder.release();
    }

    const run = xpr(['db_rebuild', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as DbRebuildResult;
    expect(r.before.state).toBe('damaged');
    expect(r.byStatus).toEqual({ succeeded: 2, failed: 1, started: 1, submitted: 1, created: 1 });
    expect(r.recorded).toBe(6);
    expect(r.toLookUp).toEqual([]);
    expect(r.fromDirName).toBe(1);
    expect(r.problems).toEqual([]);
    expect(r.unreadable).toEqual([{ dir: path.join(p.root, 'run_not_a_job'), reason: expect.stringMatching(/no _xpr_call\.json/) as unknown }]);
    // The damaged file is kept beside the new one, as it was; nothing else is left behind.
    expect(r.keptAs).toEqual([expect.stringMatching(/jobs\.db\.broken-\d{8}T\d{6}Z$/) as unknown]);
    expect(fs.readFileSync(r.keptAs[0]!).equals(damaged)).toBe(true);
    expect(Object.keys(files()).filter((f) => /^jobs\.db/.test(f)).sort()).toEqual(['jobs.db', path.basename(r.keptAs[0]!)]);
    const text = renderDbRebuild(r, PLAIN);
    expect(text).toMatch(/was damaged .*Rebuilt it from the job dirs .*: 6 jobs \(1 created, 1 submitted, 1 started, 2 succeeded, 1 failed\)/s);
    expect(text).toMatch(/Not recorded: 1 dir:\n {2}.*run_not_a_job: it has no _xpr_call\.json/);

    // Each job as it was: identity, status, the system and remote id its queue knows it by.
    const after = records();
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [id, was] of before) {
      const now = after.get(id)!;
      expect({ id, name: now.name, hash: now.hash, status: now.status, stageDir: now.stageDir })
        .toEqual({ id, name: was.name, hash: was.hash, status: was.status, stageDir: was.stageDir });
      // The dir without a job file cannot tell the hash's parts (they only explain a restart miss).
      expect(now.hashParts).toEqual(id === first.d.id ? {} : was.hashParts);
      expect({ system: now.system, remoteId: now.remoteId }).toEqual({ system: was.system, remoteId: was.remoteId });
    }
    expect(xpr(['ls']).stdout).toMatch(/^6 jobs: 1 created, 1 submitted, 1 started, 2 succeeded, 1 failed$/m);

    // A database that can be read is not rebuilt without --force.
    const healthy = files();
    const again = xpr(['db_rebuild']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/can be read \(6 jobs\)/);
    expect(again.stderr).toContain('--force');
    expect(files()).toEqual(healthy);

    // The rerun: every job re-attached (the failed one is found, and run afresh as ever), no new
    // submission but e's, which had never been submitted; the same results.
    const rerun = await calls(open());
    for (const k of ['a', 'b', 'c', 'd', 'e'] as const) {
      expect(rerun[k].reattached, k).toBe(true);
      expect(rerun[k].id).toBe(first[k].id);
    }
    expect(rerun.f.reattached).toBe(false);
    expect(rerun.f.missReason).toContain(`the same call ran as ${first.f.id}`);
    await Job.startMany([rerun.a, rerun.b], ONE_CORE);
    await Job.startMany([rerun.c, rerun.d], ONE_CORE);
    await rerun.e.start(ONE_CORE);
    const results = await Promise.all([rerun.a, rerun.b, rerun.c, rerun.d, rerun.e].map(async (j) => (await j.getResults()).result));
    expect(results).toEqual([2, 4, 'woke', 8, 10]);
    expect(submissions()).toBe(submitted + 1);
  }, 180_000);

  it('queues that cannot say: submitted jobs are recorded to be looked up by name on their system, and the rerun finds them', async () => {
    const project = open();
    const c = await Job.create({ name: 'c', fn: ops.sleepy, module: OPS, args: [8], project });
    const d = await Job.create({ name: 'd', fn: ops.double, module: OPS, args: [4], project });
    await Job.startMany([c, d], ONE_CORE);
    await until('c to start', () => c.sync(), (s) => s === 'started');
    const submitted = submissions();
    for (const pr of projects.splice(0)) await pr.close();
    fs.rmSync(p.dbPath);
    // Rebuilt where `far` cannot be reached and the local queue is another one, which never had them.
    const rebuild = (...args: string[]) => {
      const r = spawnSync(process.execPath, [BIN, 'db_rebuild', '--json', ...args], {
        cwd: p.dir, env: { ...p.ctx.env, XPR_LOCALQ_DIR: path.join(p.dir, 'other-queue') }, encoding: 'utf8',
      });
      return { code: r.status, stderr: r.stderr, result: r.status === 0 || r.status === 3 ? JSON.parse(r.stdout) as DbRebuildResult : undefined };
    };

    // The local queue says no, far cannot be asked: they can only be on far.
    const guessed = rebuild();
    expect(guessed.code, guessed.stderr).toBe(3);
    expect(guessed.result!.byStatus).toEqual({ created: 2 });
    expect(guessed.result!.toLookUp.sort()).toEqual([c.id, d.id].sort());
    expect(guessed.result!.problems).toEqual([expect.objectContaining({ system: 'far', unreachable: true })]);
    expect(renderDbRebuild(guessed.result!, PLAIN)).toMatch(/2 submitted jobs could not be found in a queue .*looks each up by name/);
    const rec = records();
    expect(rec.get(c.id)).toMatchObject({ status: 'created', system: 'far', submitIntent: expect.any(Number) as unknown, submitOwner: null });
    expect(rec.get(c.id)!.schedName).toBe(rec.get(d.id)!.schedName);

    // Two reachable systems with that scheduler, neither knowing them: nothing is written, -S is asked for.
    const config = path.join(p.root, 'config.json');
    const original = fs.readFileSync(config, 'utf8');
    fs.writeFileSync(config, JSON.stringify({ systems: { other: { host: null, scheduler: 'local', rundir: 'other_rundir' } } }));
    const kept = files();
    const undecided = rebuild('--force');
    expect(undecided.code).toBe(1);
    expect(undecided.stderr).toMatch(/Cannot tell which system 2 submitted jobs went to .*nothing was written/);
    expect(undecided.stderr).toMatch(/xpr db_rebuild -S <system> \(one of (local, other|other, local)\)/);
    expect(files()).toEqual(kept);
    fs.writeFileSync(config, original);

    // Named: they are recorded on local, to be looked up there.
    const named = rebuild('--force', '-S', 'local');
    expect(named.code, named.stderr).toBe(0);
    expect(named.result!.toLookUp.sort()).toEqual([c.id, d.id].sort());
    expect(named.result!.keptAs).toHaveLength(1);
    expect(records().get(d.id)).toMatchObject({ status: 'created', system: 'local', submitOwner: null, info: expect.objectContaining({ arrayIndex: 1 }) as unknown });

    // The rerun looks them up on local, as after a crash mid-submit: re-attached, no new submission.
    const rerun = open();
    const c2 = await Job.create({ name: 'c', fn: ops.sleepy, module: OPS, args: [8], project: rerun });
    const d2 = await Job.create({ name: 'd', fn: ops.double, module: OPS, args: [4], project: rerun });
    expect([c2.reattached, d2.reattached]).toEqual([true, true]);
    await Job.startMany([c2, d2], ONE_CORE);
    expect([(await c2.getResults({ timeout: 60 })).result, (await d2.getResults({ timeout: 60 })).result]).toEqual(['woke', 8]);
    expect(submissions()).toBe(submitted);
  }, 120_000);

  it('a lost database: the jobs are recorded again, a stray write-ahead log is kept aside, not replayed', async () => {
    const project = open();
    const made = [await Job.create({ name: 'x', fn: ops.double, module: OPS, args: [1], project }),
      await Job.create({ name: 'y', fn: ops.double, module: OPS, args: [2], project })];
    for (const pr of projects.splice(0)) await pr.close();
    // What a crash leaves when jobs.db itself is then deleted: its write-ahead log.
    const db = new Database(p.dbPath);
    db.pragma('wal_autocheckpoint = 0');
    db.exec('DELETE FROM jobs');
    const wal = fs.readFileSync(`${p.dbPath}-wal`);
    db.close();
    fs.rmSync(p.dbPath);
    fs.writeFileSync(`${p.dbPath}-wal`, wal);

    const run = xpr(['db_rebuild']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^No job database was at .*jobs\.db\.\nRebuilt it from the job dirs in .*: 2 jobs \(2 created\)\./);
    expect(run.stdout).toMatch(/kept beside it: jobs\.db\.broken-\d{8}T\d{6}Z-wal/);
    const rerun = open();
    for (const [i, job] of made.entries()) {
      const again = await Job.create({ name: job.name, fn: ops.double, module: OPS, args: [i + 1], project: rerun });
      expect(again.reattached).toBe(true);
      expect(again.id).toBe(job.id);
    }
  });

  it('no database and no job dirs: nothing to rebuild, nothing made', () => {
    const before = files(p.dir);
    const run = xpr(['db_rebuild']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/no job dirs .*nothing to rebuild, no database made/);
    expect(files(p.dir)).toEqual(before);
  });
});
