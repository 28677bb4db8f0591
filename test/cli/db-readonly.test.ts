// The store reads without writing: the read-only commands (ls, logs, systems, config, watch) beside a
// real process holding a write transaction, on a real read-only mount, on a damaged or missing
// database; the writing ones give exit 1 naming the file and what to do, never 70; db_unlock says who
// holds the database at once instead of waiting. Every case runs bin/xpr.js as a real process and
// checks that nothing was created, lost or left behind.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { holdDatabase, type Holder } from '../helpers/db-holder.js';
import { cliProject, jobRows, openStore, seed, type CliProject, type Seed } from './helpers.js';
import { filesUnder } from '../helpers/files.js';

const BIN = path.resolve('bin/xpr.js');
const asRoot = process.getuid?.() === 0;

const JOBS: Seed[] = [
  { name: 'done', patch: { status: 'succeeded', system: 'local', remoteId: '1', remoteStatus: 'done' }, dir: true },
  { name: 'going', patch: { status: 'started', system: 'local', remoteId: '999999', remoteStatus: 'running' }, dir: true },
  { name: 'waiting', dir: true },
];

let p: CliProject;
let ids: string[];
const holders: Holder[] = [];
beforeEach(() => {
  p = cliProject();
  ids = seed(p, JOBS);
  fs.writeFileSync(path.join(p.root, `run_${ids[0]}`, 'fn.stdout'), 'the answer\n');
});
afterEach(async () => {
  await Promise.all(holders.splice(0).map((h) => h.release()));
  await p.cleanup();
});

/** Run bin/xpr.js in the project; how long it took, in ms. */
function xpr(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: p.dir, env: { ...p.ctx.env, NO_COLOR: '1', ...env }, encoding: 'utf8', input: '', timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

/** Every file under `dir` with its size: what a command must leave as it found. */
const files = filesUnder;

const rows = () => jobRows(p);

const READERS: [string, () => string[], RegExp][] = [
  ['ls', () => ['ls'], /^3 jobs: (1 created, 1 started|2 started), 1 succeeded$/m],
  ['ls -l --json', () => ['ls', '-l', '--json'], /"name": "waiting"/],
  ['logs', () => ['logs', ids[0]!, '-f', 'fn.stdout'], /the answer/],
  ['systems', () => ['systems'], /local/],
  ['config', () => ['config', 'systems.local'], /systems\.local\.scheduler/],
];

describe('read-only commands beside a process holding a write transaction', () => {
  it.each(READERS)('%s answers at once, sees what was committed, creates nothing', async (_name, args, expected) => {
    // The holder commits a change (left in its write-ahead log), then holds the write lock.
    holders.push(await holdDatabase(p.dbPath, { commitFirst: `UPDATE jobs SET status = 'started' WHERE name = 'waiting'` }));
    const before = files(p.root);
    const r = xpr(args(), { XPR_DB_BUSY_TIMEOUT: '20000' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(expected);
    expect(r.ms).toBeLessThan(10_000);
    expect(files(p.root)).toEqual(before);
    if (args()[0] === 'ls' && args().length === 1) expect(r.stdout).toMatch(/2 started/);
  });

  it('watch --once shows the jobs, and the lock as the problem of its refresh (exit 1), not a crash', async () => {
    const holder = await holdDatabase(p.dbPath);
    holders.push(holder);
    const before = files(p.root);
    const r = xpr(['watch', '--once', '--json'], { XPR_DB_BUSY_TIMEOUT: '300' });
    expect(r.code, r.stderr).toBe(1);
    const snap = JSON.parse(r.stdout) as { counts: Record<string, number>; problems: { message: string }[] };
    expect(snap.counts).toEqual({ created: 1, started: 1, succeeded: 1 });
    expect(snap.problems[0]!.message).toContain(p.dbPath);
    expect(snap.problems[0]!.message).toContain(`process ${holder.pid}`);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(files(p.root)).toEqual(before);
  });

  it('a write waits out the busy timeout, then exit 1 naming the file, the holder and db_unlock; nothing changed', async () => {
    const holder = await holdDatabase(p.dbPath);
    holders.push(holder);
    const before = rows();
    const r = xpr(['reset_status', '-n', 'waiting', 'started'], { XPR_DB_BUSY_TIMEOUT: '500' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(p.dbPath);
    expect(r.stderr).toContain(`process ${holder.pid}`);
    expect(r.stderr).toContain('xpr db_unlock');
    expect(r.stderr).not.toMatch(/internal error|This is a bug/);
    await holders.pop()!.release();
    expect(rows()).toEqual(before);
  });

  it('db_unlock says at once that the database is in use, and by which process (exit 1); unlocks once it is free', async () => {
    const holder = await holdDatabase(p.dbPath);
    holders.push(holder);
    const before = files(p.root);
    const r = xpr(['db_unlock']);
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(10_000);
    expect(r.stderr).toMatch(/is in use/);
    expect(r.stderr).toContain(`process ${holder.pid}`);
    expect(r.stderr).toContain(p.dbPath);
    expect(files(p.root)).toEqual(before);
    await holders.pop()!.release();
    const free = xpr(['db_unlock']);
    expect(free.code, free.stderr).toBe(0);
    expect(free.stdout).toMatch(/^Unlocked .*jobs\.db/);
    expect(rows()).toEqual(['done:succeeded', 'going:started', 'waiting:created']);
  });
});

describe('a missing or damaged database', () => {
  it('read-only commands take a missing jobs.db as "no jobs yet" and create nothing', () => {
    fs.rmSync(p.dbPath);
    const before = files(p.dir);
    for (const args of [['ls'], ['systems'], ['watch', '--once'], ['config']]) {
      const r = xpr(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    expect(xpr(['ls']).stdout).toMatch(/^No matching jobs in JobsDB at /);
    expect(files(p.dir)).toEqual(before);
  });

  it.each([
    ['truncated', (f: string) => fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2))],
    ['not a database', (f: string) => fs.writeFileSync(f, 'this is not a database\n'.repeat(300))],
  ])('%s: exit 1 naming the file and xpr db_rebuild, the file left as it was', (_what, damage) => {
    // A database the size of a real one, so that half of it is missing pages.
    const store = openStore(p);
    store.insertMany(Array.from({ length: 300 }, (_v, i) => ({ id: `x${i}`, name: `x${i}`, hash: `h${i}`, stageDir: path.join(p.root, `run_x${i}`) })));
    store.close();
    damage(p.dbPath);
    const bytes = fs.readFileSync(p.dbPath);
    const before = files(p.root);
    for (const args of [['ls'], ['reset_status', '-s', '*', 'created']]) {
      const r = xpr(args);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(p.dbPath);
      expect(r.stderr).toMatch(/damaged/);
      expect(r.stderr).toContain('xpr db_rebuild');
      expect(r.stderr).not.toMatch(/internal error/);
    }
    expect(fs.readFileSync(p.dbPath).equals(bytes)).toBe(true);
    expect(files(p.root)).toEqual(before);
  });
});

describe.runIf(asRoot)('a read-only project (a read-only bind mount, refused even to root)', () => {
  const mountReadOnly = (dir: string) => {
    execFileSync('mount', ['--bind', dir, dir]);
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
    } catch (err) {
      execFileSync('umount', [dir]);
      throw err;
    }
  };
  let mounted = false;
  const readOnly = () => { mountReadOnly(p.root); mounted = true; };
  afterEach(() => {
    if (mounted) execFileSync('umount', [p.root]);
    mounted = false;
  });

  it.each(READERS)('%s works and creates nothing', (_name, args, expected) => {
    const before = files(p.root);
    readOnly();
    const r = xpr(args());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(expected);
    expect(files(p.root)).toEqual(before);
  });

  it('watch --once shows the recorded states and says it cannot refresh them', () => {
    readOnly();
    const r = xpr(['watch', '--once']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/started=1 succeeded=1|created=1 started=1 succeeded=1/);
    expect(r.stdout).toMatch(/read-only/);
  });

  it('a missing jobs.db is "no jobs yet"', () => {
    fs.rmSync(p.dbPath);
    readOnly();
    const r = xpr(['ls']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^No matching jobs/);
    expect(fs.existsSync(p.dbPath)).toBe(false);
  });

  it('writes: exit 1 naming the file and the permission needed; rows unchanged', () => {
    const before = rows();
    const files0 = files(p.root);
    readOnly();
    for (const args of [['reset_status', '-n', 'waiting', 'started'], ['db_unlock'], ['db_rebuild', '--force']]) {
      const r = xpr(args);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(p.dbPath);
      expect(r.stderr).toMatch(/read-only/);
      expect(r.stderr).toMatch(/write permission on/);
      expect(r.stderr).not.toMatch(/internal error/);
    }
    execFileSync('umount', [p.root]);
    mounted = false;
    expect(rows()).toEqual(before);
    expect(files(p.root)).toEqual(files0);
  });

  it('an unfinished write-ahead log with no -shm cannot be read there: exit 1 saying who can fix it, and how', () => {
    // A crashed writer's log: committed pages in jobs.db-wal, then the -shm lost.
    const db = new Database(p.dbPath);
    db.pragma('wal_autocheckpoint = 0');
    db.exec(`UPDATE jobs SET status = 'failed' WHERE name = 'waiting'`);
    const wal = fs.readFileSync(`${p.dbPath}-wal`);
    const main = fs.readFileSync(p.dbPath);
    db.close();
    fs.writeFileSync(p.dbPath, main);
    fs.writeFileSync(`${p.dbPath}-wal`, wal);
    fs.rmSync(`${p.dbPath}-shm`, { force: true });
    const before = files(p.root);
    readOnly();
    const r = xpr(['ls']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(p.dbPath);
    expect(r.stderr).toMatch(/write-ahead log/);
    expect(r.stderr).toContain('xpr db_unlock');
    execFileSync('umount', [p.root]);
    mounted = false;
    expect(files(p.root)).toEqual(before);
    // Writable again, the log is read (and folded back by the first writer).
    expect(xpr(['ls']).stdout).toMatch(/1 failed/);
  });
});
