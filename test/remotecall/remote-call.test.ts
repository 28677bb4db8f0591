// remoteCall end to end: real driver processes run the whole-calls example (examples/whole-calls) and
// a fixture module, with jobs on the built-in local system (the real local queue) and on the real
// SLURM over the real test sshd as the cluster account xpr-bash. Which calls became jobs is read
// from the project's jobs.db; where each stage ran, from the pids the stages report.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStore } from '../../src/store/jobstore.js';
import { closeAllSshConnections } from '../../src/transport/ssh.js';
import { userSystemConfig } from '../cluster/cluster-config.js';
import { clusterShapeUnavailable, clusterUser, driverProject, skipOrFail } from '../cluster/shape.js';
import { startSshd, type SshdHandle } from '../cluster/sshd.js';
import { removeProjectDir } from '../helpers/localq.js';

const run = promisify(execFile);
const EXAMPLE = path.resolve('examples/whole-calls');
const FIT = path.join(EXAMPLE, 'fit.js');
const OPS = path.resolve('test/fixtures/remotecall/ops.js');

interface Driven { code: number; stdout: string; stderr: string }

interface Driver {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Run a driver script (ES module text) in the project dir with extra environment. */
  drive(code: string, extraEnv?: NodeJS.ProcessEnv): Promise<Driven>;
  jobs(): { name: string; status: string }[];
  cleanup(): Promise<void>;
}

function driver(prefix: string, config: object = {}, baseEnv: NodeJS.ProcessEnv = {}): Driver {
  const p = driverProject(prefix);
  fs.writeFileSync(path.join(p.root, 'config.json'), JSON.stringify(config));
  fs.copyFileSync(path.join(EXAMPLE, 'train.jsonl'), path.join(p.dir, 'train.jsonl'));
  const env: NodeJS.ProcessEnv = { ...p.env, XPR_LOCALQ_DIR: path.join(p.dir, 'localq'), ...baseEnv };
  for (const k of Object.keys(env)) if (/_REMOTEINFO$/.test(k)) delete env[k];
  let n = 0;
  return {
    dir: p.dir, env,
    async drive(code, extraEnv = {}) {
      const file = path.join(p.dir, `drive${n++}.mjs`);
      fs.writeFileSync(file, code);
      try {
        const r = await run(process.execPath, [file], { cwd: p.dir, env: { ...env, ...extraEnv }, timeout: 240_000 });
        return { code: 0, stdout: r.stdout, stderr: r.stderr };
      } catch (e) {
        const err = e as { code?: number; stdout?: string; stderr?: string };
        return { code: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
      }
    },
    jobs() {
      const db = path.join(p.root, 'jobs.db');
      if (!fs.existsSync(db)) return [];
      const store = JobStore.open(db, { readonly: true });
      try {
        return store.list().map((r) => ({ name: r.name, status: r.status }));
      } finally {
        store.close();
      }
    },
    cleanup: () => removeProjectDir(p.dir),
  };
}

/** The example's driver, printing the summaries as JSON. */
const MULTISTAGE = `
  import { multistageFit } from ${JSON.stringify(FIT)};
  const summaries = await multistageFit('train.jsonl', [{ ridge: 0 }, { ridge: 10 }, { ridge: 100 }]);
  console.log('RESULT ' + JSON.stringify({ driver: process.pid, stages: summaries.map((s) => s.pid) }));
`;

function stagesOf(r: Driven): { driver: number; stages: number[] } {
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`the driver printed no result (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line.slice(7)) as { driver: number; stages: number[] };
}

const LOCAL_INFO = JSON.stringify({ sys_name: 'local', resources: { num_cores: 1, max_time: '10m' } });

/** Kill a driver once its job is submitted, then run it again: it must re-attach and the function run once. */
async function reattachAfterKill(d: Driver, info: string, log: string): Promise<void> {
  const code = `
    import { counted } from ${JSON.stringify(OPS)};
    console.log('RESULT ' + (await counted(41, ${JSON.stringify(log)})));
  `;
  const file = path.join(d.dir, 'killed.mjs');
  fs.writeFileSync(file, code);
  const env = { ...d.env, XPR_TEST_COUNTED_REMOTEINFO: info };
  const first = spawn(process.execPath, [file], { cwd: d.dir, env });
  await new Promise<void>((resolve, reject) => {
    let said = '';
    first.stderr.on('data', (b: Buffer) => {
      said += b.toString();
      if (/submitted job counted_/.test(said)) resolve();
    });
    first.on('exit', (c) => reject(new Error(`driver exited early (${c}): ${said}`)));
  });
  first.kill('SIGKILL');
  const second = await d.drive(code, { XPR_TEST_COUNTED_REMOTEINFO: info });
  expect(second.stderr).toMatch(/re-attached to job counted_/);
  expect(second.stdout).toContain('RESULT 42');
  expect(fs.readFileSync(log, 'utf8')).toBe('41\n');
  expect(d.jobs().filter((j) => j.name === 'counted')).toHaveLength(1);
}

describe('remoteCall on this machine', () => {
  let d: Driver;
  beforeAll(() => { d = driver('xpr-remotecall-'); });
  afterAll(async () => { await d?.cleanup(); });

  it('runs in this process when its variable is unset', async () => {
    const r = await d.drive(MULTISTAGE);
    const { driver: pid, stages } = stagesOf(r);
    expect(stages).toEqual([pid, pid, pid]);
    expect(d.jobs()).toEqual([]);
    expect(fs.existsSync(path.join(d.dir, 'model_2.json'))).toBe(true);
  });

  it('with only the inner variable set, makes one job per simple fit, and brings the models back', async () => {
    for (const f of fs.readdirSync(d.dir)) if (f.startsWith('model_')) fs.rmSync(path.join(d.dir, f));
    const r = await d.drive(MULTISTAGE, { MYFIT_SIMPLE_FIT_REMOTEINFO: LOCAL_INFO });
    const { driver: pid, stages } = stagesOf(r);
    expect(new Set(stages).size).toBe(3);
    expect(stages).not.toContain(pid);
    expect(d.jobs().map((j) => [j.name, j.status])).toEqual([['simple_fit', 'processed'], ['simple_fit', 'processed'], ['simple_fit', 'processed']]);
    expect(JSON.parse(fs.readFileSync(path.join(d.dir, 'model_1.json'), 'utf8')).stage).toBe(1);
    // What each stage printed in its job is shown by the driver.
    expect(r.stdout).toMatch(/stage 2: a=/);
  });

  it('with only the outer variable set, makes one job in which the simple fits run', async () => {
    const before = d.jobs().length;
    for (const f of fs.readdirSync(d.dir)) if (f.startsWith('model_')) fs.rmSync(path.join(d.dir, f));
    const r = await d.drive(MULTISTAGE, { MYFIT_MULTISTAGE_FIT_REMOTEINFO: LOCAL_INFO });
    const { driver: pid, stages } = stagesOf(r);
    expect(new Set(stages).size).toBe(1);
    expect(stages[0]).not.toBe(pid);
    expect(d.jobs().slice(before).map((j) => j.name)).toEqual(['multistage_fit']);
    expect(fs.readdirSync(d.dir).filter((f) => f.startsWith('model_')).sort()).toEqual(['model_0.json', 'model_1.json', 'model_2.json']);
  });

  it('with both set in the driver, still runs the simple fits inside the one job (the job clears the inner variable)', async () => {
    const before = d.jobs().length;
    const r = await d.drive(MULTISTAGE.replace("{ ridge: 0 }", "{ ridge: 1 }"), {
      MYFIT_MULTISTAGE_FIT_REMOTEINFO: LOCAL_INFO, MYFIT_SIMPLE_FIT_REMOTEINFO: LOCAL_INFO,
    });
    expect(new Set(stagesOf(r).stages).size).toBe(1);
    expect(d.jobs().slice(before).map((j) => j.name)).toEqual(['multistage_fit']);
  });

  it('refuses, saying what to change, when the outer job\'s env_vars set the inner variable', async () => {
    const outer = JSON.stringify({ ...JSON.parse(LOCAL_INFO), env_vars: [`MYFIT_SIMPLE_FIT_REMOTEINFO=${LOCAL_INFO}`] });
    const r = await d.drive(MULTISTAGE.replace("{ ridge: 0 }", "{ ridge: 2 }"), { MYFIT_MULTISTAGE_FIT_REMOTEINFO: outer });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('RemoteError');
    expect(r.stderr).toContain('simple_fit was called inside a job and would run as a job of its own (MYFIT_SIMPLE_FIT_REMOTEINFO is set');
    expect(r.stderr).toContain('leave MYFIT_SIMPLE_FIT_REMOTEINFO out of the env_vars');
  });

  it('re-attaches on a rerun: the same call submits nothing', async () => {
    const before = d.jobs().length;
    const env = { MYFIT_SIMPLE_FIT_REMOTEINFO: LOCAL_INFO, WFL_EXPYRE_NO_MARK_PROCESSED: '1' };
    const first = await d.drive(MULTISTAGE.replace("{ ridge: 0 }", "{ ridge: 3 }"), env);
    const second = await d.drive(MULTISTAGE.replace("{ ridge: 0 }", "{ ridge: 3 }"), env);
    expect(stagesOf(second).stages).toEqual(stagesOf(first).stages);
    expect(second.stderr.match(/re-attached to job simple_fit_/g)).toHaveLength(3);
    expect(d.jobs().length - before).toBe(3);
  });

  it('takes the RemoteInfo of remoteCallOptions over the variable, and null runs in this process', async () => {
    const code = `
      import { remoteCallOptions } from 'xpr';
      import { simpleFit } from ${JSON.stringify(FIT)};
      const a = await simpleFit('train.jsonl', { stage: 7 }, remoteCallOptions({ remoteInfo: ${LOCAL_INFO.replace('"local"', '"local", "job_name": "by_option"')} }));
      const b = await simpleFit('train.jsonl', { stage: 8 }, remoteCallOptions({ remoteInfo: null }));
      console.log('RESULT ' + JSON.stringify({ driver: process.pid, stages: [a.pid, b.pid] }));
    `;
    // The driver imports 'xpr' by name, as a user's script does.
    fs.mkdirSync(path.join(d.dir, 'node_modules'), { recursive: true });
    fs.symlinkSync(path.resolve('.'), path.join(d.dir, 'node_modules', 'xpr'), 'dir');
    const before = d.jobs().length;
    const r = await d.drive(code, { MYFIT_SIMPLE_FIT_REMOTEINFO: '{"sys_name": "nowhere", "resources": {"num_cores": 1, "max_time": "1m"}}' });
    const { driver: pid, stages } = stagesOf(r);
    expect(stages[0]).not.toBe(pid);
    expect(stages[1]).toBe(pid);
    expect(d.jobs().slice(before).map((j) => j.name)).toEqual(['by_option']);
  });

  it('matches a stack-keyed variable against where the call comes from', async () => {
    const before = d.jobs().length;
    const code = `
      import { simpleFit } from ${JSON.stringify(FIT)};
      async function stageA() { return simpleFit('train.jsonl', { stage: 20 }); }
      async function stageB() { return simpleFit('train.jsonl', { stage: 21 }); }
      const a = await stageA();
      const b = await stageB();
      console.log('RESULT ' + JSON.stringify({ driver: process.pid, stages: [a.pid, b.pid] }));
    `;
    const keyed = JSON.stringify({ 'drive\\d+\\.mjs::stageB,fit\\.js::simple_fit': { ...JSON.parse(LOCAL_INFO), job_name: 'keyed' } });
    const r = await d.drive(code, { MYFIT_SIMPLE_FIT_REMOTEINFO: keyed });
    const { driver: pid, stages } = stagesOf(r);
    expect(stages[0]).toBe(pid);
    expect(stages[1]).not.toBe(pid);
    expect(r.stderr).toMatch(/key "drive.*stageB.*" matched/);
    expect(d.jobs().slice(before).map((j) => j.name)).toEqual(['keyed']);
  });

  it('throws a remote exception as RemoteError with the remote type and message', async () => {
    const r = await d.drive(`
      import { failing } from ${JSON.stringify(OPS)};
      try { await failing(42); } catch (e) { console.log('CAUGHT ' + e.constructor.name + ' ' + e.remoteName + ' ' + e.message); }
    `, { XPR_TEST_FAILING_REMOTEINFO: LOCAL_INFO });
    expect(r.stdout).toMatch(/CAUGHT RemoteError RangeError RangeError: value out of range: 42 \(in job failing_/);
  });

  it('re-attaches after the driver is killed while its job runs', async () => {
    await reattachAfterKill(d, LOCAL_INFO, path.join(d.dir, 'counted.log'));
  }, 60_000);
});

const unavailable = await clusterShapeUnavailable();
skipOrFail('remoteCall over SSH to SLURM', unavailable);

describe.skipIf(unavailable !== undefined)('remoteCall on SLURM over SSH as xpr-bash', () => {
  const account = 'xpr-bash';
  let sshd: SshdHandle;
  let d: Driver;
  const info = JSON.stringify({ sys_name: 'cluster', resources: { num_cores: 1, max_time: '10m' }, partial_node: true, check_interval: 1 });

  beforeAll(async () => {
    sshd = await startSshd();
    d = driver('xpr-remotecall-ssh-', { systems: { cluster: userSystemConfig(account) } }, { XPR_SSH_CONFIG: sshd.sshConfigFile, XPR_SSH: 'builtin' });
  });
  afterAll(async () => {
    await d?.cleanup();
    await closeAllSshConnections();
    await sshd?.stop();
  });

  it('sends each simple fit as a job with only the inner variable, and the whole fit as one with only the outer', async () => {
    const inner = await d.drive(MULTISTAGE, { MYFIT_SIMPLE_FIT_REMOTEINFO: info });
    expect(new Set(stagesOf(inner).stages).size).toBe(3);
    expect(d.jobs().map((j) => j.name)).toEqual(['simple_fit', 'simple_fit', 'simple_fit']);
    expect(JSON.parse(fs.readFileSync(path.join(d.dir, 'model_2.json'), 'utf8')).stage).toBe(2);

    for (const f of fs.readdirSync(d.dir)) if (f.startsWith('model_')) fs.rmSync(path.join(d.dir, f));
    const outer = await d.drive(MULTISTAGE, { MYFIT_MULTISTAGE_FIT_REMOTEINFO: info });
    expect(new Set(stagesOf(outer).stages).size).toBe(1);
    expect(d.jobs().map((j) => j.name).slice(3)).toEqual(['multistage_fit']);
    expect(fs.readdirSync(d.dir).filter((f) => f.startsWith('model_')).sort()).toEqual(['model_0.json', 'model_1.json', 'model_2.json']);
  }, 240_000);

  it('re-attaches after the driver is killed while its job runs', async () => {
    // The job writes its log on the cluster account's side: the driver's dir is not its to write.
    const log = path.join(clusterUser(account).home, `xpr-remotecall-${path.basename(d.dir)}.log`);
    try {
      await reattachAfterKill(d, info, log);
    } finally {
      fs.rmSync(log, { force: true });
    }
  }, 180_000);
});
