// SQLite's errors on a real jobs.db, as a user meets them: locked by another process (a real child
// holding a write transaction), damaged, read-only. Each is an XprError naming the file and the way
// forward, never a bare SqliteError.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XprError } from '../src/errors.js';
import { JobStore } from '../src/store/jobstore.js';
import { holdDatabase } from './helpers/db-holder.js';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-store-err-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const job = (id: string) => ({ id, name: 'n', hash: `h${id}`, stageDir: path.join(dir, `run_${id}`) });

describe('the job database in trouble', () => {
  it('locked by another process: an XprError naming the file, the holder and xpr db_unlock', async () => {
    const file = path.join(dir, 'jobs.db');
    JobStore.open(file).close();
    const holder = await holdDatabase(file);
    const prev = process.env.XPR_DB_BUSY_TIMEOUT;
    process.env.XPR_DB_BUSY_TIMEOUT = '300';
    try {
      const store = JobStore.open(file);
      const err = (() => { try { store.insert(job('a')); } catch (e) { return e; } })();
      store.close();
      expect(err).toBeInstanceOf(XprError);
      expect((err as XprError).message).toContain(file);
      expect((err as XprError).message).toContain(`process ${holder.pid}`);
      expect((err as XprError).hint).toContain('xpr db_unlock');
    } finally {
      if (prev === undefined) delete process.env.XPR_DB_BUSY_TIMEOUT;
      else process.env.XPR_DB_BUSY_TIMEOUT = prev;
      await holder.release();
    }
    const store = JobStore.open(file);
    store.insert(job('a'));
    expect(store.list().map((r) => r.id)).toEqual(['a']);
    store.close();
  });

  it('a new file another process is still setting up: opening waits for it instead of failing at once', async () => {
    // Two drivers started together on a fresh project: one holds the new file's write lock while
    // the other switches it to WAL, which SQLite refuses at once, without calling the busy handler.
    const file = path.join(dir, 'jobs.db');
    const holder = await holdDatabase(file, { releaseAfterMs: 400 });
    const t0 = Date.now();
    const store = JobStore.open(file);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    store.insert(job('a'));
    expect(store.list().map((r) => r.id)).toEqual(['a']);
    store.close();
    await holder.release();
  });

  it('damaged: an XprError naming the file and how to record the jobs again', () => {
    const file = path.join(dir, 'jobs.db');
    fs.writeFileSync(file, 'this is not a database, just text that happens to be here\n'.repeat(100));
    const err = (() => { try { JobStore.open(file); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(XprError);
    expect((err as XprError).message).toContain(file);
    expect((err as XprError).message).toMatch(/damaged/);
    expect((err as XprError).hint).toContain('xpr db_rebuild');
  });

  it.runIf(process.getuid?.() === 0)('read-only (a read-only mount, refused even to root): an XprError naming the file and the permission', () => {
    const file = path.join(dir, 'jobs.db');
    JobStore.open(file).close();
    execFileSync('mount', ['--bind', dir, dir]);
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
      const err = (() => { try { JobStore.open(file).insert(job('b')); } catch (e) { return e; } })();
      expect(err).toBeInstanceOf(XprError);
      expect((err as XprError).message).toContain(file);
      expect((err as XprError).message).toMatch(/read-only/);
      expect((err as XprError).hint).toMatch(/write permission/);
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});
