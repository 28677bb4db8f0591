// Running fixture scripts as real `node` processes in a throw-away project (own _expyre, own local
// queue, own HOME), so stacks, env vars and jobs are all real.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobStore, type JobRecord } from '../../src/store/jobstore.js';
import { removeProjectDir } from '../helpers/localq.js';

export const FIXTURES = path.resolve('test/fixtures/autopara');
export const EXAMPLES = path.resolve('examples');

export interface Sandbox {
  dir: string;
  root: string;
  env: NodeJS.ProcessEnv;
  cleanup(): Promise<void>;
}

export function sandbox(): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-autopara-'));
  const root = path.join(dir, '_expyre');
  fs.mkdirSync(root);
  const env: NodeJS.ProcessEnv = { ...process.env, EXPYRE_ROOT: root, XPR_LOCALQ_DIR: path.join(dir, 'localq'), HOME: dir };
  for (const k of ['WFL_EXPYRE_INFO', 'WFL_NUM_PYTHON_SUBPROCESSES', 'XPR_NUM_SUBPROCESSES', 'WFL_EXPYRE_NO_MARK_PROCESSED']) delete env[k];
  return { dir, root, env, cleanup: () => removeProjectDir(dir) };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runNode(
  args: string[],
  options: {
    cwd: string; env: NodeJS.ProcessEnv;
    onStderr?: (text: string, kill: () => void) => void;
    /** Called once the process is started, with a function that kills it with SIGKILL. */
    onSpawn?: (kill: () => void) => void;
  },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    options.onSpawn?.(() => child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      options.onStderr?.(stderr, () => child.kill('SIGKILL'));
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Lines of stdout parsed as JSON. */
export function jsonLines(out: string): unknown[] {
  return out.split('\n').filter((l) => l.trim().startsWith('{') || l.trim().startsWith('[') || l.trim() === 'null').map((l) => JSON.parse(l) as unknown);
}

export function remoteInfo(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { sys_name: 'local', resources: { num_cores: 1, max_time: '5m' }, ...extra };
}

/** Every job recorded in the sandbox's project (none before the first one is made). */
export function sandboxJobs(box: Sandbox): JobRecord[] {
  const file = path.join(box.root, 'jobs.db');
  if (!fs.existsSync(file)) return [];
  const store = JobStore.open(file);
  try {
    return store.list();
  } finally {
    store.close();
  }
}

/** Run the fixture driver `drive.js` in the sandbox with a call spec. */
export function drive(
  box: Sandbox, spec: Record<string, unknown>, env: Record<string, string> = {},
  onStderr?: (t: string, kill: () => void) => void,
): Promise<RunResult> {
  return runNode([path.join(FIXTURES, 'drive.js')], {
    cwd: box.dir, env: { ...box.env, XPR_TEST_SPEC: JSON.stringify(spec), ...env }, ...(onStderr ? { onStderr } : {}),
  });
}
