// What a job script runs with `node` in the job dir: load the call, import the function, run it and
// write the outcome. The result file is written to a temporary name and renamed, so whoever reads
// it sees all of it or nothing. Only node builtins and pure modules: this file is bundled and
// shipped with every job, and the remote needs nothing but `node`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runAutoparaCall } from './chunk.js';
import { runPoolWorker } from './pool-worker.js';
import { decode, encode, serializeError } from '../util/codec.js';
import { CALL_FILE, POOL_WORKER_ENV, RESULT_FILE, type CallResult, type CallSpec } from './protocol.js';

function writeResult(result: CallResult): void {
  const tmp = `${RESULT_FILE}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(result));
  fs.renameSync(tmp, RESULT_FILE);
}

let finished = false;

function fail(err: unknown): void {
  if (finished) return;
  finished = true;
  writeResult({ ok: false, error: serializeError(err) });
  process.stderr.write(`xpr runner: the function failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
}

async function run(): Promise<void> {
  const spec = JSON.parse(fs.readFileSync(CALL_FILE, 'utf8')) as CallSpec;
  const modulePath = 'file' in spec.code ? path.resolve(spec.code.file) : spec.code.path;
  const mod = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
  const fn = mod[spec.export];
  if (typeof fn !== 'function') {
    throw new TypeError(`${modulePath} has no exported function "${spec.export}" (found: ${Object.keys(mod).join(', ') || 'nothing'})`);
  }
  let value: unknown;
  if (spec.invoke === 'autopara') {
    // An autoparallelize chunk: the pool's workers are this same file, started in worker mode.
    value = await runAutoparaCall(spec, modulePath, fileURLToPath(import.meta.url));
  } else {
    const args = (spec.args.map(decode));
    if (spec.kwargs !== undefined) args.push(decode(spec.kwargs));
    value = await (fn as (...a: unknown[]) => unknown)(...args);
  }
  const encoded = encode(value, 'the function\'s result');
  if (finished) return;
  finished = true;
  writeResult({ ok: true, value: encoded });
}

if (process.env[POOL_WORKER_ENV] === '1') {
  runPoolWorker();
} else {
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  run().catch(fail);
}
