// The local pool: 10,000 trivial items through xpr's worker pool, against a bare loop
// that sends the same chunks to the same number of forked processes and waits for the replies (no
// op import, no initializer, no crash handling, no ordering). Both include starting the processes.
// A third figure runs the same items through autoparallelize (ConfigSet in, OutputSpec in memory).
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { autoparallelize } from '../src/autopara/autoparallelize.js';
import { runChunksInPool } from '../src/runner/pool.js';
import { chunk } from '../src/runner/pool-size.js';
import { ConfigSet } from '../src/configset/configset.js';
import { distFile, PACKAGE_ROOT } from '../src/util/paths.js';
import { bestOf, type Figure } from './measure.js';

const N = 10_000;
const OPS = path.join(PACKAGE_ROOT, 'bench', 'pool-ops.js');

const BARE_WORKER = `process.on('message', (m) => process.send({ id: m.id, value: m.items }));\n`;

/** Fork `size` bare processes, send every chunk round-robin, wait for every reply. */
async function bareLoop(script: string, size: number, chunks: unknown[][]): Promise<void> {
  const children = Array.from({ length: size }, () => fork(script, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  let left = chunks.length;
  await new Promise<void>((resolve) => {
    for (const c of children) {
      c.on('message', () => { if (--left === 0) resolve(); });
    }
    chunks.forEach((items, id) => children[id % size]!.send({ id, items }));
  });
  await Promise.all(children.map((c) => new Promise((r) => { c.once('exit', r); c.disconnect(); })));
}

export interface PoolFigure extends Figure {
  ratio: number;
}

export async function benchPool(): Promise<PoolFigure[]> {
  const size = Math.max(2, Math.min(4, os.availableParallelism()));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-bench-pool-'));
  const bare = path.join(dir, 'bare-worker.cjs');
  fs.writeFileSync(bare, BARE_WORKER);
  const workerScript = distFile('runner/main.js');
  const items = Array.from({ length: N }, (_v, i) => ({ i }));
  const figures: PoolFigure[] = [];
  try {
    for (const per of [1, 100]) {
      const chunks = chunk(items, per);
      const xprMs = await bestOf(3, () => runChunksInPool(
        { size, target: { module: OPS, export: 'touchAll' }, workerScript }, chunks, () => undefined,
      ));
      const baselineMs = await bestOf(3, () => bareLoop(bare, size, chunks));
      figures.push({
        name: `pool: ${N} items, ${per}/chunk, ${size} workers`, xprMs, baselineMs, ratio: xprMs / baselineMs,
        note: 'incl. starting the workers',
      });
    }
    const { touchAll } = (await import(OPS)) as { touchAll: (items: unknown[]) => unknown[] };
    const calc = autoparallelize(touchAll, { name: 'touchAll', numInputsPerSubprocess: 100, numSubprocesses: size });
    const chunks = chunk(items, 100);
    const xprMs = await bestOf(3, () => calc(new ConfigSet(items), null));
    const baselineMs = await bestOf(3, () => bareLoop(bare, size, chunks));
    figures.push({
      name: `autoparallelize: ${N} items, 100/chunk, ${size} workers`, xprMs, baselineMs, ratio: xprMs / baselineMs,
      note: 'ConfigSet in, OutputSpec in memory',
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return figures;
}
