// Another process using a job database, for real: a child `node` that opens the file with
// better-sqlite3 and, if asked, commits a change and then holds a write transaction (BEGIN
// IMMEDIATE) until released — as a driver script in the middle of a write, or one that hangs there.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

export interface Holder {
  pid: number;
  release(): Promise<void>;
}

/**
 * A child process with `file` open. `lock`: it holds a write transaction. `commitFirst`: SQL it
 * commits before that (left in the write-ahead log: the child never checkpoints while it holds).
 * `releaseAfterMs`: it ends the transaction and closes the file by itself after that long, so a
 * test can block on the file synchronously meanwhile. A new file stays in SQLite's default
 * rollback-journal mode: the child never switches it to WAL, as the first process to open it may not have yet.
 */
export async function holdDatabase(file: string, options: { lock?: boolean; commitFirst?: string; releaseAfterMs?: number } = {}): Promise<Holder> {
  const { lock = true, commitFirst, releaseAfterMs } = options;
  const child = spawn(process.execPath, ['-e', `
    const db = new (require(${JSON.stringify(BETTER_SQLITE3)}))(${JSON.stringify(file)});
    db.pragma('wal_autocheckpoint = 0');
    ${commitFirst ? `db.exec(${JSON.stringify(commitFirst)});` : ''}
    ${lock ? "db.exec('BEGIN IMMEDIATE');" : ''}
    console.log('HOLDING');
    const release = () => { ${lock ? "db.exec('ROLLBACK'); " : ''}db.close(); process.exit(0); };
    ${releaseAfterMs === undefined ? '' : `setTimeout(release, ${releaseAfterMs});`}
    process.stdin.resume();
    process.stdin.on('end', release);
  `], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => { if (b.toString().includes('HOLDING')) resolve(); });
    child.once('exit', (c) => reject(new Error(`database holder exited ${c}`)));
  });
  return {
    pid: child.pid!,
    release: () => new Promise((r) => {
      if (child.exitCode !== null) { r(); return; }
      child.once('exit', () => r());
      child.stdin.end();
    }),
  };
}
