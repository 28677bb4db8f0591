// `xpr selftest` as a user runs it: the built command in a process of its own, in a driver project
// whose config.json describes the built-in local system, the real SLURM over the real test sshd as
// the cluster account xpr-bash, the real Grid Engine, a system with a wrong node_command and one
// that cannot be reached. What it prints (text and --json) and its exit code are checked, and that
// it leaves nothing behind.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userSystemConfig } from '../cluster/cluster-config.js';
import { clusterShapeUnavailable, clusterUser, driverProject, skipOrFail } from '../cluster/shape.js';
import { startSshd, type SshdHandle } from '../cluster/sshd.js';
import { ensureSge, SGE_ENV } from '../contract/backends.js';
import { removeProjectDir } from '../helpers/localq.js';

const run = promisify(execFile);
const XPR = path.resolve('bin/xpr.js');

interface Ran { code: number; stdout: string; stderr: string }
interface CaseJson { case: string; status: string; detail: string; fix?: string; jobDir?: string }
interface SystemJson { system: string; reachable: boolean; cases: CaseJson[] }

const account = 'xpr-bash';
const clusterWhy = await clusterShapeUnavailable();
skipOrFail('xpr selftest on SLURM over SSH', clusterWhy);
const sgeWhy = await ensureSge({ ...process.env, ...SGE_ENV });
skipOrFail('xpr selftest on Grid Engine', sgeWhy);

describe('xpr selftest', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let sshd: SshdHandle | undefined;

  beforeAll(async () => {
    const p = driverProject('xpr-selftest-');
    dir = p.dir;
    const systems: Record<string, unknown> = {
      // Jobs of a system on this machine with the local queue, whose node cannot be found.
      broken: { host: null, scheduler: 'local', rundir: path.join(dir, 'broken-runs'), node_command: 'node-not-installed-here' },
      unreachable: { host: 'xpr-no-such-host.invalid', scheduler: 'slurm', partitions: { std: { num_cores: 2, max_time: '1h' } } },
    };
    if (clusterWhy === undefined) systems.cluster = userSystemConfig(account);
    if (sgeWhy === undefined) {
      systems.sge = {
        host: null, scheduler: 'sge', rundir: path.join(dir, 'sge-runs'), header: ['#$ -q {queue}'],
        queues: { 'all.q': { num_cores: 2, max_time: '1h' } }, node_command: process.execPath,
      };
    }
    fs.writeFileSync(path.join(p.root, 'config.json'), JSON.stringify({ systems }, null, 2));
    env = { ...p.env, ...SGE_ENV, XPR_LOCALQ_DIR: path.join(dir, 'localq'), XPR_SSH: 'builtin' };
    if (clusterWhy === undefined) {
      sshd = await startSshd();
      env.XPR_SSH_CONFIG = sshd.sshConfigFile;
    }
  });
  afterAll(async () => {
    await sshd?.stop();
    if (dir) await removeProjectDir(dir);
  });

  const xpr = async (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Ran> => {
    try {
      const r = await run(process.execPath, [XPR, ...args], { cwd: dir, env: { ...env, ...extraEnv }, timeout: 600_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string };
      return { code: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
    }
  };
  const systemsOf = (r: Ran): SystemJson[] => (JSON.parse(r.stdout) as { systems: SystemJson[] }).systems;
  const leftovers = () => fs.readdirSync(dir).filter((f) => f.startsWith('_xpr_selftest_'));

  it('passes every case on the local system, TIMEOUT included with --slow, and leaves nothing behind', async () => {
    const r = await xpr(['selftest', 'local', '--slow']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('local '));
    expect(rows).toHaveLength(9);
    for (const row of rows) expect(row).toMatch(/\sok\s/);
    expect(r.stdout).toContain('over its time limit → TIMEOUT');
    expect(r.stdout).toContain('1 system(s): 9 ok, 0 failed, 0 skipped');
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it.skipIf(clusterWhy !== undefined || sgeWhy !== undefined)('passes on SLURM over SSH and on Grid Engine, and cleans up their dirs', async () => {
    const r = await xpr(['--json', 'selftest', 'cluster|sge']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const systems = systemsOf(r);
    expect(systems.map((s) => s.system).sort()).toEqual(['cluster', 'sge']);
    for (const s of systems) {
      for (const c of s.cases) {
        expect(`${s.system} ${c.case} ${c.status} ${c.detail}`).toMatch(c.case === 'timeout' ? / skipped / : / ok /);
      }
    }
    // The selftest's project dir went on the cluster account's side, and the SGE rundir, too.
    const remote = path.join(clusterUser(account).home, 'run_expyre');
    expect((fs.existsSync(remote) ? fs.readdirSync(remote) : []).filter((f) => f.includes('_xpr_selftest_'))).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'sge-runs')) ? fs.readdirSync(path.join(dir, 'sge-runs')).filter((f) => f.includes('_xpr_selftest_')) : []).toEqual([]);
    expect(leftovers()).toEqual([]);
  }, 600_000);

  it('fails a system with a wrong node_command, saying what to fix', async () => {
    const r = await xpr(['selftest', 'broken']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/broken\s+xpr doctor checks\s+FAIL/);
    expect(r.stdout).toContain('`node-not-installed-here --version` failed');
    expect(r.stdout).toContain('fix: Install Node.js 20 or newer there, then set "node_command"');
    expect(r.stdout).toMatch(/broken\s+one job: result and stdout\s+skipped\s+not run: fix the failed doctor check first/);
  }, 60_000);

  it('exits 3 for a system it cannot reach, and still tests the others', async () => {
    const r = await xpr(['--json', 'selftest', 'unreachable,local']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    const systems = systemsOf(r);
    expect(systems.find((s) => s.system === 'unreachable')!.reachable).toBe(false);
    expect(systems.find((s) => s.system === 'local')!.cases.filter((c) => c.status === 'FAIL')).toEqual([]);
  }, 120_000);

  it('takes the systems from XPR_SELFTEST_SYSTEMS or EXPYRE_PYTEST_SYSTEMS, anchored, and says when none match', async () => {
    const none = await xpr(['selftest'], { EXPYRE_PYTEST_SYSTEMS: 'loc' });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('EXPYRE_PYTEST_SYSTEMS "loc" matches no configured system');
    const bad = await xpr(['selftest', 'local'], { XPR_SELFTEST_REMOTE_INFO: '{"partition": "x"}' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown key "partition"/);
  }, 60_000);
});
