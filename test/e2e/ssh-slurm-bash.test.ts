// The SSH + SLURM end-to-end suite as a cluster account whose login shell is bash, plus the extra
// case of the driver's own account with an absolute rundir.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Job } from '../../src/job/job.js';
import { Project } from '../../src/job/project.js';
import { closeAllSshConnections } from '../../src/transport/ssh.js';
import { slurmSystemConfig } from '../cluster/cluster-config.js';
import { clusterShapeUnavailable, driverProject } from '../cluster/shape.js';
import { submissionsNamed } from '../cluster/slurm.js';
import { startSshd, type SshdHandle } from '../cluster/sshd.js';
import * as ops from '../fixtures/jobs/ops.js';
import { defineSshSlurmSuite } from './ssh-slurm.suite.js';

await defineSshSlurmSuite('xpr-bash');

const unavailable = await clusterShapeUnavailable();

describe.skipIf(unavailable !== undefined)('SSH + SLURM end to end as the driver\'s own account, absolute rundir', () => {
  let sshd: SshdHandle;
  let dir: string;
  let project: Project;

  beforeAll(async () => {
    sshd = await startSshd();
    const p = driverProject('xpr-e2e-same-');
    dir = p.dir;
    fs.writeFileSync(path.join(p.root, 'config.json'), JSON.stringify({ systems: { cluster: slurmSystemConfig(path.join(dir, 'remote')) } }));
    project = Project.open({ cwd: dir, env: { ...p.env, XPR_SSH_CONFIG: sshd.sshConfigFile, XPR_SSH: 'builtin' }, home: dir });
  });
  afterAll(async () => {
    await project?.close();
    await closeAllSshConnections();
    await sshd?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs 3 jobs as one array in the absolute rundir', async () => {
    const calls = [1, 2, 3].map((i) => ({ name: `same${i}`, fn: ops.scale, module: path.resolve('test/fixtures/jobs/ops.js'), args: [[i]], kwargs: { factor: 3 }, project }));
    const jobs = await Job.createMany(calls);
    await Job.startMany(jobs, { system: 'cluster', resources: { num_cores: 1, max_time: '10m' }, partialNode: true });
    await Job.waitAll(jobs, { timeout: 120, checkInterval: 1 });
    expect(await Promise.all(jobs.map(async (j) => (await j.getResults()).result))).toEqual([[3], [6], [9]]);
    expect(fs.existsSync(path.join(project.system('cluster').rundir, `run_${jobs[0]!.id}`))).toBe(true);
    expect((await submissionsNamed(jobs[0]!.info.schedName!)).size).toBe(1);
  }, 150_000);
});
