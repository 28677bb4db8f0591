// The pool worker: a child process (forked by pool.ts) that imports the op once, runs the
// initializer once, then runs the chunks it is sent, one at a time, in the order they came.
// Pure (node builtins and xpr's pure modules): the job runner bundles it and forks itself as a worker.
//
// A worker dies with its parent. A parent that closes the channel (pool closed) or dies (SIGKILL)
// ends the worker at once: no one is left to take its results. A worker busy in a long synchronous
// computation never sees that event; the pool's reaper (reaper.ts) ends it then.
import { serializeError } from '../util/codec.js';
import { callOp, importOp, runInitializer, type Op } from './callop.js';
import type { FromWorker, ToWorker } from './pool.js';
import { POOL_WORKER_ENV } from './protocol.js';

function send(msg: FromWorker): void {
  process.send?.(msg);
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
}
