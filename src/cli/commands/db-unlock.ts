// `xpr db_unlock`: free a job database left stuck by a crashed process. SQLite drops the locks of a
// dead process by itself; what can remain is a write-ahead log that keeps growing or a checkpoint
// that others wait on, so this folds the log back into the database file.
//
// A database that a live process is writing is not stuck: then this says which process (as far as
// /proc tells) and exits non-zero at once, instead of waiting out the busy timeout for it.
import { XprError } from '../../errors.js';
import { describeProcesses, otherProcessesUsing } from '../../store/db-errors.js';
import { JobStore } from '../../store/jobstore.js';
import { hasDatabase, withView, type CommandContext } from '../common.js';
import type { FormatOptions } from '../format.js';

export type DbUnlockOptions = CommandContext;

export interface DbUnlockResult {
  dbPath: string;
  /** Pages of the write-ahead log folded back. */
  walFrames: number;
}

/**
 * Longest wait for another process's write: a live script's transactions last milliseconds, so a
 * write still going after this is one that holds the database, not one about to end.
 */
const WAIT_FOR_WRITER_MS = 1000;

export async function dbUnlock(opts: DbUnlockOptions = {}): Promise<DbUnlockResult> {
  return withView(opts, (project) => {
    const dbPath = project.paths.dbPath;
    if (!hasDatabase(project)) {
      throw new XprError(`No job database at ${dbPath}`, { hint: 'Nothing to unlock; pass --dbfile to name another one.' });
    }
    const store = JobStore.open(dbPath, { busyTimeoutMs: WAIT_FOR_WRITER_MS });
    let checkpoint: ReturnType<JobStore['checkpoint']>;
    try {
      checkpoint = store.checkpoint();
    } finally {
      store.close();
    }
    if (checkpoint.busy) throw inUse(dbPath);
    return { dbPath, walFrames: checkpoint.walFrames };
  });
}

function inUse(dbPath: string): XprError {
  const holders = otherProcessesUsing(dbPath);
  const who = holders.length ? describeProcesses(holders)
    : 'a process this machine cannot name (another user\'s, or one on another machine sharing the file system)';
  return new XprError(`The job database ${dbPath} is in use: ${who} is writing it right now, so it is not stuck`, {
    hint: 'Let that process finish; xpr commands then go on by themselves. If it hangs, stop it' +
      `${holders.length ? ` (kill ${holders.join(' ')})` : ''}, then run xpr db_unlock again.`,
  });
}

export function renderDbUnlock(r: DbUnlockResult, _fmt: FormatOptions): string {
  return `Unlocked ${r.dbPath} (write-ahead log of ${r.walFrames} pages checkpointed).`;
}
