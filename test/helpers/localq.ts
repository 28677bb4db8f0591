// Removing a test's project dir while its local queue may still be busy. A driver that stops early
// (an op raised, or the test killed it) leaves its other jobs running, as a cluster would; those
// jobs keep writing into the project's stage dirs, so a plain recursive rm can meet a directory that
// gained a file after it was listed (ENOTEMPTY). The queue is stopped first, then the dir removed.
import fs from 'node:fs';
import path from 'node:path';
import { listTasks, readPid, signalGroup } from '../../src/localq/queue.js';
import { alive } from '../../src/util/processes.js';

/** SIGKILL a queue's dispatcher (so nothing new starts) and every task it started, and wait for them. */
async function stopLocalQueue(qdir: string): Promise<void> {
  let dispatcher: number | undefined;
  try {
    dispatcher = Number.parseInt(fs.readFileSync(path.join(qdir, 'dispatcher.lock'), 'utf8'), 10);
  } catch { /* no dispatcher */ }
  if (dispatcher !== undefined && alive(dispatcher)) process.kill(dispatcher, 'SIGKILL');
  const groups = listTasks(qdir).flatMap((t) => readPid(qdir, t)?.pid ?? []);
  for (const g of groups) signalGroup(g, 'SIGKILL');
  // A zombie counts as ended: init may reap a killed task late, and a zombie writes nothing.
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && groups.some(alive)) await new Promise((r) => setTimeout(r, 50));
}

/** Stop the local queue kept at `<dir>/localq`, then remove `dir`. */
export async function removeProjectDir(dir: string, qdir = path.join(dir, 'localq')): Promise<void> {
  await stopLocalQueue(qdir);
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}
