// Running one remote chunk inside its job: the runner calls `runAutoparaCall` for a call spec with
// `invoke: 'autopara'`. The chunk's items go through a pool sized for the node (by default one worker
// per core the job got, EXPYRE_NUM_CORES_PER_NODE, as wfl does), and the results come back aligned
// with the items. Pure: part of the runner bundle.
import os from 'node:os';
import type { CallSpec } from './protocol.js';
import { decode } from '../util/codec.js';
import { callOp, importOp, runInitializer, type InitializerRef, type OpTarget } from './callop.js';
import { runChunksInPool } from './pool.js';
import { chunk, poolSizeFromEnv } from './pool-size.js';

/** Worker processes for a chunk, from the call spec and the job's environment. */
export function jobPoolSize(poolSize: NonNullable<CallSpec['autopara']>['poolSize'], env: NodeJS.ProcessEnv): number {
  if (typeof poolSize === 'number') return poolSize;
  if (poolSize === 'env') {
    const n = poolSizeFromEnv(env);
    if (n !== undefined) return n;
  }
  const cores = Number(env.EXPYRE_NUM_CORES_PER_NODE);
  return Number.isInteger(cores) && cores > 0 ? cores : os.availableParallelism();
}

export async function runAutoparaCall(spec: CallSpec, modulePath: string, workerScript: string): Promise<unknown[]> {
  const ap = spec.autopara;
  if (!ap) throw new Error('xpr runner: an autopara call without its parameters');
  const items = decode(spec.args[0]);
  if (!Array.isArray(items)) throw new Error('xpr runner: an autopara call without a list of items');
  const kwargs = (spec.kwargs === undefined ? {} : decode(spec.kwargs)) as Record<string, unknown>;
  const size = jobPoolSize(ap.poolSize, process.env);
  // The op (and anything it starts) sees the pool size the job actually uses.
  process.env.WFL_NUM_PYTHON_SUBPROCESSES = String(size);
  const target: OpTarget = { module: modulePath, export: spec.export, member: 'op' };
  const initializer: InitializerRef | undefined = ap.initializer
    ? { module: modulePath, export: ap.initializer.export, args: ap.initializer.args.map(decode) }
    : undefined;
  const chunks = chunk(items, ap.numInputsPerSubprocess);
  const results: unknown[][] = new Array<unknown[]>(chunks.length);
  if (size === 0) {
    const op = await importOp(target);
    if (initializer) await runInitializer(initializer);
    for (let i = 0; i < chunks.length; i++) results[i] = await callOp(op, chunks[i]!, kwargs);
  } else {
    await runChunksInPool({ size, target, kwargs, ...(initializer ? { initializer } : {}), workerScript }, chunks, (i, r) => { results[i] = r; });
  }
  return results.flat(1);
}
