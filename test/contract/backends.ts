// The backends the scheduler contract suite runs over: xpr's own local queue, the real one-node SLURM
// and Grid Engine on this machine, Torque as SLURM's Torque wrappers (Debian's slurm-wlm-torque)
// over that SLURM, and PBS Professional through the command shim in test/shims/pbs over the local
// queue. Each is a factory: whether it can run here, the config.json of a project that uses it, the
// transport that reaches it, and how to list its jobs by name with the scheduler's own commands.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SystemConfig } from '../../src/config/schema.js';
import { LocalTransport } from '../../src/transport/local.js';
import type { ExecOptions, ExecResult, Transport } from '../../src/transport/types.js';
import { closeAllSshConnections, SshTransport } from '../../src/transport/ssh.js';
import { userSystemConfig } from '../cluster/cluster-config.js';
import { clusterShapeUnavailable, clusterUser } from '../cluster/shape.js';
import { ensureSlurm } from '../cluster/slurm.js';
import { CLUSTER_USERS, startSshd, type SshdHandle } from '../cluster/sshd.js';

const execFileP = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const LOCALQ_MAIN = path.join(REPO, 'dist/src/localq/main.js');
export const PBS_SHIM_DIR = path.join(REPO, 'test/shims/pbs');
const START_SGE = path.join(REPO, 'scripts/test-cluster/start-sge.sh');

export const SGE_ENV = { SGE_ROOT: '/var/lib/gridengine', SGE_CELL: 'default' };
/**
 * Where scripts/test-cluster/install.sh unpacks SLURM's Torque wrappers: slurm-wlm-torque conflicts
 * with gridengine-client over /usr/bin/qsub, so it is not installed. `XPR_TORQUE_BIN` overrides.
 */
export const TORQUE_BIN = process.env.XPR_TORQUE_BIN ?? '/opt/slurm-wlm-torque/usr/bin';

/** A transport that logs every command it runs (to count scheduler queries). */
export class CountingTransport implements Transport {
  readonly commands: string[] = [];
  constructor(private readonly inner: Transport) {}
  get host(): string { return this.inner.host; }
  exec(command: string, options?: ExecOptions): Promise<ExecResult> {
    this.commands.push(command);
    return this.inner.exec(command, options);
  }
  upload(localDir: string, names: readonly string[], remoteDir: string): Promise<void> {
    return this.inner.upload(localDir, names, remoteDir);
  }
  download(remoteDir: string, names: readonly string[], localDir: string): Promise<void> {
    return this.inner.download(remoteDir, names, localDir);
  }
  close(): Promise<void> { return this.inner.close(); }
}

/** The scheduler a backend puts jobs on. */
export type BackendKind = 'local' | 'slurm' | 'pbs' | 'sge' | 'torque';

export interface Backend {
  /** How the suite names it: its scheduler, plus how it is reached when that is not this account. */
  name: string;
  kind: BackendKind;
  /** Why it cannot run here, or undefined (starts the test cluster when it can). */
  available(): Promise<string | undefined>;
  /** config.json of a project under `tmp` using system `system` on this backend. */
  config(tmp: string): object;
  /** Name of the system in config(). */
  system: string;
  /** Environment the backend's commands run with. */
  env: NodeJS.ProcessEnv;
  /** How the project reaches the system (a LocalTransport with `env`). */
  transportFactory(sys: SystemConfig): Transport;
  /** `max_time` a job is killed at, how long its function sleeps, and the test's own time limit. */
  timeout: { maxTime: number | string; sleep: number; testMs: number };
  /** Whether the scheduler records a cancel so that xpr can name it (CANCELLED). */
  namesCancel: boolean;
  /** Whether it records a job killed at its wall time so that xpr can name it (TIMEOUT). */
  namesTimeout: boolean;
  /** Whether its status query tells a held job from a queued one. */
  reportsHeld: boolean;
  /**
   * Distinct scheduler jobs (a job array counts once) whose name starts with `prefix`, queued,
   * running or finished, as the scheduler's own listing shows them.
   */
  countJobs(prefix: string): Promise<number>;
  /** Where this test process sees a path of the system's side (relative paths are in its home). */
  localPath(remote: string): string;
  /** How the rundir of a project under `tmp` starts on the system's side. */
  rundirPrefix(tmp: string): string;
  /** A dir that both a job and this test process can write, for the project under `tmp`. */
  sharedDir(tmp: string): string;
  /** Remove what the backend made for this test run (its queue dir, its sshd). */
  cleanup(): void | Promise<void>;
}

/** Backends on this account with an absolute rundir under the project: paths are as they are. */
const sameAccount = {
  localPath: (remote: string) => remote,
  rundirPrefix: (tmp: string) => path.join(tmp, 'remote'),
  sharedDir: (tmp: string) => tmp,
};

const sh = async (command: string, env: NodeJS.ProcessEnv): Promise<string> =>
  (await execFileP('/bin/bash', ['-c', command], { env, timeout: 30_000, maxBuffer: 64 << 20 })).stdout;

function onPath(cmd: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { env }).status === 0;
}

function needBuild(): string | undefined {
  return fs.existsSync(LOCALQ_MAIN) ? undefined : `${LOCALQ_MAIN} missing (run npm run build)`;
}

/** One queue dir per backend and test run, so its listing holds only this run's jobs. */
function queueDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `xpr-contract-${name}q-`));
}

const removeDir = (dir: string) => () => fs.rmSync(dir, { recursive: true, force: true });
const nothing = (): void => undefined;

function startsWith(names: Iterable<[string, string]>, prefix: string): number {
  const ids = new Set<string>();
  for (const [id, name] of names) if (name.startsWith(prefix)) ids.add(id);
  return ids.size;
}

// ---------------------------------------------------------------------------------------- local

function localBackend(): Backend {
  const qdir = queueDir('local');
  const env = { ...process.env, XPR_LOCALQ_DIR: qdir };
  return {
    ...sameAccount,
    name: 'local',
    kind: 'local',
    system: 'local',
    env,
    available: async () => needBuild(),
    // The built-in system: the local queue, jobs run in their stage dirs.
    config: () => ({}),
    transportFactory: () => new CountingTransport(new LocalTransport({ env })),
    timeout: { maxTime: 1, sleep: 60, testMs: 30_000 },
    namesCancel: true,
    namesTimeout: true,
    reportsHeld: true,
    cleanup: removeDir(qdir),
    async countJobs(prefix) {
      const out = await sh(`'${process.execPath}' '${LOCALQ_MAIN}' status`, env);
      // `<task> <STATE> <exit> <name>`; task `12_3` is element 3 of job 12.
      return startsWith(out.split('\n').filter(Boolean).map((l) => {
        const [task = '', , , ...name] = l.split(' ');
        return [task.split('_')[0]!, name.join(' ')];
      }), prefix);
    },
  };
}

// ---------------------------------------------------------------------------------------- slurm

let slurmReady: Promise<string | undefined> | undefined;
/** ensureSlurm, once: the slurm and torque backends both need it, and ask at the same time. */
const ensureSlurmOnce = (): Promise<string | undefined> => (slurmReady ??= ensureSlurm());

function slurmBackend(): Backend {
  const env = { ...process.env };
  return {
    ...sameAccount,
    name: 'slurm',
    kind: 'slurm',
    system: 'slurm',
    env,
    available: () => ensureSlurmOnce(),
    config: (tmp) => ({
      systems: {
        slurm: {
          host: null,
          scheduler: 'slurm',
          rundir: path.join(tmp, 'remote'),
          // The default SLURM header asks for no partition; the test cluster's are debug and short.
          header: ['#SBATCH --partition={partition}'],
          partitions: {
            short: { num_cores: 2, max_time: '5m', max_mem: '4gb' },
            debug: { num_cores: 2, max_time: '1h', max_mem: '4gb' },
          },
          node_command: process.execPath,
        },
      },
    }),
    transportFactory: () => new CountingTransport(new LocalTransport({ env })),
    // SLURM limits are whole minutes and checked every 30 s: --time=1 is killed 60-90 s in.
    timeout: { maxTime: '1m', sleep: 300, testMs: 200_000 },
    namesCancel: true,
    namesTimeout: true,
    reportsHeld: true,
    cleanup: nothing,
    async countJobs(prefix) {
      // squeue keeps ended jobs for MinJobAge (30 s); sacct (when accounting is on) for longer.
      const out = await sh(
        `squeue -h -t all -u "$(id -un)" -o '%F|%j'; sacct -n -P -X -S now-1days -u "$(id -un)" -o JobID,JobName 2>/dev/null || true`,
        env,
      );
      return startsWith(out.split('\n').filter(Boolean).map((l) => {
        const [id = '', name = ''] = l.split('|');
        return [id.replace(/_.*$/, ''), name];
      }), prefix);
    },
  };
}

// ---------------------------------------------------------------------------------------- sge

/** Why Grid Engine cannot run here; starts it (as root) when its binaries are installed. */
export async function ensureSge(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const missing = ['qsub', 'qstat', 'qdel', 'qhold', 'qrls', 'qacct'].filter((c) => !onPath(c, env));
  if (missing.length) return `Grid Engine commands missing: ${missing.join(', ')} (run scripts/test-cluster/install.sh)`;
  const check = async (): Promise<string | undefined> => {
    try {
      const out = await sh('qstat -f -q all.q', env);
      const line = out.split('\n').find((l) => l.startsWith('all.q@'));
      if (!line) return 'no all.q queue instance (start it with scripts/test-cluster/start-sge.sh)';
      const state = line.trim().split(/\s+/)[5];
      return state ? `queue ${line.split(/\s+/)[0]} is in state '${state}'` : undefined;
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      return `qstat failed: ${(err.stderr || err.message).trim().split('\n')[0]}`;
    }
  };
  const before = await check();
  // A queue can look fine for a while after its execution daemon died, so as root always run the
  // (idempotent) start script, which restarts whichever daemon is not running.
  const installed = onPath('sge_qmaster', { ...env, PATH: `${env.PATH}:/usr/sbin` });
  if (!installed || process.getuid?.() !== 0) {
    if (!before) return undefined;
    return installed ? `${before}; not root, so not starting it (run: sudo ${START_SGE})` : before;
  }
  try {
    await execFileP('bash', [START_SGE], { env, timeout: 180_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return `start-sge.sh failed: ${(err.stderr || err.message).trim().split('\n').slice(0, 6).join(' | ')}`;
  }
  return check();
}

function sgeBackend(): Backend {
  const env = { ...process.env, ...SGE_ENV };
  return {
    ...sameAccount,
    name: 'sge',
    kind: 'sge',
    system: 'sge',
    env,
    available: () => ensureSge(env),
    config: (tmp) => ({
      systems: {
        sge: {
          host: null,
          scheduler: 'sge',
          rundir: path.join(tmp, 'remote'),
          header: ['#$ -q {queue}'],
          queues: { 'all.q': { num_cores: 2, max_time: '1h' } },
          node_command: process.execPath,
        },
      },
    }),
    transportFactory: () => new CountingTransport(new LocalTransport({ env })),
    timeout: { maxTime: 5, sleep: 60, testMs: 60_000 },
    // Only while qstat still lists the job as `dr`: qacct records a qdel'd job as `failed 100`,
    // exit 137, like any other kill. xpr polls right after cancelling, so it sees the `d`.
    namesCancel: true,
    namesTimeout: true,
    reportsHeld: true,
    cleanup: nothing,
    async countJobs(prefix) {
      // Queued and running jobs from qstat, ended ones from the accounting file (qacct).
      const out = await sh(
        `qstat -u "$(id -un)" -xml; qacct -j '${prefix}*' 2>/dev/null | grep -E '^(jobname|jobnumber) ' || true`,
        env,
      );
      const pairs: [string, string][] = [];
      for (const m of out.matchAll(/<JB_job_number>(\d+)<\/JB_job_number>[\s\S]*?<JB_name>([^<]*)<\/JB_name>/g)) {
        pairs.push([m[1]!, m[2]!]);
      }
      let name: string | undefined;
      for (const line of out.split('\n')) {
        const m = /^(jobname|jobnumber)\s+(\S+)/.exec(line);
        if (m?.[1] === 'jobname') name = m[2];
        else if (m?.[1] === 'jobnumber' && name !== undefined) pairs.push([m[2]!, name]);
      }
      return startsWith(pairs, prefix);
    },
  };
}

// ---------------------------------------------------------------------------------------- pbs

function pbsBackend(): Backend {
  const qdir = queueDir('pbs');
  // The shim's qsub must not be confused with Grid Engine's /usr/bin/qsub: it is first on PATH for
  // this system's commands only.
  const env = { ...process.env, PATH: `${PBS_SHIM_DIR}:${process.env.PATH ?? ''}`, XPR_LOCALQ_DIR: qdir };
  return {
    ...sameAccount,
    name: 'pbs',
    kind: 'pbs',
    system: 'pbs',
    env,
    available: async () => {
      const build = needBuild();
      if (build) return build;
      try {
        const v = await sh('qstat --version', env);
        return /pbs_version/.test(v) ? undefined : `the PBS shim's qstat --version printed ${JSON.stringify(v)}`;
      } catch (e) {
        return `the PBS shim in ${PBS_SHIM_DIR} does not run: ${(e as Error).message.split('\n')[0]}`;
      }
    },
    config: (tmp) => ({
      systems: {
        pbs: {
          host: null,
          scheduler: 'pbs',
          rundir: path.join(tmp, 'remote'),
          header: ['#PBS -q {queue}', '#PBS -l select=1:ncpus={num_cores_per_node}'],
          queues: { workq: { num_cores: 2, max_time: '1h' } },
          node_command: process.execPath,
        },
      },
    }),
    transportFactory: () => new CountingTransport(new LocalTransport({ env })),
    timeout: { maxTime: 2, sleep: 60, testMs: 30_000 },
    namesCancel: true,
    namesTimeout: true,
    reportsHeld: true,
    cleanup: removeDir(qdir),
    async countJobs(prefix) {
      const out = await sh('qstat -x -f', env);
      const pairs: [string, string][] = [];
      for (const m of out.matchAll(/^Job Id: (\d+)\S*\n\s+Job_Name = (\S+)/gm)) pairs.push([m[1]!, m[2]!]);
      return startsWith(pairs, prefix);
    },
  };
}

// ---------------------------------------------------------------------------------------- torque

/** Why SLURM's Torque wrappers cannot run here (starts SLURM when it can). */
export async function ensureTorqueWrappers(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const slurm = await ensureSlurmOnce();
  if (slurm) return slurm;
  const missing = ['qsub', 'qstat', 'qdel', 'qhold', 'qrls'].filter((c) => !onPath(c, env));
  if (missing.length) return `Torque commands missing: ${missing.join(', ')} (run scripts/test-cluster/install.sh)`;
  // Only SLURM's perl wrapper answers --version so; Grid Engine's qstat would be another story.
  const r = spawnSync('qstat', ['--version'], { env, encoding: 'utf8' });
  const said = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return said.includes('Unknown option: version') ? undefined
    : `qstat in ${TORQUE_BIN} is not SLURM's Torque wrapper: qstat --version said ${JSON.stringify(said.trim().split('\n')[0])}`;
}

function torqueBackend(): Backend {
  // First on PATH for this system's commands only: /usr/bin/qsub is Grid Engine's.
  const env = { ...process.env, PATH: `${TORQUE_BIN}:${process.env.PATH ?? ''}` };
  return {
    ...sameAccount,
    name: 'torque',
    kind: 'torque',
    system: 'torque',
    env,
    available: () => ensureTorqueWrappers(env),
    config: (tmp) => ({
      systems: {
        torque: {
          host: null,
          scheduler: 'torque',
          rundir: path.join(tmp, 'remote'),
          // sbatch reads these #PBS lines itself: -q is the partition, nodes/ppn the task count.
          header: ['#PBS -q {queue}', '#PBS -l nodes={num_nodes}:ppn={num_cores_per_node}'],
          queues: { debug: { num_cores: 2, max_time: '1h', max_mem: '4gb' } },
          node_command: process.execPath,
        },
      },
    }),
    transportFactory: () => new CountingTransport(new LocalTransport({ env })),
    // SLURM underneath: whole minutes, checked every 30 s (see the slurm backend).
    timeout: { maxTime: '1m', sleep: 300, testMs: 200_000 },
    // The wrapper's qstat has states Q, R and C only and no exit status: a cancelled or timed-out
    // job is just C, then gone, and a held one is Q. Its files say it died, not why.
    namesCancel: false,
    namesTimeout: false,
    reportsHeld: false,
    cleanup: nothing,
    async countJobs(prefix) {
      // Every array task is a job of its own in this listing, under the array's name; xpr's names
      // are unique per submission, so names count submissions. Ended jobs stay for MinJobAge (30 s).
      let out = '';
      try {
        out = await sh('qstat -f', env);
      } catch (e) {
        // 153: no job at all.
        if ((e as { code?: number }).code !== 153) throw e;
      }
      const names = new Set<string>();
      for (const m of out.matchAll(/^Job Id:\s*\d+\n\s+Job_Name = (\S+)/gm)) if (m[1]!.startsWith(prefix)) names.add(m[1]!);
      return names.size;
    },
  };
}

// ---------------------------------------------------------------------------------------- slurm over SSH

/**
 * The real SLURM reached as a user reaches a cluster: over the test sshd (xpr's built-in client),
 * as a cluster account that is not this one (its own home and login shell), with the config a new
 * user writes (no rundir, so `run_expyre` in that account's home; no node_command).
 */
function slurmSshBackend(account: string): Backend {
  const env = { ...process.env };
  delete env.HOSTNAME;
  let sshd: SshdHandle | undefined;
  const home = () => clusterUser(account).home;
  return {
    name: `slurm over ssh as ${account}`,
    kind: 'slurm',
    system: 'cluster',
    env,
    async available() {
      const why = (await clusterShapeUnavailable()) ?? (await ensureSlurmOnce());
      if (why) return why;
      sshd = await startSshd();
      env.XPR_SSH_CONFIG = sshd.sshConfigFile;
      return undefined;
    },
    // The suite sets memory itself (the {max_mem} case), so the header asks for none.
    config: () => ({ systems: { cluster: { ...userSystemConfig(account), header: ['#SBATCH --partition={partition}'], partitions: {
      short: { num_cores: 2, max_time: '5m', max_mem: '4gb' },
      debug: { num_cores: 2, max_time: '1h', max_mem: '4gb' },
    } } } }),
    transportFactory: (sys) => new CountingTransport(new SshTransport(sys.host!, { configFile: sshd!.sshConfigFile })),
    timeout: { maxTime: '1m', sleep: 300, testMs: 200_000 },
    namesCancel: true,
    namesTimeout: true,
    reportsHeld: true,
    localPath: (remote) => (path.isAbsolute(remote) ? remote : path.join(home(), remote)),
    rundirPrefix: () => 'run_expyre/',
    // The account's home: the job writes there, and this test runs as root.
    sharedDir: () => home(),
    async cleanup() {
      await closeAllSshConnections();
      await sshd?.stop();
    },
    async countJobs(prefix) {
      const out = await sh(
        `squeue -h -t all -u ${account} -o '%F|%j'; sacct -n -P -X -S now-1days -u ${account} -o JobID,JobName 2>/dev/null || true`,
        env,
      );
      return startsWith(out.split('\n').filter(Boolean).map((l) => {
        const [id = '', name = ''] = l.split('|');
        return [id.replace(/_.*$/, ''), name];
      }), prefix);
    },
  };
}

/** The backends that need no daemon: the local queue, and PBS through its shim over the local queue. */
export const daemonlessBackends = (): Backend[] => [localBackend(), pbsBackend()];

/** The test cluster's schedulers on this account, reached without SSH. */
export const clusterBackends = (): Backend[] => [slurmBackend(), sgeBackend(), torqueBackend()];

/** SLURM over SSH as each cluster account, in a user's shape. */
export const SSH_BACKENDS: Backend[] = CLUSTER_USERS.map((u) => slurmSshBackend(u.name));
