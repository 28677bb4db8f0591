// Putting a rebuilt jobs.db in place of a damaged or lost one. The new database is written whole
// beside the old one under a temporary name and renamed into place, so that at every moment the
// path holds either the old file or the complete new one; the old file and its -wal/-shm are kept
// beside it, renamed together (`jobs.db.broken-<time>`, `…-wal`, `…-shm`), so that they still belong
// together and nothing a user may want to look at is lost.
import fs from 'node:fs';
import path from 'node:path';
import { JobStore, type JobRecord } from './jobstore.js';

/** The files SQLite keeps for a database, by their suffix on its name. */
const COMPANIONS = ['', '-wal', '-shm', '-journal'] as const;

export interface Replaced {
  /** The old files as renamed (none when there was no database). */
  keptAs: string[];
}

/**
 * Write `jobs` as a new database and put it at `dbPath`, keeping whatever was there beside it.
 * Nothing is left behind on failure: the temporary database goes, and the old files are put back.
 */
export function replaceDatabase(dbPath: string, jobs: readonly JobRecord[], now = new Date()): Replaced {
  const temp = `${dbPath}.rebuild-${process.pid}`;
  removeDatabaseFiles(temp);
  try {
    const store = JobStore.open(temp);
    try {
      store.restore(jobs);
    } finally {
      // The last connection to close folds its write-ahead log back: one file is left to rename.
      store.close();
    }
    takeOwnership(temp, fs.existsSync(dbPath) ? dbPath : path.dirname(dbPath));
    const moved: [string, string][] = [];
    const stamp = freeStamp(dbPath, now);
    try {
      for (const suffix of COMPANIONS) {
        const from = `${dbPath}${suffix}`;
        if (!fs.existsSync(from)) continue;
        const to = `${dbPath}.broken-${stamp}${suffix}`;
        fs.renameSync(from, to);
        moved.push([from, to]);
      }
      fs.renameSync(temp, dbPath);
    } catch (err) {
      for (const [from, to] of moved.reverse()) fs.renameSync(to, from);
      throw err;
    }
    return { keptAs: moved.map(([, to]) => to) };
  } finally {
    removeDatabaseFiles(temp);
  }
}

/**
 * Give the new file the old one's permissions (a project shared by a group stays so) and, when run
 * as root, its owner (or the dir's, when there was none): a jobs.db that root made for a user's
 * project would be read-only to that user.
 */
function takeOwnership(file: string, like: string): void {
  const st = fs.statSync(like);
  if (st.isFile()) fs.chmodSync(file, st.mode & 0o7777);
  if (process.getuid?.() === 0) fs.chownSync(file, st.uid, st.gid);
}

function removeDatabaseFiles(file: string): void {
  for (const suffix of COMPANIONS) fs.rmSync(`${file}${suffix}`, { force: true });
}

/** `20240301T120000Z`, made unique among the kept files of earlier rebuilds. */
function freeStamp(dbPath: string, now: Date): string {
  const base = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  for (let n = 1; ; n++) {
    const stamp = n === 1 ? base : `${base}-${n}`;
    if (COMPANIONS.every((suffix) => !fs.existsSync(`${dbPath}.broken-${stamp}${suffix}`))) return stamp;
  }
}
