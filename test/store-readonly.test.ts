// The store's read-only open, rebuilding and the project files a rebuild reads, on real files: a
// reader creates nothing and sees every commit; an empty file holds no jobs; restored records come
// back as given; a replaced database keeps the old files beside it; job scripts are read back with
// any job name.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeJobFile, readJobFile } from '../src/store/job-file.js';
import { JobStore, type JobRecord } from '../src/store/jobstore.js';
import { replaceDatabase } from '../src/store/replace.js';
import { parseJobId, readStageDir, readSubmitScripts } from '../src/store/stage-dirs.js';
import { CALL_FILE, SUBMIT_DIR } from '../src/runner/protocol.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-store-ro-'));
  file = path.join(dir, 'jobs.db');
});
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const job = (id: string) => ({ id, name: 'n', hash: `h${id}`, stageDir: path.join(dir, `run_${id}`) });
const listing = () => fs.readdirSync(dir).sort();

describe('JobStore.open(file, { readonly: true })', () => {
  it('creates no file beside the database, and sees what a writer committed in its write-ahead log', () => {
    const w = JobStore.open(file);
    w.insert(job('a'));
    w.close();
    expect(listing()).toEqual(['jobs.db']);
    const r = JobStore.open(file, { readonly: true });
    expect(r.list().map((j) => j.id)).toEqual(['a']);
    expect(r.list()[0]!.stageDir).toBe(path.join(dir, 'run_a'));
    r.close();
    expect(listing()).toEqual(['jobs.db']);
    // A writer at work: its commit is only in its -wal, which the reader reads.
    const raw = new Database(file);
    raw.pragma('wal_autocheckpoint = 0');
    raw.exec(`UPDATE jobs SET status = 'failed'`);
    const r2 = JobStore.open(file, { readonly: true });
    expect(r2.get('a')!.status).toBe('failed');
    r2.close();
    raw.close();
  });

  it('an empty file holds no jobs, and stays empty', () => {
    fs.writeFileSync(file, '');
    const r = JobStore.open(file, { readonly: true });
    expect(r.count()).toBe(0);
    expect(r.listFields({}, ['id', 'stageDir'])).toEqual([]);
    r.close();
    expect(fs.statSync(file).size).toBe(0);
    expect(listing()).toEqual(['jobs.db']);
  });

  it('a missing file is an error naming it; nothing is created', () => {
    expect(() => JobStore.open(file, { readonly: true })).toThrow(file);
    expect(listing()).toEqual([]);
  });
});

describe('rebuilding', () => {
  const record = (id: string, over: Partial<JobRecord> = {}): JobRecord => ({
    id, name: 'n', hash: `h${id}`, hashParts: { code: 'c', args: 'a', inputs: 'i' }, status: 'submitted', system: 'local',
    stageDir: path.join(dir, `run_${id}`), remoteDir: path.join(dir, `run_${id}`), schedName: 'xpr_n_x', remoteId: '7_1',
    remoteStatus: 'queued', remoteReason: null, submitIntent: null, submitOwner: null, createdAt: 1000, updatedAt: 2000,
    info: { arrayIndex: 1 }, ...over,
  });

  it('restore() records every field as given, times included', () => {
    const s = JobStore.open(file);
    const jobs = [record('b', { createdAt: 2 }), record('a', { createdAt: 1, status: 'created', submitIntent: 5, remoteId: null })];
    s.restore(jobs);
    expect(s.list()).toEqual([jobs[1], jobs[0]]);
    expect(s.quickCheck()).toEqual([]);
    s.close();
  });

  it('replaceDatabase keeps the old files beside the new one, renamed together', () => {
    fs.writeFileSync(file, 'damaged');
    fs.writeFileSync(`${file}-wal`, 'its log');
    const { keptAs } = replaceDatabase(file, [record('a')], new Date(Date.UTC(2024, 2, 1, 12, 0, 0)));
    expect(keptAs).toEqual([`${file}.broken-20240301T120000Z`, `${file}.broken-20240301T120000Z-wal`]);
    expect(fs.readFileSync(keptAs[1]!, 'utf8')).toBe('its log');
    expect(listing()).toEqual(['jobs.db', 'jobs.db.broken-20240301T120000Z', 'jobs.db.broken-20240301T120000Z-wal']);
    const s = JobStore.open(file, { readonly: true });
    expect(s.list()).toEqual([record('a')]);
    s.close();
    // A second rebuild in the same second keeps both.
    const again = replaceDatabase(file, [], new Date(Date.UTC(2024, 2, 1, 12, 0, 0)));
    expect(again.keptAs).toEqual([`${file}.broken-20240301T120000Z-2`]);
  });
});

describe('what a stage dir and the job scripts tell', () => {
  it('a job file gives name, hash and parts; without one, the dir name does', () => {
    const id = `fit x_${'A'.repeat(43)}_abcdefgh`;
    const stageDir = path.join(dir, `run_${id}`);
    fs.mkdirSync(stageDir);
    fs.writeFileSync(path.join(stageDir, CALL_FILE), JSON.stringify({ version: 1, code: { file: '../_xpr_code/op-1.mjs' }, export: 'f', args: [] }));
    const old = readStageDir(stageDir);
    expect(old.ok && old.facts).toMatchObject({ name: 'fit x', hash: 'A'.repeat(43), hashParts: {}, identity: 'dir name', info: { codeFile: 'op-1.mjs', export: 'f' } });
    writeJobFile({ id, name: 'fit x', hash: 'H', hashParts: { code: 'c' }, stageDir, info: { outputFiles: ['o.txt'] } });
    expect(readJobFile(stageDir)).toMatchObject({ name: 'fit x', hash: 'H' });
    const now = readStageDir(stageDir);
    expect(now.ok && now.facts).toMatchObject({ name: 'fit x', hash: 'H', hashParts: { code: 'c' }, identity: 'job file', info: { outputFiles: ['o.txt'] } });
    expect(parseJobId('custom')).toBeUndefined();
  });

  it('job scripts: the scheduler directive and every job of an array, whatever its name', () => {
    fs.mkdirSync(path.join(dir, SUBMIT_DIR));
    fs.copyFileSync(path.resolve('test/fixtures/golden/array-local.sh'), path.join(dir, SUBMIT_DIR, 'xpr_fit_AbCdEfGhIj.sh'));
    fs.copyFileSync(path.resolve('test/fixtures/golden/job-pbs.sh'), path.join(dir, SUBMIT_DIR, 'xpr_one.sh'));
    const byJob = readSubmitScripts(dir);
    expect([...byJob.entries()].map(([id, s]) => [id, s.submission.schedName, s.submission.directive, s.index]).sort())
      .toEqual([
        ['a_1', 'xpr_fit_AbCdEfGhIj', '#LOCALQ', 0],
        ["b 'q'_2", 'xpr_fit_AbCdEfGhIj', '#LOCALQ', 1],
        ['c$_3', 'xpr_fit_AbCdEfGhIj', '#LOCALQ', 2],
        ["fit+x 'a' $HOME_abc_12345678", 'xpr_one', '#PBS', 0],
      ]);
  });
});
