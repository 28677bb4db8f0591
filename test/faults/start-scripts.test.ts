// The test cluster's start scripts after their daemons were killed: what a machine looks like after
// a session or container ended with the daemons still running. Their pid files stay behind, naming
// dead processes (for a while zombies, where init reaps late), and the next start must neither take
// a stale pid file for the new daemon nor start a second one beside a daemon that is alive but
// slow. mariadbd writes its pid file only once it is ready, seconds after it starts on a loaded
// machine. SIGSTOP stands in for that slowness, so each case is decided by its order of events,
// not by timing.
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { alive } from '../../src/util/processes.js';
import { skipOrFail } from '../cluster/shape.js';
import { ensureSge } from '../contract/backends.js';
import { ensureSlurm, START_SLURM_SCRIPT } from '../cluster/slurm.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const MYSQL_PID = '/run/mysqld/mysqld.pid';
const CTLD_PID = '/run/slurmctld.pid';
const START_SGE = fileURLToPath(new URL('../../scripts/test-cluster/start-sge.sh', import.meta.url));
const SGE_ENV = { ...process.env, SGE_ROOT: '/var/lib/gridengine', SGE_CELL: 'default' };
const QMASTER_PID = '/var/spool/gridengine/qmaster/qmaster.pid';

const unavailable = process.getuid?.() !== 0
  ? 'not root: the start script needs root'
  : spawnSync('sh', ['-c', 'command -v mariadbd || test -x /usr/sbin/mariadbd']).status !== 0
    ? 'mariadbd is not installed (scripts/test-cluster/install.sh installs it)'
    : await ensureSlurm();
skipOrFail('start-slurm.sh fault tests', unavailable);

const sgeUnavailable = process.getuid?.() !== 0
  ? 'not root: the start script needs root'
  : spawnSync('sh', ['-c', 'command -v sge_qmaster || test -x /usr/sbin/sge_qmaster']).status !== 0
    ? 'sge_qmaster is not installed (scripts/test-cluster/install.sh installs it)'
    : await ensureSge(SGE_ENV);
skipOrFail('start-sge.sh fault tests', sgeUnavailable);

/** Pids of the live processes named exactly `name` (zombies left out). */
function pidsNamed(name: string): number[] {
  const r = spawnSync('pgrep', ['-x', name], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number).filter(alive);
}

function pidFile(file: string): number {
  return Number(fs.readFileSync(file, 'utf8').trim());
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

/** Runs a start script as a child; resolves with its exit code and output. */
function startScript(script = START_SLURM_SCRIPT, env = process.env): { done: Promise<{ code: number | null; out: string }> } {
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  return { done: new Promise((resolve) => child.on('close', (code) => resolve({ code, out }))) };
}

/** Waits for a new live process named `name` (not `old`), and SIGSTOPs it for `ms`. */
async function freezeNew(name: string, old: number, ms: number): Promise<number> {
  let fresh: number | undefined;
  for (let i = 0; fresh === undefined && i < 500; i++) {
    fresh = pidsNamed(name).find((p) => p !== old);
    if (fresh === undefined) await sleep(20);
  }
  expect(fresh, `no new ${name} was started`).toBeDefined();
  process.kill(fresh!, 'SIGSTOP');
  await sleep(ms);
  process.kill(fresh!, 'SIGCONT');
  return fresh!;
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
    // Frozen as soon as it exists, for longer than the script's 3-second grace: until it is thawed
    // it has written no pid file, so only the stale one names a mariadbd.
    const fresh = await freezeNew('mariadbd', oldDb, 6_000);

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

describe.skipIf(sgeUnavailable !== undefined)('start-sge.sh after its daemons were killed', () => {
  it('starts sge_qmaster and sge_execd again although their stale pid files name dead processes, and waits for a slow start', async () => {
    const execdPid = fs.readdirSync('/var/spool/gridengine/execd')
      .map((host) => `/var/spool/gridengine/execd/${host}/execd.pid`)
      .find((f) => fs.existsSync(f) && alive(pidFile(f)));
    expect(execdPid, 'no live sge_execd pid file').toBeDefined();
    const oldMaster = await killLeavingPidFile(QMASTER_PID);
    await killLeavingPidFile(execdPid!);

    const script = startScript(START_SGE, SGE_ENV);
    await freezeNew('sge_qmaster', oldMaster, 6_000);
    const { code, out } = await script.done;
    expect(code, out).toBe(0);
    expect(out).toContain('starting sge_qmaster');
    expect(out).toContain('starting sge_execd');
    expect(out).toMatch(/SGE is up/);
    expect(alive(pidFile(QMASTER_PID))).toBe(true);
    expect(pidFile(QMASTER_PID)).not.toBe(oldMaster);
    const { stdout } = await run('qstat', ['-f', '-q', 'all.q'], { env: SGE_ENV, timeout: 30_000 });
    expect(stdout).toMatch(/^all\.q@/m);
  });
});
