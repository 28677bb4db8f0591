// The commands that change jobs — rm, fail_job, reset_status, cancel — and the read-only ones that
// need no running job: db_unlock, systems, config, watch. Jobs are recorded directly in the store.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cancel, renderCancel } from '../../src/cli/commands/cancel.js';
import { config, renderConfig } from '../../src/cli/commands/config.js';
import { dbUnlock, renderDbUnlock } from '../../src/cli/commands/db-unlock.js';
import { failJob, renderFailJob } from '../../src/cli/commands/fail-job.js';
import { renderResetStatus, resetStatus } from '../../src/cli/commands/reset-status.js';
import { renderRm, rm } from '../../src/cli/commands/rm.js';
import { renderSystems, systems } from '../../src/cli/commands/systems.js';
import { renderWatchLine, renderWatchScreen, watch, type WatchSnapshot } from '../../src/cli/commands/watch.js';
import { exitCodeOf, exitCodeOfProblems, UsageError } from '../../src/cli/exit.js';
import { PLAIN } from '../../src/cli/format.js';
import { XprError } from '../../src/errors.js';
import { RemoteError } from '../../src/errors.js';
import { Job } from '../../src/job/job.js';
import { RESULT_FILE } from '../../src/runner/protocol.js';
import { cliProject, openProject, openStore, seed, type CliProject, type Seed } from './helpers.js';

const JOBS: Seed[] = [
  { name: 'done', patch: { status: 'succeeded', system: 'local', remoteId: '1', remoteStatus: 'done' }, dir: true },
  { name: 'bad', patch: { status: 'failed', system: 'local', remoteId: '2', remoteStatus: 'done' }, dir: true },
  { name: 'waiting', dir: true },
  { name: 'running', patch: { status: 'started', system: 'local', remoteId: '999999', remoteStatus: 'running' } },
  { name: 'eaten', patch: { status: 'processed', system: 'local', remoteId: '3', remoteStatus: 'done' } },
];

let p: CliProject;
let ids: string[];
beforeEach(() => {
  p = cliProject({
    systems: {
      other: { host: null, scheduler: 'local', rundir: 'other_rundir', partitions: { std: { num_cores: 2, max_time: null } } },
      far: { host: 'nowhere.invalid', scheduler: 'local' },
    },
  });
  ids = seed(p, JOBS);
});
afterEach(async () => { await p.cleanup(); });

const statuses = () => {
  const store = openStore(p);
  try {
    return Object.fromEntries(store.list().map((j) => [j.name, j.status]));
  } finally {
    store.close();
  }
};

describe('destructive commands refuse to run without a filter', () => {
  const yes = { yes: true };
  it.each([
    ['rm', () => rm({ ...p.ctx, ...yes })],
    ['rm -c', () => rm({ ...p.ctx, ...yes, clean: true })],
    ['fail_job', () => failJob({ ...p.ctx, ...yes })],
    ['reset_status', () => resetStatus({ ...p.ctx, newStatus: 'created' })],
    ['cancel', () => cancel({ ...p.ctx, ...yes })],
    ['rm with empty filters', () => rm({ ...p.ctx, ...yes, name: '', status: [] })],
  ])('%s: usage error (exit 2), nothing changed', async (_what, run) => {
    const before = statuses();
    const err = await run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/needs at least one of -i\/--id, -n\/--name, -s\/--status, -S\/--system/);
    expect(exitCodeOf(err)).toBe(2);
    expect(statuses()).toEqual(before);
  });

  it("accepts -s '*' as a deliberate 'every job'", async () => {
    const r = await resetStatus({ ...p.ctx, status: '*', newStatus: 'processed' });
    expect(r.changed.map((c) => c.name).sort()).toEqual(['bad', 'done', 'running', 'waiting']);
  });
});

describe('xpr rm', () => {
  it('without -c deletes the records and lists the dirs it leaves behind', async () => {
    const r = await rm({ ...p.ctx, name: 'done,bad', yes: true });
    expect(r.removed).toEqual([ids[0], ids[1]]);
    expect(r.kept.map((k) => k.local)).toEqual([path.join(p.root, `run_${ids[0]}`), path.join(p.root, `run_${ids[1]}`)]);
    expect(fs.existsSync(path.join(p.root, `run_${ids[0]}`))).toBe(true);
    const text = p.scrub(renderRm(r, PLAIN));
    expect(text).toContain('Deleted 2 jobs from <tmp>/_expyre/jobs.db.');
    expect(text).toContain('Their job dirs were kept');
    expect(text).toContain(`delete with: rm -rf <tmp>/_expyre/run_${ids[0]} <tmp>/_expyre/run_${ids[1]}`);
    expect(Object.keys(statuses())).toEqual(['waiting', 'running', 'eaten']);
  });

  it('without -c lists remote dirs too', async () => {
    const store = openStore(p);
    store.update(ids[0]!, { system: 'other', remoteDir: '/scratch/x/run_1' });
    store.close();
    const r = await rm({ ...p.ctx, name: 'done', yes: true });
    expect(r.kept).toEqual([{ id: ids[0], local: path.join(p.root, `run_${ids[0]}`), remote: '/scratch/x/run_1', system: 'other' }]);
    expect(renderRm(r, PLAIN)).toContain('other:/scratch/x/run_1');
  });

  it('without -c refuses jobs still running (they would go on unseen)', async () => {
    const err = await rm({ ...p.ctx, status: 'ongoing', yes: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XprError);
    expect((err as XprError).describe()).toMatch(/1 selected job is still submitted or started:\n.*running_.*started on local[\s\S]*xpr rm -c/);
    expect(exitCodeOf(err)).toBe(1);
    expect(Object.keys(statuses())).toHaveLength(5);
  });

  it('-c wipes the stage dirs along with the records', async () => {
    const r = await rm({ ...p.ctx, name: 'done,waiting', clean: true, yes: true });
    expect(r.removed).toEqual([ids[0], ids[2]]);
    expect(r.kept).toEqual([]);
    expect(fs.existsSync(path.join(p.root, `run_${ids[0]}`))).toBe(false);
    expect(fs.existsSync(path.join(p.root, `run_${ids[2]}`))).toBe(false);
  });

  it('-c wipes the job dir on a system that is not in place', async () => {
    const remote = path.join(p.dir, 'other_rundir', 'job_1');
    fs.mkdirSync(remote, { recursive: true });
    const store = openStore(p);
    store.update(ids[1]!, { system: 'other', remoteDir: remote });
    store.close();
    const r = await rm({ ...p.ctx, name: 'bad', clean: true, yes: true });
    expect(r.removed).toEqual([ids[1]]);
    expect(fs.existsSync(remote)).toBe(false);
  });

  it('-c keeps the jobs of a system it cannot reach, and says so (exit 3)', async () => {
    const store = openStore(p);
    store.update(ids[0]!, { system: 'far', remoteDir: 'run_expyre/x/run_1' });
    store.close();
    const r = await rm({ ...p.ctx, name: 'done,bad', clean: true, yes: true });
    expect(r.removed).toEqual([ids[1]]);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ system: 'far', unreachable: true });
    expect(exitCodeOfProblems(r.problems)).toBe(3);
    expect(renderRm(r, PLAIN)).toMatch(/Kept the jobs on far: .*nowhere\.invalid/);
    expect(Object.keys(statuses())).toContain('done');
  });

  it('asks first; no means nothing happens, and with no way to ask it refuses', async () => {
    const questions: string[] = [];
    const no = await rm({ ...p.ctx, name: 'done', confirm: async (q) => { questions.push(q); return false; } });
    expect(no.declined).toBe(true);
    expect(questions[0]).toMatch(/^Delete from the database 1 job\?\n  done_/);
    expect(renderRm(no, PLAIN)).toBe('Nothing deleted.');
    expect(Object.keys(statuses())).toContain('done');
    const yes = await rm({ ...p.ctx, name: 'done', confirm: async () => true });
    expect(yes.removed).toEqual([ids[0]]);
    const err = await rm({ ...p.ctx, name: 'bad' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).describe()).toMatch(/needs confirmation\n  Pass -y\/--yes/);
  });

  it('reports no matching jobs', async () => {
    const r = await rm({ ...p.ctx, name: 'nothing', yes: true });
    expect(renderRm(r, PLAIN)).toBe(`No matching jobs in JobsDB at ${p.dbPath}`);
  });
});

describe('xpr fail_job', () => {
  it('marks jobs failed and leaves a result that says so', async () => {
    const r = await failJob({ ...p.ctx, name: 'done,waiting', yes: true });
    expect(r.failed.map((f) => [f.name, f.from])).toEqual([['done', 'succeeded'], ['waiting', 'created']]);
    expect(statuses()).toMatchObject({ done: 'failed', waiting: 'failed' });
    const result = JSON.parse(fs.readFileSync(path.join(p.root, `run_${ids[0]}`, RESULT_FILE), 'utf8'));
    expect(result).toMatchObject({ ok: false, error: { name: 'JobFailedByUser', message: 'marked failed with xpr fail_job' } });
    expect(renderFailJob(r, PLAIN)).toContain('Marked 2 jobs failed.');
    // Whoever waits on the job gets an error naming the cause.
    const project = openProject(p);
    try {
      const err = await Job.get(ids[0]!, project).getResults().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).message).toMatch(/^JobFailedByUser: marked failed with xpr fail_job/);
    } finally {
      await project.close();
    }
  });

  it('warns that a running job may still run', async () => {
    const r = await failJob({ ...p.ctx, name: 'running', yes: true });
    expect(r.wereRunning).toEqual([ids[3]]);
    expect(renderFailJob(r, PLAIN)).toMatch(/1 of them was submitted or started; the scheduler may still run it/);
  });

  it('skips jobs already failed', async () => {
    const r = await failJob({ ...p.ctx, name: 'bad', yes: true });
    expect(r.matched).toBe(0);
  });
});

describe('xpr reset_status', () => {
  it('sets the status of the selected jobs only', async () => {
    const r = await resetStatus({ ...p.ctx, name: 'eaten,done', newStatus: 'started' });
    expect(r.changed.map((c) => [c.name, c.from])).toEqual([['done', 'succeeded'], ['eaten', 'processed']]);
    expect(statuses()).toEqual({ done: 'started', bad: 'failed', waiting: 'created', running: 'started', eaten: 'started' });
    expect(renderResetStatus(r, PLAIN)).toMatch(/: succeeded -> started\n.*: processed -> started\nSet 2 jobs to started\.$/);
  });

  it('refuses a status that does not exist, or a group', async () => {
    for (const newStatus of ['runing', 'ongoing']) {
      const err = await resetStatus({ ...p.ctx, name: 'done', newStatus }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(new RegExp(`Unknown job status "${newStatus}" \\(known: created, submitted`));
    }
  });
});

describe('xpr cancel (jobs not on a queue)', () => {
  it('marks created jobs failed (CANCELLED) and skips ended ones', async () => {
    const r = await cancel({ ...p.ctx, name: 'waiting,done', yes: true });
    expect(r.unsubmitted).toEqual([ids[2]]);
    expect(r.skipped).toEqual([{ id: ids[0], reason: 'already succeeded' }]);
    expect(statuses()).toMatchObject({ waiting: 'failed', done: 'succeeded' });
    expect(renderCancel(r, PLAIN)).toMatch(/never submitted, marked failed[\s\S]*Cancelled 1 job\./);
  });

  it('reports a system it cannot reach (exit 3)', async () => {
    const store = openStore(p);
    store.update(ids[3]!, { system: 'far' });
    store.close();
    const r = await cancel({ ...p.ctx, name: 'running', yes: true });
    expect(r.problems[0]).toMatchObject({ system: 'far', unreachable: true });
    expect(exitCodeOfProblems(r.problems)).toBe(3);
    expect(statuses().running).toBe('started');
  });
});

describe('xpr db_unlock', () => {
  it('checkpoints the database', async () => {
    const r = await dbUnlock(p.ctx);
    expect(r).toMatchObject({ dbPath: p.dbPath, walFrames: 0 });
    expect(renderDbUnlock(r, PLAIN)).toMatch(/^Unlocked .*jobs\.db/);
  });

  it('says when there is no database', async () => {
    const err = await dbUnlock({ ...p.ctx, dbFile: path.join(p.dir, 'none.db') }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/No job database at .*none\.db/);
    expect(fs.existsSync(path.join(p.dir, 'none.db'))).toBe(false);
  });
});

describe('xpr systems and xpr config', () => {
  it('lists each system with the file it is defined in, and systems only jobs know', async () => {
    const store = openStore(p);
    store.update(ids[4]!, { system: 'retired' });
    store.close();
    const r = await systems(p.ctx);
    const file = path.join(p.root, 'config.json');
    expect(r.systems.map((s) => [s.name, s.source, s.jobs])).toEqual([['other', file, 0], ['far', file, 0], ['local', 'built-in', 3]]);
    expect(r.unconfigured).toEqual([{ name: 'retired', jobs: 1 }]);
    const text = p.scrub(renderSystems(r, PLAIN));
    expect(text).toMatch(/^system +host +scheduler +partitions +rundir +jobs +defined in\n/);
    expect(text).toMatch(/\nother +\(this machine\) +local +std +<tmp>\/other_rundir +0 +<tmp>\/_expyre\/config\.json\n/);
    expect(text).toContain('Not configured, but named by recorded jobs: retired (1 jobs)');
  });

  it('shows every value with its source, filtered by a prefix', async () => {
    const r = await config({ ...p.ctx, prefix: 'systems.other' });
    const file = path.join(p.root, 'config.json');
    expect(r.values).toContainEqual({ key: 'systems.other.rundir', value: path.join(p.dir, 'other_rundir'), source: file });
    expect(r.values).toContainEqual({ key: 'systems.other.max_array_size', value: 1000, source: 'built-in' });
    expect(r.values).toContainEqual({ key: 'systems.other.partitions.std.max_time', value: null, source: file, note: 'no limit' });
    expect(r.values.every((v) => v.key.startsWith('systems.other.'))).toBe(true);
    const text = p.scrub(renderConfig(r, PLAIN));
    expect(text).toMatch(/systems\.other\.scheduler +"local" +<tmp>\/_expyre\/config\.json/);
    expect(text).toContain('config files, merged in this order: <tmp>/_expyre/config.json');
  });
});

describe('xpr watch', () => {
  it('--once: counts by status and the jobs still going', async () => {
    const seen: WatchSnapshot[] = [];
    const s = await watch({ ...p.ctx, status: 'created,succeeded,failed,processed', once: true, now: () => 1_709_294_400, onSnapshot: (x) => seen.push(x) });
    expect(seen).toEqual([s]);
    expect(s.counts).toEqual({ created: 1, succeeded: 1, failed: 1, processed: 1 });
    expect(s.total).toBe(4);
    expect(s.jobs.map((j) => j.name)).toEqual(['waiting']);
    expect(renderWatchLine(s, PLAIN)).toBe('2024-03-01 12:00:00 created=1 succeeded=1 failed=1 processed=1');
    const screen = renderWatchScreen(s, PLAIN);
    expect(screen).toMatch(/^xpr watch: every 5 s, last at 2024-03-01 12:00:00 \(Ctrl-C to stop\)\n4 jobs: created=1/);
    expect(screen).toMatch(/\nwaiting_H+\.\.\. +created +- +-$/);
  });

  it('refuses an interval under one second', async () => {
    const err = await watch({ ...p.ctx, interval: 0.2, once: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
  });

  it('--until-done returns when nothing is submitted or started; an abort stops it', async () => {
    const done = await watch({ ...p.ctx, name: 'done,bad', untilDone: true, interval: 1 });
    expect(done.counts).toEqual({ succeeded: 1, failed: 1 });
    const stop = new AbortController();
    let n = 0;
    const store = openStore(p);
    store.update(ids[3]!, { system: 'far' });
    store.close();
    const last = await watch({ ...p.ctx, name: 'running', interval: 1, signal: stop.signal, onSnapshot: () => { if (++n === 2) stop.abort(); } });
    expect(n).toBe(2);
    // The system of the running job cannot be reached: reported, not fatal.
    expect(last.problems[0]).toMatchObject({ system: 'far', unreachable: true });
    expect(renderWatchLine(last, PLAIN)).toMatch(/started=1 \[far: unreachable\]$/);
  });

  it('shows nothing on an empty project', async () => {
    const s = await watch({ ...p.ctx, dbFile: path.join(p.dir, 'none.db'), once: true });
    expect(s.total).toBe(0);
    expect(renderWatchLine(s, PLAIN)).toMatch(/ no jobs$/);
  });
});
