// The config.json of systems that reach the test SLURM through the test sshd.
//
// `userSystemConfig` is the shape a user's first config has: a cluster account that is not the
// driver's (its own home and login shell), and a system written as ExPyRe's README shows one: only
// host, scheduler, header and partitions. So no rundir (jobs go to `run_expyre` in the cluster
// user's home) and no node_command. `slurmSystemConfig` is the extra case: the driver's own account
// with an absolute rundir the test can read directly.
import os from 'node:os';
import { SSH_HOST_ALIAS } from './sshd.js';

/** The test SLURM's two partitions, as a user would describe them. */
function partitions(): Record<string, unknown> {
  const cores = os.availableParallelism();
  return {
    debug: { num_cores: cores, max_time: '1h', max_mem: '8gb' },
    short: { num_cores: cores, max_time: '5m', max_mem: '8gb' },
  };
}

/** A system on the test cluster as the cluster account `host` (an ssh_config alias of that user). */
export function userSystemConfig(host: string): Record<string, unknown> {
  return {
    host,
    scheduler: 'slurm',
    header: ['#SBATCH --partition={partition}', '#SBATCH --ntasks={num_cores}', '#SBATCH --mem-per-cpu=200'],
    partitions: partitions(),
  };
}

/** The driver's own account on the test cluster, with an absolute rundir. */
export function slurmSystemConfig(rundir: string): Record<string, unknown> {
  return {
    host: SSH_HOST_ALIAS,
    scheduler: 'slurm',
    rundir,
    header: ['#SBATCH --partition={partition}', '#SBATCH --mem-per-cpu=200'],
    partitions: partitions(),
  };
}
