// Opening jobs.db for a command that only reads (`xpr ls`, `logs`, `systems`, `watch`). Such a command
// must work where it cannot write — a read-only mount, another user's project — must create nothing,
// and must not wait for, or hold up, a process that is writing.
//
// SQLite alone does not give that. A read-only connection to a WAL database needs the `-shm` file
// beside it and creates it (and an empty `-wal`) when it is missing: in a read-only dir that fails
// (SQLITE_CANTOPEN, tried on a read-only bind mount), elsewhere it leaves two files that a read-only
// connection can never remove. SQLite's `immutable=1` URI parameter would avoid both, but
// better-sqlite3 reads URIs only when SQLITE_USE_URI is set in the environment before its first open
// in the process: a process-wide switch that a library cannot own.
//
// So: when no write-ahead log has content (no `-wal`, or an empty one) and there is no rollback
// journal, every commit is in the main file, and its bytes, read into memory, are the database — no
// file made, no lock taken. A file that changed while it was read (a writer checkpointed meanwhile)
// is read through a connection instead. When a `-wal` has content (a writer is at work, or one died
// before folding it back) only a connection sees those commits; it uses the `-shm` beside it.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { XprError } from '../errors.js';

/** The database at `dbPath` (which must exist), for reading only; see above for how. */
export function openReadOnly(dbPath: string): Database.Database {
  return snapshot(dbPath) ?? connect(dbPath);
}

/** Whether this process may write the database file and create files beside it. */
export function canWrite(dbPath: string): boolean {
  try {
    fs.accessSync(path.dirname(dbPath), fs.constants.W_OK);
    if (fs.existsSync(dbPath)) fs.accessSync(dbPath, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Bytes 18 and 19 of the header: 2 marks a WAL database, 1 one with a rollback journal. */
const FORMAT_OFFSETS = [18, 19] as const;
const MAGIC = 'SQLite format 3\0';

function snapshot(dbPath: string): Database.Database | undefined {
  if (!allInMainFile(dbPath)) return undefined;
  const before = fs.statSync(dbPath, { bigint: true });
  const bytes = fs.readFileSync(dbPath);
  const after = fs.statSync(dbPath, { bigint: true });
  const unchanged = before.ino === after.ino && before.size === after.size && before.mtimeNs === after.mtimeNs &&
    BigInt(bytes.length) === after.size;
  if (!unchanged || !allInMainFile(dbPath)) return undefined;
  // An empty file is an empty database to SQLite (and to a writer, which would make the schema).
  if (bytes.length === 0) return new Database(':memory:');
  // SQLite will not use a WAL database held in memory (SQLITE_CANTOPEN): marked as using a rollback
  // journal, the same pages read as they are. A file that is no database keeps its bytes, and SQLite
  // says so when it is read.
  if (bytes.length >= 100 && bytes.toString('latin1', 0, MAGIC.length) === MAGIC) {
    for (const at of FORMAT_OFFSETS) if (bytes[at] === 2) bytes[at] = 1;
  }
  return new Database(bytes, { readonly: true });
}

/** No commit lives outside the main file: no write-ahead log with content, no rollback journal. */
function allInMainFile(dbPath: string): boolean {
  return sizeOf(`${dbPath}-wal`) === 0 && sizeOf(`${dbPath}-journal`) === 0;
}

function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function connect(dbPath: string): Database.Database {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    // The -wal and -shm are opened at the first read: fail here, where the cause is known.
    db.pragma('user_version', { simple: true });
    return db;
  } catch (err) {
    db.close();
    const code = (err as { code?: unknown }).code;
    if (code === 'SQLITE_CANTOPEN' && !fs.existsSync(`${dbPath}-shm`) && !canWrite(dbPath)) {
      throw new XprError(`Cannot read the job database ${dbPath}: a process that wrote it did not finish ` +
        `(its write-ahead log ${path.basename(dbPath)}-wal is still there), and ${path.dirname(dbPath)} is read-only to this process`, {
        hint: `SQLite needs to write ${path.basename(dbPath)}-shm beside it to read that log. Someone with write permission ` +
          `on ${path.dirname(dbPath)} can fold the log back with: xpr db_unlock`,
        cause: err,
      });
    }
    throw err;
  }
}
