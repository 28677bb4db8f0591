// The config.json of a system that reaches the test SLURM through the test sshd, as a user's would
// reach a cluster: a host alias from ssh_config, a rundir, a header line for the partition.
import os from 'node:os';
import { SSH_HOST_ALIAS } from './sshd.js';

export function slurmSystemConfig(rundir: string): Record<string, unknown> {
  const cores = os.availableParallelism();
  return {
    host: SSH_HOST_ALIAS,
    scheduler: 'slurm',
    rundir,
    header: ['#SBATCH --partition={partition}', '#SBATCH --mem-per-cpu=200'],
    partitions: {
      debug: { num_cores: cores, max_time: '1h', max_mem: '8gb' },
      short: { num_cores: cores, max_time: '5m', max_mem: '8gb' },
    },
  };
}
