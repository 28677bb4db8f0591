// `xpr db_unlock`: free a job database left stuck by a crashed process. SQLite drops the locks of a
// dead process by itself; what can remain is a write-ahead log that keeps growing or a checkpoint
// that others wait on, so this folds the log back into the database file.
import { XprError } from '../../errors.js';
import { hasDatabase, withView, type CommandContext } from '../common.js';
import type { FormatOptions } from '../format.js';

export type DbUnlockOptions = CommandContext;

export interface DbUnlockResult {
  dbPath: string;
  /** Another process still holds the database (it is in use, not stuck). */
  busy: boolean;
  /** Pages of the write-ahead log folded back. */
  walFrames: number;
}

export async function dbUnlock(opts: DbUnlockOptions = {}): Promise<DbUnlockResult> {
  return withView(opts, (project) => {
    if (!hasDatabase(project)) {
      throw new XprError(`No job database at ${project.paths.dbPath}`, { hint: 'Nothing to unlock; pass --dbfile to name another one.' });
    }
    const { busy, walFrames } = project.store.checkpoint();
    return { dbPath: project.paths.dbPath, busy, walFrames };
  });
}

export function renderDbUnlock(r: DbUnlockResult, _fmt: FormatOptions): string {
  return r.busy
    ? `${r.dbPath} is in use by another process right now (a driver script or xpr command); it is not stuck. Try again when it is done.`
    : `Unlocked ${r.dbPath} (write-ahead log of ${r.walFrames} pages checkpointed).`;
}
