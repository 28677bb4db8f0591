// 'auto' cores: the affinity mask capped by the tightest cgroup CPU quota, read from a cgroup tree
// laid out as the kernel does (v2 unified, v1 per controller).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { availableCores, cgroupQuota, parseCpuMax, resolveCores } from '../../src/executor/cores.js';

let root: string;
beforeEach(() => { root = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-cgroup-')); });
afterEach(() => { fs.rmSync(root, { recursive: true, force: true }); });

function write(rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

describe('cgroup CPU quota', () => {
  it('reads cpu.max: "max" is no limit, quota/period is CPUs', () => {
    expect(parseCpuMax('max 100000\n')).toBeUndefined();
    expect(parseCpuMax('150000 100000\n')).toBe(1.5);
    expect(parseCpuMax('50000 100000')).toBe(0.5);
  });

  it('takes the tightest limit on the path, parents included (v2)', () => {
    write('cpu.max', 'max 100000\n');
    write('slurm/cpu.max', '300000 100000\n');
    write('slurm/job_7/cpu.max', 'max 100000\n');
    write('slurm/job_7/step_0/cpu.max', 'max 100000\n');
    const quota = cgroupQuota(root, '0::/slurm/job_7/step_0\n');
    expect(quota).toEqual({ cpus: 3, file: path.join(root, 'slurm', 'cpu.max') });
  });

  it('reads cfs_quota_us / cfs_period_us under the cpu controller (v1)', () => {
    write('cpu,cpuacct/docker/abc/cpu.cfs_quota_us', '200000\n');
    write('cpu,cpuacct/docker/abc/cpu.cfs_period_us', '100000\n');
    write('cpu,cpuacct/cpu.cfs_quota_us', '-1\n');
    const quota = cgroupQuota(root, '4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n');
    expect(quota?.cpus).toBe(2);
  });

  it('finds no quota when nothing limits the group', () => {
    write('user.slice/cpu.max', 'max 100000\n');
    expect(cgroupQuota(root, '0::/user.slice\n')).toBeUndefined();
    expect(cgroupQuota(path.join(root, 'absent'), '0::/x\n')).toBeUndefined();
  });
});

describe("'auto' cores", () => {
  it('are the affinity mask when no quota is tighter', () => {
    write('cpu.max', '800000 100000\n');
    const got = availableCores({ affinity: 4, cgroupRoot: root, procCgroup: '0::/\n' });
    expect(got.cores).toBe(4);
    expect(got.how).toContain('affinity 4');
  });

  it('are capped by a quota, rounded down but never 0', () => {
    write('job/cpu.max', '250000 100000\n');
    expect(availableCores({ affinity: 16, cgroupRoot: root, procCgroup: '0::/job\n' }))
      .toEqual({ cores: 2, how: `${path.join(root, 'job', 'cpu.max')} allows 2.5 of 16 CPUs in the affinity mask` });
    write('small/cpu.max', '50000 100000\n');
    expect(availableCores({ affinity: 16, cgroupRoot: root, procCgroup: '0::/small\n' }).cores).toBe(1);
  });

  it('of this process are at least 1 and at most what node says it may use', () => {
    const { cores } = resolveCores('auto');
    expect(cores).toBeGreaterThanOrEqual(1);
    expect(cores).toBeLessThanOrEqual(os.availableParallelism());
  });

  it('a number is taken as given', () => {
    expect(resolveCores(8)).toEqual({ cores: 8, how: 'as given' });
  });
});
