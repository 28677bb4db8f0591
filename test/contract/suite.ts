// The scheduler contract: the same cases, through xpr's real code paths (Job.create → startMany →
// waitAll/getResults, cancel, a hold kept and released, find-by-name recovery), over each backend given to
// `defineContract` (backends.ts): the local queue, the real one-node SLURM (here, and over SSH as
// the cluster's own accounts), the real Grid Engine, Torque as SLURM's Torque wrappers over that
// SLURM, and PBS Professional through the command shim in test/shims/pbs. A backend that cannot run
// here skips with one line saying why; in CI (CI=true) that is a failure instead. What a scheduler
// cannot report (why a job ended, a hold) its backend's flags say, and those checks are left out.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobDiedError, RemoteError } from '../../src/errors.js';
import { schedulerName } from '../../src/job/identity.js';
import { Job, stderrTail, type StartOptions } from '../../src/job/job.js';
import { RESULT_FILE, STARTED_FILE, SUBMIT_DIR } from '../../src/runner/protocol.js';
import { shQuote } from '../../src/util/shell.js';
import { runDriver } from '../helpers/driver.js';
import * as ops from '../fixtures/jobs/ops.js';
import { LOCALQ_MAIN, type Backend, type BackendKind } from './backends.js';
import { contractProject, type ContractProject } from './project.js';

const OPS = path.resolve('test/fixtures/jobs/ops.js');
const inCI = process.env.CI === 'true';
/** Poll at most every second (the default for a remote system is 30 s). */
const WAIT = { timeout: 150, checkInterval: 1 };
const SUITE_MS = (WAIT.timeout + 30) * 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const token = () => Math.random().toString(36).slice(2, 8);

/** Header lines that submit a job held, in each scheduler's own words. */
const HOLD_DIRECTIVE: Record<BackendKind, string> = {
  local: '#LOCALQ --hold',
  slurm: '#SBATCH --hold',
  pbs: '#PBS -h',
  sge: '#$ -h',
  torque: '#PBS -h',
};

/** The scheduler's own commands that hold and release a job (xpr never does either), given its id. */
const localq = `${shQuote(process.execPath)} ${shQuote(LOCALQ_MAIN)}`;
const HOLD_COMMANDS: Record<BackendKind, { hold: string; release: string }> = {
  local: { hold: `${localq} hold`, release: `${localq} release` },
  slurm: { hold: 'scontrol hold', release: 'scontrol release' },
  pbs: { hold: 'qhold', release: 'qrls' },
  sge: { hold: 'qhold', release: 'qrls' },
  torque: { hold: 'qhold', release: 'qrls' },
};

/** Lines of a status query in a command log (the transport runs `cd <rundir> && <command>`). */
const STATUS_COMMAND: Record<BackendKind, RegExp> = {
  local: /localq\/main\.js' status /,
  slurm: /(?:^|&& )squeue -h -r -t all /,
  pbs: /qstat -f -t /,
  sge: /(?:^|&& )qstat -xml -u /,
  // Both ways of the command (real Torque's, the SLURM wrapper's) are in one command line.
  torque: /qstat -f -t /,
};
const SUBMIT_COMMAND: Record<BackendKind, RegExp> = {
  local: /localq\/main\.js' submit /,
  slurm: /sbatch --parsable /,
  pbs: /qsub '/,
  sge: /qsub -terse /,
  torque: /qsub -o '/,
};

/**
 * The real schedulers' own memory requests with xpr's {max_mem}: the line as rendered for 1536 MB,
 * and a command (given the job id) whose output shows the amount the scheduler took from it.
 */
const MEMORY: Partial<Record<BackendKind, { directive: string; rendered: string; show: (id: string) => string; took: RegExp }>> = {
  slurm: {
    directive: '#SBATCH --mem={max_mem}', rendered: '#SBATCH --mem=1536M',
    show: (id) => `scontrol -o show job ${id}`, took: /\bMinMemoryNode=1\.50G\b/,
  },
  sge: {
    directive: '#$ -l h_vmem={max_mem}', rendered: '#$ -l h_vmem=1536M',
    show: (id) => `qstat -j ${id}`, took: /^hard resource_list:.*\bh_vmem=1536M\b/m,
  },
  // sbatch reads the #PBS line itself; the wrapper's qstat shows no memory, so SLURM is asked.
  torque: {
    directive: '#PBS -l mem={max_mem}', rendered: '#PBS -l mem=1536mb',
    show: (id) => `scontrol -o show job ${id}`, took: /\bMinMemoryNode=1\.50G\b/,
  },
};

// Which backends can run here, found (and their test clusters started) once, before any test.

function startOptions(backend: Backend, extra: Partial<StartOptions> = {}): StartOptions {
  return { system: backend.system, resources: { num_cores: 1, max_time: '5m' }, partialNode: true, ...extra };
}

async function withProject<T>(backend: Backend, fn: (p: ContractProject) => Promise<T>, label?: string): Promise<T> {
  const p = contractProject(backend, label);
  try {
    return await fn(p);
  } finally {
    // A failed test must not leave jobs behind on a shared scheduler (a held one would wait for ever).
    const left = p.project.store.list({ status: ['submitted', 'started'] }).map((r) => r.remoteId).filter((id): id is string => !!id);
    if (left.length) await p.system.cancel(left).catch(() => undefined);
    await p.cleanup();
  }
}

function create(p: ContractProject, name: string, fn: (...a: never[]) => unknown, extra: Record<string, unknown> = {}): Promise<Job> {
  return Job.create({ name, fn, module: OPS, project: p.project, ...extra });
}

/** Sync until the job's status is one of `want` (or give up after `ms`). */
async function syncUntil(job: Job, want: (j: Job) => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!want(job)) {
    if (Date.now() > deadline) throw new Error(`job ${job.id} is still ${job.status}/${job.info.remoteStatus} after ${ms} ms`);
    await sleep(200);
    await job.sync();
  }
}

/** Every job ended as `status`; else a failure that shows the first other job's stderr. */
function expectAll(jobs: readonly Job[], status: string): void {
  const odd = jobs.find((j) => j.status !== status);
  if (odd) {
    throw new Error(`job ${odd.id} is ${odd.status} (${odd.info.remoteStatus}/${odd.info.remoteReason}), not ${status}; ` +
      `statuses ${jobs.map((j) => j.status).join(' ')}\n${stderrTail(odd.stageDir)}`);
  }
}

/** The scheduler's count of jobs named `prefix*`, once it settles at `expected` (accounting lags). */
async function settledCount(backend: Backend, prefix: string, expected: number, ms = 15_000): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const n = await backend.countJobs(prefix);
    if (n === expected || Date.now() > deadline) return n;
    await sleep(500);
  }
}

/**
 * The contract over `backends`, all at once. Which of them can run here is found (and their test
 * clusters started) first, before any test.
 */
export async function defineContract(backends: readonly Backend[]): Promise<void> {
  const unavailable = new Map<string, string | undefined>(
    await Promise.all(backends.map(async (b) => [b.name, await b.available()] as const)),
  );
  afterAll(async () => {
    for (const b of backends) await b.cleanup();
  });

  describe.concurrent.each(backends.map((b) => [b.name, b] as const))('scheduler contract: %s', (name, backend) => {
    const why = unavailable.get(name);
    if (why !== undefined) {
      if (inCI) {
        it(`${name} is available (required in CI)`, () => {
          throw new Error(`${name} is required in CI but unavailable: ${why}`);
        });
      } else {
        it.skip(`${name} unavailable: ${why}`, () => undefined);
      }
      return;
    }
    const remote = backend.name !== 'local';

    it('runs one job and returns its result and stdout', () => withProject(backend, async (p) => {
      const job = await create(p, 'scale', ops.scale, { args: [[1, 2, 3]], kwargs: { factor: 3 } });
      await job.start(startOptions(backend));
      expect(job.status).toBe('submitted');
      expect(job.info.system).toBe(backend.system);
      const { result, stdout } = await job.getResults(WAIT);
      expect(result).toEqual([3, 6, 9]);
      expect(stdout).toBe('scaling 3 items\n');
      expect(job.status).toBe('succeeded');
      if (remote) {
        // Staged to the system's rundir, run there, and the outcome fetched back.
        expect(p.system.inPlace).toBe(false);
        const remoteDir = p.system.remoteDirOf(job.id);
        expect(remoteDir.startsWith(backend.rundirPrefix(p.dir))).toBe(true);
        expect(fs.existsSync(path.join(backend.localPath(remoteDir), RESULT_FILE))).toBe(true);
        expect(fs.existsSync(path.join(job.stageDir, RESULT_FILE))).toBe(true);
      }
    }));

    it('sends 5 jobs started together as one array and returns their results in order', () => withProject(backend, async (p) => {
      const tag = `arr-${token()}`;
      const jobs = await Promise.all([1, 2, 3, 4, 5].map((x) =>
        create(p, tag, ops.scale, { args: [[x]], kwargs: { factor: 10 } })));
      await Job.startMany(jobs, startOptions(backend));
      const schedNames = new Set(jobs.map((j) => j.info.schedName));
      expect(schedNames.size).toBe(1);
      const schedName = [...schedNames][0]!;
      // The scheduler knows one job by that name, and every element id is one of its array's.
      const parent = await p.system.findSubmitted(schedName);
      expect(parent).toBeDefined();
      expect(jobs.map((j) => j.info.remoteId)).toEqual(jobs.map((_j, i) => p.system.scheduler.arrayElementId(parent!, i)));
      expect(p.transport.commands.filter((c) => SUBMIT_COMMAND[backend.kind].test(c))).toHaveLength(1);
      const results = [];
      for (const j of jobs) results.push((await j.getResults(WAIT)).result);
      expect(results).toEqual([[10], [20], [30], [40], [50]]);
      expect(await settledCount(backend, `${schedulerName(tag).replace(/_[^_]*$/, '')}_`, 1)).toBe(1);
    }));

    it("works with a job name and project dir holding +, ', a space and $", () => withProject(backend, async (p) => {
      const name = "fit+x 'a' $HOME";
      const job = await create(p, name, ops.scale, { args: [[2]], kwargs: { factor: 2 } });
      expect(job.id.startsWith(`${name}_`)).toBe(true);
      await job.start(startOptions(backend));
      expect((await job.getResults(WAIT)).result).toEqual([4]);
      expect(fs.existsSync(path.join(backend.localPath(p.system.remoteDirOf(job.id)), RESULT_FILE))).toBe(true);
      expect(p.project.store.list({ name: ["fit\\+x 'a' \\$HOME"] }).map((r) => r.id)).toEqual([job.id]);
    }, "x+y 'q' $Z"));

    it('brings a thrown error back as RemoteError with its type name and message', () => withProject(backend, async (p) => {
      const job = await create(p, 'fails', ops.fails);
      await job.start(startOptions(backend));
      const err = await job.getResults(WAIT).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).remoteName).toBe('RangeError');
      expect((err as RemoteError).message).toContain('value out of range: 42');
      expect((err as RemoteError).remoteStack).toMatch(/at fails \(.*test\/fixtures\/jobs\/ops\.js:\d+:\d+\)/);
      expect(job.status).toBe('failed');
    }));

    it('names a job killed at its wall time TIMEOUT', () => withProject(backend, async (p) => {
      const job = await create(p, 'overtime', ops.sleepy, { args: [backend.timeout.sleep] });
      await job.start(startOptions(backend, { resources: { num_cores: 1, max_time: backend.timeout.maxTime } }));
      const err = await job.getResults({ ...WAIT, timeout: backend.timeout.testMs / 1000 - 10 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobDiedError);
      if (backend.namesTimeout) expect((err as JobDiedError).reason).toBe('TIMEOUT');
      expect(job.status).toBe('died');
    }), backend.timeout.testMs);

    it('ends a cancelled job as died, CANCELLED', () => withProject(backend, async (p) => {
      const job = await create(p, 'cancelled', ops.sleepy, { args: [120] });
      await job.start(startOptions(backend));
      // Cancel it while it runs (a queued job would never write anything at all).
      await syncUntil(job, (j) => j.status === 'started');
      await job.cancel();
      const err = await job.getResults(WAIT).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobDiedError);
      expect(job.status).toBe('died');
      if (backend.namesCancel) expect((err as JobDiedError).reason).toBe('CANCELLED');
    }));

    it("keeps a job held with the scheduler's own hold, and it runs once released", () => withProject(backend, async (p) => {
      const job = await create(p, 'held', ops.scale, { args: [[7]], kwargs: { factor: 1 } });
      // Submitted held (the scheduler's own directive), so the job is certainly still queued when
      // the hold command acts on it; hold must keep it held, release must let it run.
      await job.start(startOptions(backend, { headerExtra: [HOLD_DIRECTIVE[backend.kind]] }));
      const held = backend.reportsHeld ? 'held' : 'queued';
      await syncUntil(job, (j) => j.info.remoteStatus === held, 30_000);
      const { hold, release } = HOLD_COMMANDS[backend.kind];
      const run = async (command: string) => expect(await p.transport.exec(`${command} ${shQuote(job.info.remoteId!)}`)).toMatchObject({ code: 0 });
      await run(hold);
      // A job submitted after the hold that has run to its end shows the scheduler has since started
      // what it could: the held one is still waiting only because it is held.
      const later = await create(p, 'after-hold', ops.scale, { args: [[1]], kwargs: { factor: 1 } });
      await later.start(startOptions(backend));
      expect((await later.getResults(WAIT)).result).toEqual([1]);
      expect(await job.sync()).toBe('submitted');
      expect(job.info.remoteStatus).toBe(held);
      expect(fs.existsSync(path.join(backend.localPath(p.system.remoteDirOf(job.id)), STARTED_FILE))).toBe(false);
      await run(release);
      expect((await job.getResults(WAIT)).result).toEqual([7]);
    }));

    it.runIf(MEMORY[backend.kind])('takes {max_mem} in its own memory directive, as the amount meant', () => withProject(backend, async (p) => {
      const mem = MEMORY[backend.kind]!;
      const job = await create(p, 'mem', ops.scale, { args: [[1]], kwargs: { factor: 1 } });
      // Held, so that it only has to be accepted; a scheduler that refuses the value fails the submit.
      await job.start(startOptions(backend, {
        resources: { num_cores: 1, max_time: '5m', max_mem_tot: '1536mb' },
        headerExtra: [HOLD_DIRECTIVE[backend.kind], mem.directive],
      }));
      const script = fs.readFileSync(path.join(p.root, SUBMIT_DIR, `${job.info.schedName}.sh`), 'utf8');
      expect(script.split('\n')).toContain(mem.rendered);
      const shown = await p.transport.exec(mem.show(job.info.remoteId!));
      expect(shown.stdout).toMatch(mem.took);
      await job.cancel();
    }));

    it('finds a job by name after a driver crashed between submit and record', () => withProject(backend, async (p) => {
      const log = path.join(backend.sharedDir(p.dir), `runs-${token()}.log`);
      const call = { name: 'once', fn: ops.counted, args: [7], module: OPS, envVars: { XPR_TEST_RUN_LOG: log } };
      // A driver process making the same call, killed by its crash point right after the submit
      // command returned, before it recorded the remote id.
      const driver = path.join(p.dir, 'driver.mjs');
      fs.writeFileSync(driver, `
        import { Job, Project } from ${JSON.stringify(path.resolve('dist/src/index.js'))};
        import { counted } from ${JSON.stringify(OPS)};
        const project = Project.open();
        const job = await Job.create({ name: 'once', fn: counted, args: [7], module: ${JSON.stringify(OPS)}, envVars: ${JSON.stringify(call.envVars)}, project });
        await job.start(${JSON.stringify(startOptions(backend))});
      `);
      const killed = await runDriver(driver, p.dir, { ...backend.env, EXPYRE_ROOT: p.root, XPR_TEST_CRASH_AT: 'after-submit' });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      const [left] = p.project.store.list();
      expect(left).toMatchObject({ status: 'created', system: backend.system, remoteId: null });
      expect(left!.submitIntent).not.toBeNull();
      const schedName = left!.schedName!;
      expect(await settledCount(backend, schedName, 1)).toBe(1);

      // The next run of the driver: same call, re-attached, started again, found by name.
      const next = p.reopen();
      const again = await Job.create({ ...call, project: next.project });
      expect(again.reattached).toBe(true);
      expect(again.id).toBe(left!.id);
      await again.start(startOptions(backend));
      expect(again.info.schedName).toBe(schedName);
      expect(again.info.remoteId).toMatch(/\S/);
      expect(next.transport.commands.filter((c) => SUBMIT_COMMAND[backend.kind].test(c))).toHaveLength(0);
      expect((await again.getResults(WAIT)).result).toBe(8);
      expect(fs.readFileSync(log, 'utf8')).toBe('7\n');
      expect(await settledCount(backend, schedName, 1)).toBe(1);
    }));

    it('submits nothing when the same calls run a second time', () => withProject(backend, async (p) => {
      const tag = `again-${token()}`;
      const prefix = `${schedulerName(tag).replace(/_[^_]*$/, '')}_`;
      const calls = [1, 2].map((x) => ({ name: tag, fn: ops.scale, args: [[x]], kwargs: { factor: 5 }, module: OPS }));
      const first = await Job.createMany(calls.map((c) => ({ ...c, project: p.project })));
      await Job.startMany(first, startOptions(backend));
      await Job.waitAll(first, WAIT);
      expectAll(first, 'succeeded');
      expect(await settledCount(backend, prefix, 1)).toBe(1);

      const next = p.reopen();
      const second = await Job.createMany(calls.map((c) => ({ ...c, project: next.project })));
      expect(second.map((j) => j.reattached)).toEqual([true, true]);
      expect(second.map((j) => j.id)).toEqual(first.map((j) => j.id));
      await Job.startMany(second, startOptions(backend));
      const results = [];
      for (const j of second) results.push((await j.getResults(WAIT)).result);
      expect(results).toEqual([[5], [10]]);
      expect(next.transport.commands.filter((c) => SUBMIT_COMMAND[backend.kind].test(c))).toHaveLength(0);
      // The scheduler lists jobs in the order they were submitted, with a lag: once a job submitted
      // after everything else is listed, a stray submission of these calls would be listed too.
      const last = await Job.create({ name: `${tag}-end`, fn: ops.scale, args: [[0]], kwargs: { factor: 1 }, module: OPS, project: next.project });
      await last.start(startOptions(backend));
      expect(await settledCount(backend, `${schedulerName(`${tag}-end`).replace(/_[^_]*$/, '')}_`, 1)).toBe(1);
      expect(await backend.countJobs(prefix)).toBe(1);
      await last.getResults(WAIT);
    }));

    it('makes one scheduler query per poll round for many jobs', () => withProject(backend, async (p) => {
      const a = await Promise.all([1, 2, 3].map((x) => create(p, 'poll-a', ops.sleepy, { args: [0.5 * x] })));
      const b = await Promise.all([4, 5, 6].map((x) => create(p, 'poll-b', ops.scale, { args: [[x]], kwargs: { factor: 1 } })));
      // The gate job runs until the first round is over, so there are always several rounds, however
      // slowly the jobs were started.
      const gateFile = path.join(backend.sharedDir(p.dir), `gate-${token()}`);
      const gate = await create(p, 'poll-gate', ops.gate, { args: [gateFile] });
      await Job.startMany(a, startOptions(backend));
      await Job.startMany([...b, gate], startOptions(backend));
      const jobs = [...a, ...b, gate];
      const queriesBefore = p.system.polls.queries;
      const logBefore = p.transport.commands.length;
      let rounds = 0;
      await Job.waitAll(jobs, { ...WAIT, onProgress: () => { if (rounds++ === 0) fs.writeFileSync(gateFile, ''); } });
      expectAll(jobs, 'succeeded');
      expect((await gate.getResults(WAIT)).result).toBe('opened');
      expect(rounds).toBeGreaterThan(1);
      expect(p.system.polls.queries - queriesBefore).toBe(rounds);
      const statusQueries = p.transport.commands.slice(logBefore).filter((c) => STATUS_COMMAND[backend.kind].test(c));
      expect(statusQueries).toHaveLength(rounds);
    }));
  // SLURM's two cores serve two backends at once (slurm, torque), whose TIMEOUT jobs each hold one
  // for 60-90 s; and a job that ends without a named reason counts as died only after the
  // missing-job grace period (60 s). So a test gets as long as getResults waits (WAIT), and more.
  }, SUITE_MS);
}
