// The program a local worker process runs: `node dist/src/executor/worker-main.js`, with its
// settings as JSON (LocalWorkerSettings) in the environment variable XPR_WORKER_SETTINGS — not in
// argv, where the Redis password would show in `ps`. The executor starts N of these per stage.
// SIGTERM or SIGINT: take no new task, let the running one finish within the grace, exit 0.
import { LocalWorker, WORKER_SETTINGS_VARIABLE } from './local-worker.js';
import type { LocalWorkerSettings } from './types.js';

function readSettings(): LocalWorkerSettings {
  const text = process.env[WORKER_SETTINGS_VARIABLE];
  if (!text) throw new Error(`${WORKER_SETTINGS_VARIABLE} is not set: this program is started by the executor`);
  const s = JSON.parse(text) as Partial<LocalWorkerSettings>;
  const cores = s.cores;
  if (typeof s.redisUrl !== 'string' || typeof s.stage !== 'string' ||
    !(cores === 'auto' || (typeof cores === 'number' && Number.isInteger(cores) && cores > 0))) {
    throw new Error(`${WORKER_SETTINGS_VARIABLE} must hold { redisUrl, stage, cores: a positive integer or "auto" }`);
  }
  return s as LocalWorkerSettings;
}

async function main(): Promise<void> {
  // The executor relays this worker's output through pipes. When the executor is killed, the pipes
  // break, and an unhandled EPIPE on the next line logged would kill the worker in the middle of
  // handing its task back to the queue (a relaunch asks it to): a lost line is the lesser harm.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const worker = await LocalWorker.start(readSettings());
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`xpr worker ${process.pid}: ${signal}, finishing the running task\n`);
    worker.stop().then((how) => {
      if (how === 'requeued') process.stderr.write(`xpr worker ${process.pid}: grace over, its task went back to the queue\n`);
      process.exit(0);
    }, (err: unknown) => {
      process.stderr.write(`xpr worker ${process.pid}: ${(err as Error).message}\n`);
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`xpr worker: ${(err as Error).message}\n`);
  process.exit(1);
});
