// SQLite's errors, said in terms of the job database a user has: which file, what holds it, and
// what to do. A locked, read-only, full or damaged jobs.db is the user's environment, not a bug in
// xpr, so it becomes an XprError (exit 1 from the CLI, a message without xpr's stack in a script).
import fs from 'node:fs';
import path from 'node:path';
import { XprError } from '../errors.js';

/** The error a user should read for `err`, raised while using the job database `dbPath`. */
export function databaseError(err: unknown, dbPath: string): unknown {
  if (err instanceof XprError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  const dir = path.dirname(dbPath);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    const holders = otherProcessesUsing(dbPath);
    const who = holders.length ? ` (open in ${describeProcesses(holders)})` : '';
    return new XprError(`The job database ${dbPath} is locked by another process${who}, and stayed locked past the wait`, {
      hint: `Let that process finish, or stop it. If no xpr process is running, free the database with: xpr db_unlock`,
      cause: err,
    });
  }
  // A WAL database cannot even be opened without writing its -shm file beside it.
  if (code.startsWith('SQLITE_READONLY') || (code === 'SQLITE_CANTOPEN' && !writable(dir))) {
    return new XprError(`Cannot write the job database ${dbPath}: it is read-only to this process (${err.message})`, {
      hint: `xpr needs write permission on ${dir} and the files in it (SQLite writes jobs.db-wal and jobs.db-shm beside it). ` +
        'Reading works without: xpr ls and xpr logs.',
      cause: err,
    });
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new DamagedDatabaseError(`The job database ${dbPath} is damaged: ${err.message}`, {
      hint: `Every job is still in its dir run_<id> in ${dir}. Rebuild the database from them with: xpr db_rebuild ` +
        '(the damaged file is kept beside it).',
      cause: err,
    });
  }
  if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR')) {
    return new XprError(`Writing the job database ${dbPath} failed: ${err.message}`, {
      hint: `Check the free space and the disk of ${dir} (df -h ${dir}); nothing was half written, so run again once it is fixed.`,
      cause: err,
    });
  }
  return err;
}

/** jobs.db cannot be read as a database: truncated, overwritten, not a database at all. */
export class DamagedDatabaseError extends XprError {}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Pids of the processes that have `file` (or its -wal/-shm) open, as far as this OS tells
 * (Linux's /proc; elsewhere none).
 */
export function processesUsing(file: string): number[] {
  const targets = new Set([file, `${file}-wal`, `${file}-shm`].map((f) => path.resolve(f)));
  const pids: number[] = [];
  let procs: string[];
  try {
    procs = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  for (const pid of procs) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    if (fds.some((fd) => {
      try {
        return targets.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        return false;
      }
    })) pids.push(Number(pid));
  }
  return pids;
}

/** processesUsing, without this process. */
export function otherProcessesUsing(file: string): number[] {
  return processesUsing(file).filter((pid) => pid !== process.pid);
}

/** `process 4711 (node fit.mjs)`, … : what a user needs to find the processes (and stop them). */
export function describeProcesses(pids: readonly number[]): string {
  return pids.map((pid) => {
    let command = '';
    try {
      command = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
        .map((a, i) => (i === 0 ? path.basename(a) : a)).join(' ');
    } catch {
      // Gone meanwhile, or not ours to read: the pid alone still says which.
    }
    if (command.length > 80) command = `${command.slice(0, 77)}...`;
    return `process ${pid}${command ? ` (${command})` : ''}`;
  }).join(', ');
}
