// The pool worker: a child process (forked by pool.ts) that imports the op once, runs the
// initializer once, then runs the chunks it is sent, one at a time, in the order they came.
// Pure (node builtins and xpr's pure modules): the job runner bundles it and forks itself as a worker.
//
// A worker dies with its parent. A parent that closes the channel (pool closed) or dies (SIGKILL)
// ends the worker at once: no one is left to take its results. A worker busy in a long synchronous
// computation never sees that event, so a watchdog thread also checks the parent pid and ends the
// process when the parent is gone.
import { Worker } from 'node:worker_threads';
import { serializeError } from '../util/codec.js';
import { callOp, importOp, runInitializer, type Op } from './callop.js';
import type { FromWorker, ToWorker } from './pool.js';
import { POOL_WORKER_ENV } from './protocol.js';

function send(msg: FromWorker): void {
  process.send?.(msg);
}

/** How often the watchdog looks for the parent, and how long SIGTERM gets before SIGKILL. */
const WATCH_MS = 200;
const TERM_GRACE_MS = 1000;

/**
 * The watchdog: a thread (it runs while the main thread is blocked in an op) that ends this process
 * once its parent is gone (the process is re-parented, so the parent pid changes). SIGTERM first, so
 * an op's handler may tidy up if its thread is free; SIGKILL if the process is still there after that.
 * Eval'd source rather than a file, so it works as well inside the job runner's bundle.
 */
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const { parent, self, watchMs, graceMs } = workerData;
const timer = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(timer);
  try { process.kill(self, 'SIGTERM'); } catch {}
  setTimeout(() => { try { process.kill(self, 'SIGKILL'); } catch {} }, graceMs);
}, watchMs);
`;

function watchParent(): void {
  const parent = process.ppid;
  // Already orphaned (or a parent that is init): nothing to watch for.
  if (parent <= 1) return;
  const watchdog = new Worker(WATCHDOG, {
    eval: true, workerData: { parent, self: process.pid, watchMs: WATCH_MS, graceMs: TERM_GRACE_MS },
  });
  // It must not keep the worker alive, nor take its failure (it cannot really fail) to the op.
  watchdog.unref();
  watchdog.on('error', () => {});
}

export function runPoolWorker(): void {
  // Not inherited by whatever the op starts (a nested job's runner must not turn into a worker).
  delete process.env[POOL_WORKER_ENV];
  let op: Op | undefined;
  let kwargs: Record<string, unknown> = {};
  // Messages arrive while an async op is still running; the chain keeps chunks in order, one at a time.
  let chain: Promise<void> = Promise.resolve();

  const handle = async (msg: ToWorker): Promise<void> => {
    if (msg.type === 'init') {
      try {
        op = await importOp(msg.target);
        kwargs = msg.kwargs;
        if (msg.initializer) await runInitializer(msg.initializer);
        send({ type: 'ready' });
      } catch (err) {
        send({ type: 'initFailed', error: serializeError(err) });
      }
      return;
    }
    if (!op) throw new Error('xpr pool worker: a task came before init');
    try {
      const value = await callOp(op, msg.items, kwargs);
      try {
        send({ type: 'result', id: msg.id, ok: true, value });
      } catch (err) {
        // A result the IPC channel cannot carry (a function, a class with native state).
        send({ type: 'result', id: msg.id, ok: false, error: serializeError(new TypeError(`the op's results cannot be sent back from the worker: ${(err as Error).message}`)) });
      }
    } catch (err) {
      send({ type: 'result', id: msg.id, ok: false, error: serializeError(err) });
    }
  };

  process.on('message', (msg: ToWorker) => {
    chain = chain.then(() => handle(msg));
  });
  // The parent closed the channel (pool closed, or the parent died): nothing more will come, and a
  // result could not be sent back, so chunks still queued or running are not worth finishing.
  process.on('disconnect', () => process.exit(0));
  watchParent();
}
