// The test cluster's start script after its daemons were killed: what a machine looks like after a
// session or container ended with the daemons still running. Their pid files stay behind in /run,
// naming dead processes, and the next start must neither take a stale pid file for the new daemon
// nor start a second one beside a daemon that is alive but slow. mariadbd is the daemon that shows
// it: it writes its pid file only once it is ready, seconds after it starts on a loaded machine.
// SIGSTOP stands in for that slowness, so each case is decided by its order of events, not by timing.
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { skipOrFail } from '../cluster/shape.js';
import { ensureSlurm, START_SLURM_SCRIPT } from '../cluster/slurm.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const MYSQL_PID = '/run/mysqld/mysqld.pid';
const CTLD_PID = '/run/slurmctld.pid';

const unavailable = process.getuid?.() !== 0
  ? 'not root: the start script needs root'
  : spawnSync('sh', ['-c', 'command -v mariadbd || test -x /usr/sbin/mariadbd']).status !== 0
    ? 'mariadbd is not installed (scripts/test-cluster/install.sh installs it)'
    : await ensureSlurm();
skipOrFail('start-slurm.sh fault tests', unavailable);

/** Pids of the running processes named exactly `name`. */
function pidsNamed(name: string): number[] {
  const r = spawnSync('pgrep', ['-x', name], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

function pidFile(file: string): number {
  return Number(fs.readFileSync(file, 'utf8').trim());
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILLs the process its pid file names, and waits until it is gone; the pid file stays. */
async function killLeavingPidFile(file: string): Promise<number> {
  const pid = pidFile(file);
  process.kill(pid, 'SIGKILL');
  for (let i = 0; alive(pid) && i < 100; i++) await sleep(100);
  expect(alive(pid), `pid ${pid} from ${file} still alive`).toBe(false);
  expect(fs.existsSync(file)).toBe(true);
  return pid;
}

/** Runs start-slurm.sh as a child; resolves with its exit code and output. */
function startScript(): { done: Promise<{ code: number | null; out: string }> } {
  const child = spawn('bash', [START_SLURM_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  return { done: new Promise((resolve) => child.on('close', (code) => resolve({ code, out }))) };
}

async function mariadbAnswers(): Promise<boolean> {
  return run('mariadb-admin', ['ping'], { timeout: 10_000 }).then(() => true, () => false);
}

describe.skipIf(unavailable !== undefined)('start-slurm.sh after its daemons were killed', () => {
  beforeAll(async () => {
    expect(await mariadbAnswers()).toBe(true);
  });

  it('starts mariadbd and slurmctld again although their stale pid files name dead processes, and waits for a slow start', async () => {
    const oldDb = await killLeavingPidFile(MYSQL_PID);
    const oldCtld = await killLeavingPidFile(CTLD_PID);

    const script = startScript();
    // Freeze the new mariadbd as soon as it exists, for longer than the script's 3-second grace:
    // until it is thawed it has written no pid file, so only the stale one names a mariadbd.
    let fresh: number | undefined;
    for (let i = 0; fresh === undefined && i < 300; i++) {
      fresh = pidsNamed('mariadbd').find((p) => p !== oldDb);
      if (fresh === undefined) await sleep(20);
    }
    expect(fresh, 'start-slurm.sh started no mariadbd').toBeDefined();
    process.kill(fresh!, 'SIGSTOP');
    await sleep(6_000);
    process.kill(fresh!, 'SIGCONT');

    const { code, out } = await script.done;
    expect(code, out).toBe(0);
    expect(out).toContain('starting mariadbd');
    expect(out).toContain('starting slurmctld');
    expect(out).toMatch(/SLURM is up/);
    expect(pidFile(MYSQL_PID)).toBe(fresh);
    expect(pidsNamed('mariadbd')).toEqual([fresh]);
    expect(pidFile(CTLD_PID)).not.toBe(oldCtld);
    expect(alive(pidFile(CTLD_PID))).toBe(true);
    expect(await mariadbAnswers()).toBe(true);
  });

  it('waits for a mariadbd that is alive but not answering instead of starting a second one', async () => {
    const db = pidFile(MYSQL_PID);
    process.kill(db, 'SIGSTOP');
    let thawed = false;
    try {
      const script = startScript();
      // Longer than the script's first 5-second ping, so that it finds mariadbd alive but silent.
      await sleep(8_000);
      // Still the one mariadbd: a second would die on InnoDB's lock of the same data directory.
      expect(pidsNamed('mariadbd')).toEqual([db]);
      process.kill(db, 'SIGCONT');
      thawed = true;
      const { code, out } = await script.done;
      expect(code, out).toBe(0);
      expect(out).toContain(`mariadbd (pid ${db}) is not answering yet; waiting for it`);
      expect(out).not.toContain('starting mariadbd');
      expect(pidsNamed('mariadbd')).toEqual([db]);
      expect(await mariadbAnswers()).toBe(true);
    } finally {
      if (!thawed) process.kill(db, 'SIGCONT');
    }
  });
});
