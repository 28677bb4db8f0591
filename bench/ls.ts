// `xpr ls` over 100,000 recorded jobs (the goal is under 0.5 s, so a long campaign lists at a
// glance), timed as a user meets it: the real command in its own process (`node bin/xpr.js ls`,
// output to a pipe). The bare baseline is the least the same answer can cost: a node process that
// reads the same rows with better-sqlite3 and prints them tab-separated.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobStore, type NewJob } from '../src/store/jobstore.js';
import { PACKAGE_ROOT } from '../src/util/paths.js';
import type { Figure } from './measure.js';

const N = 100_000;
const STATUSES = ['processed', 'processed', 'processed', 'succeeded', 'failed', 'died', 'started', 'submitted'] as const;

/** 100,000 jobs as a long autoparallelized run leaves them: most sent to a cluster and done. */
function record(rootDir: string): void {
  const store = JobStore.open(path.join(rootDir, 'jobs.db'));
  const jobs: NewJob[] = Array.from({ length: N }, (_v, i) => {
    const name = `calculate_chunk_${i % 1000}`;
    const id = `${name}_${'h'.repeat(35)}${String(i).padStart(8, '0')}_abcdefgh`;
    return { id, name, hash: `hash${i}`, stageDir: path.join(rootDir, `run_${id}`), status: STATUSES[i % STATUSES.length]! };
  });
  store.insertMany(jobs);
  const ids = jobs.map((j) => j.id);
  for (let i = 0; i < ids.length; i += 1000) {
    store.updateMany(ids.slice(i, i + 1000), { system: 'cluster', remoteId: String(4_000_000 + i), remoteStatus: 'done' });
  }
  store.checkpoint();
  store.close();
}

/** Best wall time of `runs` runs of a command; throws if it fails. */
function bestRun(args: string[], env: NodeJS.ProcessEnv, cwd: string, runs = 5): { ms: number; lines: number } {
  let best = Infinity;
  let lines = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { env, cwd, maxBuffer: 1 << 30, encoding: 'utf8' });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    best = Math.min(best, ms);
    lines = r.stdout.split('\n').length - 1;
  }
  return { ms: best, lines };
}

export async function benchLs(): Promise<Figure[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-bench-ls-'));
  try {
    const rootDir = path.join(dir, '_expyre');
    record(rootDir);
    const env = { ...process.env, EXPYRE_ROOT: rootDir, HOME: dir, NO_COLOR: '1' };
    const xpr = path.join(PACKAGE_ROOT, 'bin', 'xpr.js');
    const sqlite = path.join(PACKAGE_ROOT, 'node_modules', 'better-sqlite3', 'lib', 'index.js');
    const bare = bestRun(['--input-type=module', '-e', [
      `import Database from ${JSON.stringify(sqlite)};`,
      `const db = new Database(${JSON.stringify(path.join(rootDir, 'jobs.db'))}, { readonly: true });`,
      `const rows = db.prepare('SELECT id, status, updated_at, remote_id, system, remote_status FROM jobs ORDER BY created_at, rowid').raw().all();`,
      `process.stdout.write(rows.map((r) => r.join('\\t')).join('\\n') + '\\n');`,
    ].join('\n')], env, dir);
    const short = bestRun([xpr, 'ls'], env, dir);
    const long = bestRun([xpr, 'ls', '-l'], env, dir);
    const filtered = bestRun([xpr, 'ls', '-s', 'ongoing', '-n', 'calculate_chunk_1.*'], env, dir);
    if (short.lines !== N + 2) throw new Error(`xpr ls printed ${short.lines} lines for ${N} jobs`);
    return [
      { name: 'xpr ls, 100,000 jobs (process)', xprMs: short.ms, baselineMs: bare.ms, target: '< 500 ms', ok: short.ms < 500,
        note: 'node bin/xpr.js ls | pipe; bare: node + better-sqlite3 printing rows' },
      { name: 'xpr ls -l, 100,000 jobs (process)', xprMs: long.ms, baselineMs: bare.ms },
      { name: 'xpr ls -s ongoing -n regexp (process)', xprMs: filtered.ms, baselineMs: bare.ms, target: '< 500 ms', ok: filtered.ms < 500 },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
