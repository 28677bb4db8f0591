// What the fault-injection tests share: a real sshd, a driver project in a user's shape (private
// dir, no HOSTNAME, a new user's config.json) reaching the real SLURM as a cluster account, the
// driver script run as a real `node` process, and counts of submissions taken from SLURM's own
// accounting, never from xpr's database.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { FIXTURES, runNode, type RunResult } from '../autopara/helpers.js';
import { userSystemConfig } from '../cluster/cluster-config.js';
import { driverProject } from '../cluster/shape.js';
import { accountingNamed } from '../cluster/slurm.js';
import { JobStore } from '../../src/store/jobstore.js';
import type { SshdHandle } from '../cluster/sshd.js';

const run = promisify(execFile);

/** The fault tests' cluster account: tcsh, the login shell least like the driver's. */
export const FAULT_ACCOUNT = 'xpr-tcsh';

export interface FaultProject {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Job names in this project start with this tag, so its submissions can be told from others'. */
  tag: string;
  /** When the project was made: submissions are counted from here on. */
  since: Date;
  cleanup(): void;
}

/** A fresh driver project whose system `cluster` is the test SLURM as `account` over `sshd`. */
export function faultProject(sshd: SshdHandle, account = FAULT_ACCOUNT, extraSsh: string[] = []): FaultProject {
  const { dir, root, env } = driverProject('xpr-fault-');
  fs.writeFileSync(path.join(root, 'config.json'), JSON.stringify({ systems: { cluster: userSystemConfig(account) } }));
  let sshConfig = sshd.sshConfigFile;
  if (extraSsh.length) {
    // Settings for this project only (e.g. a short ServerAliveInterval), ahead of the shared file.
    sshConfig = path.join(dir, 'ssh_config');
    fs.writeFileSync(sshConfig, `Host *\n${extraSsh.map((l) => `  ${l}\n`).join('')}\nInclude ${sshd.sshConfigFile}\n`);
  }
  const tag = `f${Math.random().toString(36).slice(2, 7)}`;
  return {
    dir,
    env: { ...env, HOME: dir, XPR_SSH_CONFIG: sshConfig, XPR_SSH: 'builtin' },
    tag,
    since: new Date(Date.now() - 1000),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Ten items, two per job: five chunks that SLURM runs as one array. */
export const ITEMS = Array.from({ length: 10 }, (_v, x) => ({ id: `i${x}`, x }));

/** The environment that sends `calculate` to the cluster, chunk jobs named after the project's tag. */
export function remoteEnv(p: FaultProject, extra: Record<string, unknown> = {}): Record<string, string> {
  const info = {
    sys_name: 'cluster', job_name: p.tag, resources: { num_cores: 1, max_time: '10m' }, partial_node: true,
    check_interval: 1, num_inputs_per_queued_job: 2, ...extra,
  };
  return { WFL_EXPYRE_INFO: JSON.stringify({ 'ops.js::calculate': info }) };
}

/**
 * Run the fixture driver once in the project: `calculate` over the items into out.jsonl. With
 * `killAfterMs` it is killed with SIGKILL that long after it started, unless it ended before.
 */
export async function runDriver(
  p: FaultProject, env: Record<string, string>,
  options: { onStderr?: (t: string, kill: () => void) => void; kwargs?: object; killAfterMs?: number } = {},
): Promise<RunResult & { killed: boolean }> {
  // As a user's script: an output that exists already means the work is done (no overwrite).
  const spec = { inputs: ITEMS, outputs: 'out.jsonl', overwrite: false, kwargs: { factor: 3, ...options.kwargs } };
  let kill: (() => void) | undefined;
  let killed = false;
  const timer = options.killAfterMs === undefined ? undefined : setTimeout(() => {
    killed = true;
    kill?.();
  }, options.killAfterMs);
  try {
    const r = await runNode([path.join(FIXTURES, 'drive.js')], {
      cwd: p.dir,
      env: { ...p.env, XPR_TEST_SPEC: JSON.stringify(spec), ...env },
      onSpawn: (k) => { kill = k; },
      ...(options.onStderr ? { onStderr: options.onStderr } : {}),
    });
    return { ...r, killed };
  } finally {
    clearTimeout(timer);
  }
}

/** The output file of a run, or undefined when there is none. */
export function output(p: FaultProject): string | undefined {
  const file = path.join(p.dir, 'out.jsonl');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
}

/**
 * Every scheduler job (an array counts once) SLURM recorded for the project, from its accounting.
 * Accounting lags the controller by a moment but keeps the order of submission, so first every
 * scheduler name the project's jobs.db knows is waited for there, then a job submitted after all of
 * the project's: once it is recorded, so is any submission xpr's database does not know of.
 */
export async function submissions(p: FaultProject): Promise<number> {
  for (const name of knownSchedNames(p)) await accountingNamed(name, 'JobID');
  await lastSubmissionRecorded(p);
  const { stdout } = await run('sacct', ['-a', '-n', '-X', '-P', '-S', slurmTime(p.since), '-o', 'JobID,JobName']);
  return new Set(stdout.trim().split('\n').filter(Boolean)
    .map((l) => l.split('|'))
    .filter(([, name]) => name?.startsWith(`xpr_${p.tag}_`))
    .map(([id]) => id!.split('_')[0]!)).size;
}

/** Submit a trivial job after all of the project's and wait until accounting records it. */
async function lastSubmissionRecorded(p: FaultProject): Promise<void> {
  // Not `xpr_<tag>_`, so it is not counted as one of the project's.
  const name = `xprlast_${p.tag}_${Date.now()}`;
  await run('sbatch', ['--parsable', '-J', name, '-o', '/dev/null', '--wrap', 'true'], { timeout: 30_000 });
  if ((await accountingNamed(name, 'JobID')).length === 0) throw new Error(`SLURM's accounting never recorded the job ${name}`);
}

/** The scheduler names of the jobs the project's jobs.db records. */
function knownSchedNames(p: FaultProject): string[] {
  const file = path.join(p.dir, '_expyre', 'jobs.db');
  if (!fs.existsSync(file)) return [];
  const store = JobStore.open(file, { readonly: true });
  try {
    return [...new Set(store.list().map((r) => r.schedName).filter((n): n is string => !!n))];
  } finally {
    store.close();
  }
}

function slurmTime(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
