// Pool workers end with the process that started them, even when they are stuck in a synchronous
// op and the parent was SIGKILLed: real processes, a real SIGKILL (the pool is forked from dist/,
// so run `npm run build` first).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { distFile } from '../src/util/paths.js';

const SIZE = 2;
let dir: string;
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function until<T>(what: string, probe: () => T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A driver that starts a pool whose op writes `<pid>.started` and then spins for ever. */
function startDriver(closeAfterStart: boolean) {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-reaper-'));
  fs.writeFileSync(path.join(dir, 'ops.mjs'), `
import fs from 'node:fs';
export function spin(items) {
  fs.writeFileSync(${JSON.stringify(dir)} + '/' + process.pid + '.started', '');
  for (;;) {}
}
export function quick(items) {
  fs.writeFileSync(${JSON.stringify(dir)} + '/' + process.pid + '.started', '');
  return items;
}
`);
  fs.writeFileSync(path.join(dir, 'driver.mjs'), `
import { WorkerPool } from ${JSON.stringify(distFile('runner/pool.js'))};
const pool = await WorkerPool.start({ size: ${SIZE}, target: { module: ${JSON.stringify(path.join(dir, 'ops.mjs'))}, export: ${JSON.stringify(closeAfterStart ? 'quick' : 'spin')} },
  workerScript: ${JSON.stringify(distFile('runner/main.js'))} });
await Promise.all(Array.from({ length: ${SIZE} }, (_v, i) => pool.run([i])));
await pool.close();
console.log('closed');
`);
  const child = spawn(process.execPath, [path.join(dir, 'driver.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, exited, output: () => out };
}

function startedWorkers(): number[] | undefined {
  const pids = fs.readdirSync(dir).filter((f) => f.endsWith('.started')).map((f) => Number(f.split('.')[0]));
  return pids.length === SIZE ? pids : undefined;
}

describe('the pool reaper', () => {
  it('ends workers stuck in a synchronous op when their parent is SIGKILLed', async () => {
    const driver = startDriver(false);
    const workers = await until('both workers to start spinning', startedWorkers);
    expect(workers.every(alive)).toBe(true);
    driver.child.kill('SIGKILL');
    await driver.exited;
    // SIGTERM at once, SIGKILL a second later: well inside the wait.
    await until('the workers to end', () => (workers.some(alive) ? undefined : true));
    expect(workers.filter(alive)).toEqual([]);
  });

  it('kills nothing when the pool closes normally, and the driver exits', async () => {
    const driver = startDriver(true);
    await driver.exited;
    expect(driver.output().trim()).toBe('closed');
    const workers = startedWorkers()!;
    expect(workers).toHaveLength(SIZE);
    expect(workers.filter(alive)).toEqual([]);
    expect(driver.child.exitCode).toBe(0);
  });
});
