// End to end against the real test cluster in a user's shape: jobs go over the real sshd (built-in
// SSH client, one connection) as a cluster account other than the driver's, with its own home and
// login shell, to the real one-node SLURM, and come back. The config is the one a new user writes
// (no rundir: jobs live in `run_expyre` under that account's home). One file per account runs this
// suite, so the bash and tcsh accounts run side by side.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobDiedError, UnreachableError } from '../../src/errors.js';
import { Job } from '../../src/job/job.js';
import { Project } from '../../src/job/project.js';
import { closeAllSshConnections, connectionsOpened, SshTransport } from '../../src/transport/ssh.js';
import { userSystemConfig } from '../cluster/cluster-config.js';
import { clusterShapeUnavailable, clusterUser, driverProject, remotePath, skipOrFail } from '../cluster/shape.js';
import { accountingNamed, submissionsNamed } from '../cluster/slurm.js';
import { startSshd, type SshdHandle } from '../cluster/sshd.js';
import * as ops from '../fixtures/jobs/ops.js';

const run = promisify(execFile);
const OPS = path.resolve('test/fixtures/jobs/ops.js');
const SLOW_OPS = path.resolve('test/fixtures/jobs/slow-ops.js');
const ONE_CORE = { system: 'cluster', resources: { num_cores: 1, max_time: '10m' }, partialNode: true };

export async function defineSshSlurmSuite(account: string): Promise<void> {
  const unavailable = await clusterShapeUnavailable();
  skipOrFail(`SSH + SLURM end-to-end tests as ${account}`, unavailable);

  describe.skipIf(unavailable !== undefined)(`SSH + SLURM end to end as ${account}`, () => {
    const user = clusterUser(account);
    let sshd: SshdHandle;
    let dir: string;
    let env: NodeJS.ProcessEnv;
    let project: Project;
    /** Where this project's jobs live on the cluster account's side (as root sees it). */
    const remoteRundir = (system: string) => remotePath(user, project.system(system).rundir);

    beforeAll(async () => {
      sshd = await startSshd();
      ({ dir, env } = driverProject('xpr-e2e-'));
      delete process.env.HOSTNAME;
      fs.writeFileSync(path.join(dir, '_expyre', 'config.json'), JSON.stringify({
        systems: {
          cluster: userSystemConfig(account),
          // As an ExPyRe user writes a system: commands, pre_submit_cmds, a partition whose config key
          // is not the scheduler's name for it, and a partition header.
          expyre_style: {
            host: account,
            scheduler: 'slurm',
            commands: ['export XPR_FROM_COMMANDS=yes'],
            pre_submit_cmds: ['echo "$(date +%s)" >> pre_submit_ran'],
            header: ['#SBATCH --partition={partition}', '#SBATCH --mem-per-cpu=200'],
            partitions: {
              quick: { num_cores: os.availableParallelism(), max_time: '5m', partition: 'short', header: ['#SBATCH --comment=from_partition_header'] },
            },
          },
        },
      }));
      env = { ...env, XPR_SSH_CONFIG: sshd.sshConfigFile, XPR_SSH: 'builtin' };
      process.env.XPR_SSH_CONFIG = sshd.sshConfigFile;
      project = Project.open({ cwd: dir, env, home: dir });
    });

    afterAll(async () => {
      await project?.close();
      await closeAllSshConnections();
      await sshd?.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('keeps jobs under run_expyre in the account\'s home, which cannot read the driver\'s project', async () => {
      const rundir = project.system('cluster').rundir;
      expect(rundir.startsWith('run_expyre/')).toBe(true);
      expect(rundir).toContain(os.hostname());
      const r = await run('su', ['-s', '/bin/sh', account, '-c', `ls ${dir}`]).catch((e: { code: number; stderr: string }) => e);
      expect((r as { stderr: string }).stderr).toMatch(/Permission denied/);
    });

    it('runs 20 jobs as one array over one SSH connection, and a rerun submits nothing', async () => {
      const before = connectionsOpened();
      const logins = sshd.connectionsAccepted();
      const calls = Array.from({ length: 20 }, (_v, i) => ({
        name: `e2e${i}`, fn: ops.scale, module: OPS, args: [[i]], kwargs: { factor: 2 }, project,
      }));
      const jobs = await Job.createMany(calls);
      await Job.startMany(jobs, ONE_CORE);
      const schedNames = new Set(jobs.map((j) => j.info.schedName));
      expect(schedNames.size).toBe(1);
      const parent = jobs[0]!.info.remoteId!.split('_')[0];
      expect(jobs.map((j) => j.info.remoteId)).toEqual(jobs.map((_j, i) => `${parent}_${i}`));
      await Job.waitAll(jobs, { timeout: 300, checkInterval: 1 });
      const results = await Promise.all(jobs.map((j) => j.getResults()));
      expect(results.map((r) => r.result)).toEqual(jobs.map((_j, i) => [2 * i]));
      expect(connectionsOpened() - before).toBe(1);
      expect(sshd.connectionsAccepted() - logins).toBe(1);
      // The jobs ran as the cluster account, in its home.
      const owner = (await run('stat', ['-c', '%U', path.join(remoteRundir('cluster'), `run_${jobs[0]!.id}`)])).stdout.trim();
      expect(owner).toBe(account);
      // By name: job ids start again at 1 when the test cluster's state is purged, and sacct keeps the old ones.
      const users = (await accountingNamed(jobs[0]!.info.schedName!, 'User')).map(([u]) => u);
      expect(new Set(users)).toEqual(new Set([account]));

      // The same script again: every call re-attaches, nothing reaches the scheduler.
      const schedName = [...schedNames][0]!;
      const t0 = Date.now();
      const again = await Job.createMany(calls);
      expect(again.every((j) => j.reattached)).toBe(true);
      await Job.startMany(again, ONE_CORE);
      await Job.waitAll(again, { timeout: 60 });
      expect((await again[7]!.getResults()).result).toEqual([14]);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(new Set(again.map((j) => j.info.schedName))).toEqual(new Set([schedName]));
      expect((await submissionsNamed(schedName)).size).toBe(1);
    }, 300_000);

    it('honours an ExPyRe-style system: commands, pre_submit_cmds, partition names and headers', async () => {
      const job = await Job.create({
        name: 'expyre style', fn: ops.envOf, module: OPS, project,
        args: [['XPR_FROM_COMMANDS', 'SLURM_JOB_PARTITION', 'EXPYRE_NUM_CORES_PER_NODE']],
      });
      await job.start({ system: 'expyre_style', resources: { num_cores: 1, max_time: '2m' }, partialNode: true });
      const { result } = await job.getResults({ timeout: 120, checkInterval: 1 });
      expect(result).toEqual(['yes', 'short', '1']);
      const rundir = remoteRundir('expyre_style');
      expect(fs.readFileSync(path.join(rundir, 'pre_submit_ran'), 'utf8').trim()).toMatch(/^\d+$/);
      const script = fs.readFileSync(path.join(rundir, '_xpr_submit', `${job.info.schedName}.sh`), 'utf8');
      expect(script).toContain('#SBATCH --partition=short');
      expect(script).toContain('#SBATCH --comment=from_partition_header');
      const comment = (await run('scontrol', ['show', 'job', job.info.remoteId!])).stdout;
      expect(comment).toContain('Comment=from_partition_header');
    }, 180_000);

    it('reports a job cancelled with scancel as CANCELLED', async () => {
      const job = await Job.create({ name: 'cancel me', fn: ops.sleepy, module: OPS, args: [120], project });
      await job.start(ONE_CORE);
      for (let i = 0; i < 60 && (await job.sync()) !== 'started'; i++) await new Promise((r) => setTimeout(r, 500));
      await run('scancel', [job.info.remoteId!]);
      const err = await job.getResults({ timeout: 120, checkInterval: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobDiedError);
      expect((err as JobDiedError).reason).toBe('CANCELLED');
    }, 180_000);

    it('reports a job past its wall time as TIMEOUT', async () => {
      const job = await Job.create({ name: 'too slow', fn: ops.sleepy, module: OPS, args: [600], project });
      await job.start({ ...ONE_CORE, resources: { num_cores: 1, max_time: '1m' } });
      const err = await job.getResults({ timeout: 240, checkInterval: 2 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobDiedError);
      expect((err as JobDiedError).reason).toBe('TIMEOUT');
    }, 300_000);

    it('survives sshd restarting while it polls', async () => {
      const job = await Job.create({ name: 'through a restart', fn: ops.sleepy, module: OPS, args: [4], project });
      await job.start(ONE_CORE);
      const waiting = job.getResults({ timeout: 120, checkInterval: 1 });
      await new Promise((r) => setTimeout(r, 1500));
      await sshd.restart();
      expect((await waiting).result).toBe('woke');
    }, 180_000);

    it('re-attaches after the driver is killed with SIGKILL right after submitting', async () => {
      // The job writes its run log on the cluster account's side: the driver's dir is not its to write.
      const logName = `xpr-runs-${path.basename(dir)}.log`;
      const log = path.join(user.home, logName);
      const driver = path.join(dir, 'driver.mjs');
      fs.writeFileSync(driver, `
        import { Job, Project } from ${JSON.stringify(path.resolve('dist/src/index.js'))};
        import { sleepyCount } from ${JSON.stringify(SLOW_OPS)};
        const project = Project.open();
        // Over SSH the job sees the remote environment, not ours: pass what it needs.
        const job = await Job.create({ name: 'killed driver', fn: sleepyCount, args: [3], project,
          envVars: { XPR_TEST_RUN_LOG: ${JSON.stringify(log)} } });
        await job.start({ system: 'cluster', resources: { num_cores: 1, max_time: '10m' }, partialNode: true });
        console.log('SUBMITTED', job.reattached, job.info.schedName);
        const { result } = await job.getResults({ timeout: 120, checkInterval: 1 });
        console.log('RESULT', result);
        await project.close();
        process.exit(0);
      `);
      try {
        const first = spawn(process.execPath, [driver], { cwd: dir, env });
        const schedName = await new Promise<string>((resolve, reject) => {
          first.stdout.on('data', (b: Buffer) => {
            const m = /SUBMITTED \w+ (\S+)/.exec(b.toString());
            if (m) resolve(m[1]!);
          });
          first.on('exit', (code) => reject(new Error(`driver exited early (${code})`)));
        });
        first.kill('SIGKILL');
        const second = await run(process.execPath, [driver], { cwd: dir, env, timeout: 150_000 });
        expect(second.stdout).toContain(`SUBMITTED true ${schedName}`);
        expect(second.stdout).toContain('RESULT 3');
        expect(fs.readFileSync(log, 'utf8')).toBe('ran\n');
        expect((await submissionsNamed(schedName)).size).toBe(1);
      } finally {
        fs.rmSync(log, { force: true });
      }
    }, 200_000);

    it('refuses a host whose key is not in known_hosts, saying how to accept it', async () => {
      const emptyKnownHosts = path.join(dir, 'empty_known_hosts');
      fs.writeFileSync(emptyKnownHosts, '');
      const config = path.join(dir, 'ssh_config_unknown');
      fs.writeFileSync(config, fs.readFileSync(sshd.sshConfigFile, 'utf8').replaceAll(sshd.knownHostsFile, emptyKnownHosts));
      const strict = Project.open({
        cwd: dir, env, home: dir,
        transportFactory: (sys) => new SshTransport(sys.host!, { configFile: config }),
      });
      const job = await Job.create({ name: 'unknown host', fn: ops.scale, module: OPS, args: [[1]], kwargs: { factor: 1 }, project: strict });
      const err = await job.start(ONE_CORE).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnreachableError);
      expect((err as UnreachableError).message).toContain(sshd.hostKeyFingerprint);
      expect((err as UnreachableError).describe()).toMatch(/ssh-keyscan/);
      // A start that could not reach the system leaves nothing behind: no record, no stage dir.
      expect(strict.store.get(job.id)).toBeUndefined();
      expect(fs.existsSync(job.stageDir)).toBe(false);
      await strict.close();
    }, 60_000);
  });
}
