// The job database: a real SQLite file, and two real processes writing it at once.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobStore, OLDEST_FIRST } from '../src/store/jobstore.js';
import { MIGRATIONS } from '../src/store/migrations.js';
import { expandStatuses } from '../src/store/status.js';

const run = promisify(execFile);
let dir: string;
let dbPath: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-store-'));
  dbPath = path.join(dir, 'sub', 'jobs.db');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const job = (id: string, name = id) => ({ id, name, hash: `h-${id}`, stageDir: `/s/${id}` });

describe('JobStore', () => {
  it('creates the file in WAL mode with indexes and the current schema version', () => {
    JobStore.open(dbPath).close();
    const db = new Database(dbPath, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'").all() as { name: string }[]).map((r) => r.name);
    expect(indexes).toEqual(expect.arrayContaining(['jobs_name', 'jobs_status', 'jobs_system', 'jobs_hash']));
    db.close();
  });

  it('refuses a database from a newer xpr', () => {
    JobStore.open(dbPath).close();
    const db = new Database(dbPath);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    expect(() => JobStore.open(dbPath)).toThrow(/newer than this xpr knows/);
  });

  it('stores names with quotes, $ and SQL verbatim', () => {
    const store = JobStore.open(dbPath);
    const hostile = "x'); DROP TABLE jobs; -- $HOME + a b";
    store.insert(job('j1', hostile));
    expect(store.get('j1')?.name).toBe(hostile);
    expect(store.list({ name: [hostile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')] })).toHaveLength(1);
    expect(store.count()).toBe(1);
    store.close();
  });

  it('filters by anchored regexps, statuses and systems', () => {
    const store = JobStore.open(dbPath);
    store.insertMany([job('a', 'fit'), job('b', 'fit_long'), job('c', 'a+b'), job('d', 'aab')]);
    store.update('b', { status: 'failed', system: 'cluster' });
    expect(store.list({ name: ['fit'] }).map((r) => r.id)).toEqual(['a']);
    expect(store.list({ name: ['fit.*'] }).map((r) => r.id)).toEqual(['a', 'b']);
    expect(store.list({ name: ['a\\+b'] }).map((r) => r.id)).toEqual(['c']);
    expect(store.list({ name: ['a+b'] }).map((r) => r.id)).toEqual(['d']);
    expect(store.list({ status: expandStatuses('ongoing') }).map((r) => r.id)).toEqual(['a', 'c', 'd']);
    expect(store.list({ system: ['cluster'] }).map((r) => r.id)).toEqual(['b']);
    expect(() => store.list({ name: ['('] })).toThrow(/Invalid regular expression/);
    store.close();
  });

  it('changes status only from the expected one (compare-and-set)', () => {
    const store = JobStore.open(dbPath);
    store.insert(job('x'));
    expect(store.update('x', { status: 'submitted' }, ['created'])).toBe(true);
    expect(store.update('x', { status: 'submitted' }, ['created'])).toBe(false);
    expect(store.get('x')?.status).toBe('submitted');
    store.close();
  });

  it('finds the newest re-attachable job by hash', () => {
    const store = JobStore.open(dbPath);
    store.insert({ ...job('old'), hash: 'same' });
    store.update('old', { status: 'failed' });
    expect(store.findByHashes(['same'], ['created', 'succeeded']).get('same')).toBeUndefined();
    store.insert({ ...job('new'), hash: 'same' });
    store.insert({ ...job('newer'), hash: 'same' });
    expect(store.findByHashes(['same', 'other'], ['created', 'succeeded']).get('same')?.id).toBe('newer');
    store.close();
  });

  it('shows stage dirs stored relative to jobs.db as path.join makes them, in rows and in SQL', () => {
    const store = JobStore.open(dbPath);
    const base = path.dirname(dbPath);
    store.insertMany([job('abs'), { ...job('rel'), stageDir: path.join(base, 'run_rel') }]);
    store.close();
    // Stored by hand or by an older xpr: paths the store itself never writes.
    const raw = new Database(dbPath);
    const odd = ['./dot', 'a/../b', 'c//d', 'e/', '.hidden/f', "it's $HOME/g"];
    const insert = raw.prepare("INSERT INTO jobs (id, name, hash, status, stage_dir, created_at, updated_at) VALUES (?, 'n', 'h', 'created', ?, 4e9, 4e9)");
    odd.forEach((dir, i) => insert.run(`odd${i}`, dir));
    raw.close();
    const reader = JobStore.open(dbPath, { readonly: true });
    const expected = ['/s/abs', path.join(base, 'run_rel'), ...odd.map((d) => path.join(base, d))];
    expect(reader.listFields({}, ['stageDir']).map((r) => r[0])).toEqual(expected);
    expect(reader.list().map((r) => r.stageDir)).toEqual(expected);
    expect(reader.aggregate({}, `group_concat(${reader.columnOf('stageDir')}, '|' ORDER BY ${OLDEST_FIRST})`)).toEqual([expected.join('|')]);
    reader.close();
  });

  it('loses nothing when two processes write at once', async () => {
    JobStore.open(dbPath).close();
    const writer = path.resolve('test/fixtures/store/writer.mjs');
    const n = 300;
    const [a, b] = await Promise.all(['A', 'B'].map((tag) => run(process.execPath, [writer, dbPath, tag, String(n)])));
    const store = JobStore.open(dbPath);
    expect(store.count()).toBe(2 * n);
    // Every job was claimed exactly once, by one of the two processes.
    expect(Number(a!.stdout) + Number(b!.stdout)).toBe(2 * n);
    expect(store.count({ status: ['submitted'] })).toBe(2 * n);
    store.close();
  });
});

describe('status filters', () => {
  it('expands groups and rejects unknown names with the valid ones', () => {
    expect(expandStatuses('ongoing,failed')).toEqual(['created', 'submitted', 'started', 'failed']);
    expect(expandStatuses('can_produce_results')).toEqual(['created', 'submitted', 'started', 'succeeded', 'died']);
    expect(expandStatuses('')).toBeUndefined();
    expect(() => expandStatuses('finished')).toThrow(/Unknown job status "finished" \(known: created, .*groups: ongoing, can_produce_results\)/);
  });
});
