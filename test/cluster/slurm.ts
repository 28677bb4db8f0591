// The real one-node SLURM for tests, started by scripts/test-cluster/start-slurm.sh.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const START_SLURM_SCRIPT = fileURLToPath(new URL('../../scripts/test-cluster/start-slurm.sh', import.meta.url));

/** Client commands the tests (and xpr) use. */
const CLIENT_COMMANDS = ['sbatch', 'squeue', 'scontrol', 'scancel', 'sinfo', 'sacct'];
/** Daemons start-slurm.sh starts. */
const DAEMONS = ['slurmctld', 'slurmd', 'munged'];

function onPath(cmd: string): boolean {
  const r = spawnSync('sh', ['-c', `command -v ${cmd} || test -x /usr/sbin/${cmd}`], { encoding: 'utf8' });
  return r.status === 0;
}

/** Why the SLURM test cluster cannot be used right now, or undefined when `sinfo` shows a usable node. */
export async function slurmAvailable(): Promise<string | undefined> {
  const missing = CLIENT_COMMANDS.filter((c) => !onPath(c));
  if (missing.length) return `SLURM commands missing: ${missing.join(', ')} (run scripts/test-cluster/install.sh)`;
  try {
    const { stdout } = await execFileP('sinfo', ['-h', '-N', '-o', '%T'], { timeout: 15_000 });
    const states = stdout.split('\n').map((s) => s.trim()).filter(Boolean);
    if (!states.length) return 'sinfo lists no nodes';
    const usable = states.some((s) => /^(idle|mixed|allocated|completing)\b/.test(s));
    if (!usable) return `no usable SLURM node (sinfo node states: ${states.join(', ')})`;
    return undefined;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const detail = (err.stderr || err.message).trim().split('\n')[0];
    return `sinfo failed: ${detail} (start it with scripts/test-cluster/start-slurm.sh)`;
  }
}

/**
 * Start the test cluster when its binaries are installed (start-slurm.sh is idempotent and quick
 * when everything already runs), then report as slurmAvailable() does. Needs root to start it.
 */
export async function ensureSlurm(): Promise<string | undefined> {
  const missingDaemons = DAEMONS.filter((c) => !onPath(c));
  if (missingDaemons.length) {
    return slurmAvailable();
  }
  const already = await slurmAvailable();
  // sinfo can still show the node idle for a while after slurmd died, so as root always run the
  // (idempotent, quick when all is up) start script, which restarts whatever is not running.
  if (process.getuid?.() !== 0) {
    return already === undefined ? undefined : `${already}; not root, so not starting it (run: sudo ${START_SLURM_SCRIPT})`;
  }
  if (!existsSync(START_SLURM_SCRIPT)) return already ?? undefined;
  try {
    await execFileP('bash', [START_SLURM_SCRIPT], { timeout: 180_000 });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    const out = `${err.stderr ?? ''}`.trim() || err.message;
    return `start-slurm.sh failed: ${out.split('\n').slice(0, 6).join(' | ')}`;
  }
  return slurmAvailable();
}

/**
 * Rows (`fields`, `|`-separated) of SLURM's accounting for the jobs named `name`, for every user (an
 * array once). Accounting lags the controller by a moment, so this waits (up to 20 s) for a row.
 */
export async function accountingNamed(name: string, fields: string): Promise<string[][]> {
  for (let i = 0; ; i++) {
    const { stdout } = await execFileP('sacct', ['-a', '-n', '-X', '-P', '--name', name, '-o', fields]);
    const rows = stdout.trim().split('\n').filter(Boolean).map((l) => l.split('|'));
    if (rows.length || i >= 40) return rows;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Submissions SLURM's accounting recorded under a scheduler job name (an array counts once). */
export async function submissionsNamed(name: string): Promise<Set<string>> {
  return new Set((await accountingNamed(name, 'JobID')).map(([id]) => id!.split('_')[0]!));
}
