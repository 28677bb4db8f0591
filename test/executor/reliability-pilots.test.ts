// Pilot workers on the test cluster's SLURM: `xpr executor workers` submits a worker of one stage as
// a batch job through xpr's own system (over SSH, as the driver's account); the job runs on this
// machine's node and connects back to the gateway at 127.0.0.1. It completes tasks; then the job is
// cancelled with scancel in the middle of a task, and that task goes back to the queue and finishes
// on another worker.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alive } from '../../src/util/processes.js';
import { slurmSystemConfig } from '../cluster/cluster-config.js';
import { driverProject, skipOrFail } from '../cluster/shape.js';
import { ensureSlurm } from '../cluster/slurm.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../cluster/sshd.js';
import { skipWithoutRedis } from './redis.js';
import { Processes, requireBuild, Runs, until, WORKFLOW } from './reliability-harness.js';

const execFileP = promisify(execFile);

const unavailable = sshdAvailable() ?? (await ensureSlurm());
skipOrFail('pilot workers on SLURM', unavailable);

/** The SLURM job a process runs in, from its environment. */
function slurmJobOf(pid: number): string | undefined {
  const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  return env.find((v) => v.startsWith('SLURM_JOB_ID='))?.slice('SLURM_JOB_ID='.length);
}

async function inQueue(jobId: string): Promise<boolean> {
  const { stdout } = await execFileP('squeue', ['-h', '-j', jobId, '-o', '%T']).catch(() => ({ stdout: '' }));
  return stdout.trim() !== '';
}

describe.skipIf(unavailable !== undefined || skipWithoutRedis('pilot workers on SLURM'))('executor pilot workers on SLURM', () => {
  let sshd: SshdHandle;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const procs = new Processes();
  const slurmJobs: string[] = [];

  beforeAll(async () => {
    requireBuild();
    sshd = await startSshd();
    const p = driverProject('xpr-exec-pilot-');
    dir = p.dir;
    fs.writeFileSync(path.join(p.root, 'config.json'), JSON.stringify({ systems: { cluster: slurmSystemConfig(path.join(dir, 'remote')) } }));
    env = { ...p.env, XPR_SSH_CONFIG: sshd.sshConfigFile, XPR_SSH: 'builtin', NO_COLOR: '1' };
  });
  afterEach(async () => {
    for (const id of slurmJobs.splice(0)) await execFileP('scancel', [id]).catch(() => undefined);
    await procs.stopAll();
  });
  afterAll(async () => {
    await sshd?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a pilot job completes tasks; cancelled mid-task, its task goes back to the queue and the submission completes', async () => {
    const runs = new Runs(path.join(dir, 'runs'));
    const directory = path.join(dir, 'xpr-executor');
    // A lease lasts 15 s without a heartbeat (a remote worker sends one every 10 s).
    const ex = await procs.launch(directory, { workers: { check: 0 }, lockDurationMs: 15_000 });

    const submitted = procs.xpr(['executor', 'workers', '--directory', directory, '--system', 'cluster', '--stage', 'check',
      '--count', '1', '--resources', '{"num_cores":1,"max_time":"5m"}'], { env, cwd: dir });
    expect(await submitted.exited, submitted.stderr).toBe(0);
    expect(submitted.stdout).toContain(`Submitted 1 worker job(s) for stage check on cluster, connecting to ${ex.info.remoteUrl}`);

    // The pilot takes the check tasks of a submission and completes them.
    runs.open('open-a');
    const a = await ex.submit(WORKFLOW, runs.input('a', { n: 2 }));
    expect(await ex.waitUntilComplete(a)).toEqual({ key: 'a', sum: 5 });
    const pilotPid = runs.of('check a 1 done')[0]!.pid;
    expect(runs.of('check a 2 done').map((r) => r.pid)).toEqual([pilotPid]);
    const jobId = slurmJobOf(pilotPid);
    expect(jobId).toMatch(/^\d+$/);
    slurmJobs.push(jobId!);

    // Mid-task, the job is cancelled: the pilot dies holding a lease.
    runs.open('open-b');
    const b = await ex.submit(WORKFLOW, runs.input('b', { n: 1, checkGate: true }));
    await runs.waitFor('check b 1 start');
    expect(runs.of('check b 1 start')[0]!.pid).toBe(pilotPid);
    await execFileP('scancel', [jobId!]);
    await until(() => !alive(pilotPid), `the pilot process ${pilotPid} to end after scancel`, 90_000);
    await until(async () => !(await inQueue(jobId!)), `SLURM job ${jobId} to leave the queue`, 90_000);

    // Another worker gets the task once the lease runs out, and the submission completes.
    const worker = procs.xpr(['worker', '--stage', 'check'], { env: { XPR_EXECUTOR_URL: ex.url, XPR_EXECUTOR_TOKEN: ex.token } });
    const rerun = await runs.waitFor('check b 1 start', 2, 60_000);
    expect(rerun.pid).toBe(worker.pid);
    runs.open('open-b-check');
    expect(await ex.waitUntilComplete(b)).toEqual({ key: 'b', sum: 1 });
    expect(runs.of('check b 1 done').map((r) => r.pid)).toEqual([worker.pid]);
  }, 300_000);
});
