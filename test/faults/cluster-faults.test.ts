// Faults of the cluster and of the machine, against the real SSH + SLURM cluster in a user's shape:
// random kills of the driver, two drivers at once, the scheduler's controller and sshd restarted,
// sshd frozen, the remote disk full, the job database locked or read-only. In every case nothing
// may be submitted twice (SLURM's accounting counts) and the output must equal an undisturbed run's.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStore } from '../../src/store/jobstore.js';
import { closeAllSshConnections } from '../../src/transport/ssh.js';
import { clusterShapeUnavailable, clusterUser, skipOrFail } from '../cluster/shape.js';
import { START_SLURM_SCRIPT } from '../cluster/slurm.js';
import { startSshd, type SshdHandle } from '../cluster/sshd.js';
import { holdDatabase } from '../helpers/db-holder.js';
import { FAULT_ACCOUNT, faultProject, output, remoteEnv, runDriver, submissions, type FaultProject } from './cluster.js';

/** What ran how often, printed at the end for the README's reliability table. */
const faultRuns = new Map<string, string>();

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const unavailable = await clusterShapeUnavailable();
skipOrFail('fault-injection tests', unavailable);

/** A line of a stack trace inside xpr: what a user's own mistake must never print. */
const STACK_FRAME = /^\s+at .*\(.*src\/.*\)$/m;

/** Runs of the driver that the random-kill test makes before it lets one finish. */
const RANDOM_KILLS = 30;

/** Waits until `probe` holds, checking every 100 ms, for at most `ms`. */
async function until(probe: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe.skipIf(unavailable !== undefined)('faults of the driver, the cluster and the machine', () => {
  let sshd: SshdHandle;
  let reference: string;
  const projects: FaultProject[] = [];
  const project = (extraSsh: string[] = []) => {
    const p = faultProject(sshd, FAULT_ACCOUNT, extraSsh);
    projects.push(p);
    return p;
  };

  beforeAll(async () => {
    sshd = await startSshd();
    const clean = project();
    const r = await runDriver(clean, remoteEnv(clean));
    expect(r.code, r.stderr).toBe(0);
    reference = output(clean)!;
    expect(await submissions(clean)).toBe(1);
  }, 180_000);
  afterAll(async () => {
    await closeAllSshConnections();
    await sshd?.stop();
    for (const p of projects) p.cleanup();
    for (const [fault, runs] of faultRuns) console.log(`fault: ${fault}: ${runs}`);
  });

  it(`a 10-chunk call killed with SIGKILL at ${RANDOM_KILLS} random moments: each rerun until done submits nothing twice`, async () => {
    // Ten chunks of one item: one job array of ten. An undisturbed run gives the reference output
    // and the length of a run, over which the kill moments are spread, so that every stage of the
    // call is hit: start-up, hashing, staging, submission, polling, fetching, writing.
    const tenChunks = (p: FaultProject) => remoteEnv(p, { num_inputs_per_queued_job: 1 });
    const clean = project();
    const t0 = Date.now();
    const first = await runDriver(clean, tenChunks(clean));
    const runMs = Date.now() - t0;
    expect(first.code, first.stderr).toBe(0);
    const tenReference = output(clean)!;
    expect(await submissions(clean)).toBe(1);

    let kills = 0;
    let sequences = 0;
    while (kills < RANDOM_KILLS) {
      // One project, run again and again, killed at a random moment each time, until a run ends.
      const p = project();
      for (let runs = 0; ; runs++) {
        const killAfterMs = kills < RANDOM_KILLS ? Math.floor(Math.random() * runMs) : undefined;
        const r = await runDriver(p, tenChunks(p), killAfterMs === undefined ? {} : { killAfterMs });
        if (r.killed && r.code === null) kills++;
        else if (r.code === 0) break;
        else expect.fail(`a run failed on its own (exit ${r.code}):\n${r.stderr}`);
        expect(runs).toBeLessThan(RANDOM_KILLS + 5);
      }
      sequences++;
      expect(output(p)).toBe(tenReference);
      expect(await submissions(p)).toBe(1);
    }
    faultRuns.set('random SIGKILL of the driver', `${kills} kills over ${sequences} calls`);
  }, 900_000);

  it('two drivers of the same script at once: one set of submissions, the same output for both', async () => {
    const p = project();
    // Each driver writes its own output file; the jobs are shared.
    const [a, b] = await Promise.all([runDriver(p, remoteEnv(p)), runDriver(p, remoteEnv(p))]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(output(p)).toBe(reference);
    expect(JSON.parse(a.stdout.trim().split('\n').at(-1)!)).toEqual(JSON.parse(b.stdout.trim().split('\n').at(-1)!));
    expect(await submissions(p)).toBe(1);
  }, 240_000);

  it('slurmctld restarted while the jobs run and xpr polls: the run completes', async () => {
    const p = project();
    let restarted: Promise<void> | undefined;
    const r = await runDriver(p, remoteEnv(p), {
      kwargs: { delayMs: 6000 },
      onStderr: (t) => {
        if (!restarted && t.includes('submitted')) restarted = restartSlurmctld();
      },
    });
    await restarted;
    expect(restarted).toBeDefined();
    expect(r.code, r.stderr).toBe(0);
    expect(output(p)).toBe(reference);
    expect(await submissions(p)).toBe(1);
  }, 300_000);

  it('sshd restarted during the upload: the run completes', async () => {
    const p = project();
    // A large input file in every job makes the upload long enough to be cut.
    const big = path.join(p.dir, 'big.bin');
    fs.writeFileSync(big, Buffer.alloc(40 << 20, 7));
    const remoteRoot = path.join(clusterUser(FAULT_ACCOUNT).home, 'run_expyre');
    let restarted: Promise<void> | undefined;
    const watcher = setInterval(() => {
      // The upload has begun once a run dir of this project exists on the cluster account's side.
      if (restarted || !fs.existsSync(remoteRoot)) return;
      const projectDir = fs.readdirSync(remoteRoot).find((d) => d.endsWith(p.dir.replace(/\//g, '_')));
      if (projectDir && fs.readdirSync(path.join(remoteRoot, projectDir)).some((d) => d.startsWith('run_'))) {
        restarted = sshd.restart();
      }
    }, 20);
    try {
      const r = await runDriver(p, remoteEnv(p, { input_files: ['big.bin'] }));
      await restarted;
      expect(restarted).toBeDefined();
      expect(r.code, r.stderr).toBe(0);
    } finally {
      clearInterval(watcher);
    }
    expect(output(p)).toBe(reference);
    expect(await submissions(p)).toBe(1);
  }, 300_000);

  it('sshd frozen (SIGSTOP) while xpr polls: detected, then it reconnects once sshd goes on', async () => {
    const p = project(['ServerAliveInterval 1', 'ServerAliveCountMax 3']);
    let frozen: Promise<void> | undefined;
    const r = await runDriver(p, remoteEnv(p), {
      kwargs: { delayMs: 4000 },
      onStderr: (t) => {
        if (frozen || !t.includes('submitted')) return;
        frozen = (async () => {
          sshd.signal('SIGSTOP');
          await sleep(8000);
          sshd.signal('SIGCONT');
        })();
      },
    });
    await frozen;
    expect(frozen).toBeDefined();
    expect(r.code, r.stderr).toBe(0);
    expect(output(p)).toBe(reference);
    expect(await submissions(p)).toBe(1);
  }, 300_000);

  it('sshd frozen for good: a clear error after the timeout, never a hang; a rerun completes', async () => {
    const p = project(['ServerAliveInterval 1', 'ServerAliveCountMax 3', 'ConnectTimeout 3']);
    let frozen = false;
    const t0 = Date.now();
    let first = '';
    try {
      const r = await runDriver(p, remoteEnv(p), {
        kwargs: { delayMs: 4000 },
        onStderr: (t) => {
          if (frozen || !t.includes('submitted')) return;
          frozen = true;
          sshd.signal('SIGSTOP');
        },
      });
      first = r.stderr;
      expect(frozen).toBe(true);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(FAULT_ACCOUNT);
      expect(r.stderr).not.toMatch(STACK_FRAME);
      expect(Date.now() - t0).toBeLessThan(150_000);
    } finally {
      sshd.signal('SIGCONT');
    }
    // The same call again (the same arguments, so the same jobs).
    const again = await runDriver(p, remoteEnv(p), { kwargs: { delayMs: 4000 } });
    expect(again.code, again.stderr).toBe(0);
    expect(output(p)).toBe(reference);
    expect(await submissions(p), `frozen run:\n${first}\nrerun:\n${again.stderr}`).toBe(1);
  }, 300_000);

  it('remote disk full: a clear error naming the system and dir, nothing submitted; a rerun after freeing space completes', async () => {
    const p = project();
    const user = clusterUser(FAULT_ACCOUNT);
    const rundir = path.join(user.home, 'run_expyre');
    fs.mkdirSync(rundir, { recursive: true });
    const owner = spawnSync('id', ['-u', FAULT_ACCOUNT], { encoding: 'utf8' }).stdout.trim();
    const group = spawnSync('id', ['-g', FAULT_ACCOUNT], { encoding: 'utf8' }).stdout.trim();
    await run('mount', ['-t', 'tmpfs', '-o', `size=16k,uid=${owner},gid=${group},mode=0755`, 'tmpfs', rundir]);
    try {
      const r = await runDriver(p, remoteEnv(p));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/No space left on device/);
      expect(r.stderr).toContain('"cluster"');
      expect(r.stderr).toContain('run_expyre/');
      expect(r.stderr).not.toMatch(STACK_FRAME);
      expect(await submissions(p)).toBe(0);
    } finally {
      await run('umount', [rundir]);
    }
    const again = await runDriver(p, remoteEnv(p));
    expect(again.code, again.stderr).toBe(0);
    expect(output(p)).toBe(reference);
    expect(await submissions(p)).toBe(1);
  }, 240_000);

  it('jobs.db locked by another process\'s write transaction: a clear error naming the file and xpr db_unlock', async () => {
    const p = project();
    const dbFile = path.join(p.dir, '_expyre', 'jobs.db');
    JobStore.open(dbFile).close();
    const holder = await holdDatabase(dbFile);
    try {
      const r = await runDriver(p, { ...remoteEnv(p), XPR_DB_BUSY_TIMEOUT: '2000' });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(dbFile);
      expect(r.stderr).toContain('xpr db_unlock');
      expect(r.stderr).not.toMatch(STACK_FRAME);
    } finally {
      await holder.release();
    }
    const again = await runDriver(p, remoteEnv(p));
    expect(again.code, again.stderr).toBe(0);
    expect(output(p)).toBe(reference);
    expect(await submissions(p)).toBe(1);
  }, 240_000);

  it('a read-only project dir: a clear error naming jobs.db, no stack trace, nothing made', async () => {
    const p = project();
    const expyre = path.join(p.dir, '_expyre');
    JobStore.open(path.join(expyre, 'jobs.db')).close();
    const before = fs.readdirSync(expyre).sort();
    // A read-only bind mount: refused even to root, as a read-only project is to its user.
    await run('mount', ['--bind', expyre, expyre]);
    try {
      await run('mount', ['-o', 'remount,bind,ro', expyre]);
      const r = await runDriver(p, remoteEnv(p));
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(path.join(expyre, 'jobs.db'));
      expect(r.stderr).toMatch(/read-only|write permission/i);
      expect(r.stderr).not.toMatch(STACK_FRAME);
    } finally {
      await run('umount', [expyre]);
    }
    expect(fs.readdirSync(expyre).sort()).toEqual(before);
    const store = JobStore.open(path.join(expyre, 'jobs.db'), { readonly: true });
    expect(store.list()).toEqual([]);
    store.close();
    expect(await submissions(p)).toBe(0);
  }, 240_000);
});

/** Stop slurmctld for a few seconds, then start it again with the test cluster's own script. */
async function restartSlurmctld(): Promise<void> {
  const pid = Number(fs.readFileSync('/run/slurmctld.pid', 'utf8').trim());
  process.kill(pid, 'SIGTERM');
  await until(() => !fs.existsSync(`/proc/${pid}`), 15_000, 'slurmctld to stop');
  await sleep(3000);
  await run('bash', [START_SLURM_SCRIPT], { timeout: 120_000 });
}
