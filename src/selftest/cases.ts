// The cases of `xpr selftest`: xpr's scheduler contract, each through the same code paths a user's
// script takes (Job.create → start → getResults, cancel, a killed driver's rerun, autoparallelize),
// on one system. A case returns what it saw, or throws a CaseFailure saying what went wrong and
// which job dir to look in.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RemoteInfo } from '../autopara/remoteinfo.js';
import { JobDiedError, RemoteError } from '../errors.js';
import { Job, type JobOptions, type ResultsOptions, type StartOptions } from '../job/job.js';
import type { Project } from '../job/project.js';
import { templateFile } from '../util/paths.js';
import { startDriver } from './driver.js';

/** What a case needs: the project, the system, and how jobs are asked for and waited on there. */
export interface CaseContext {
  project: Project;
  dir: string;
  env: NodeJS.ProcessEnv;
  system: string;
  scheduler: string;
  info: RemoteInfo;
  start: StartOptions;
  wait: ResultsOptions & { timeout: number };
}

export class CaseFailure extends Error {
  constructor(message: string, readonly jobDir?: string) {
    super(message);
  }
}

export interface SelftestCase {
  id: string;
  title: string;
  /** Takes minutes: run only with --slow. */
  slow?: boolean;
  run(ctx: CaseContext): Promise<string>;
}

/**
 * The functions the jobs run. They live outside xpr's src/ and dist/ because xpr takes frames from
 * its own files for its own, and an autoparallelize wrapper must be found in a module of the user's.
 */
export const OPS_FILE = () => templateFile('selftest/ops.mjs');
type OpName = 'greet' | 'fails' | 'sleepy' | 'slowIncrement' | 'roundTrip';
type Ops = Record<OpName, JobOptions['fn']>;
let opsModule: Promise<Ops> | undefined;
const ops = (): Promise<Ops> => (opsModule ??= import(pathToFileURL(OPS_FILE()).href) as Promise<Ops>);

/** The job options every case's jobs share: the module of the functions, the project, env and commands. */
async function call(ctx: CaseContext, name: string, fn: OpName, args: unknown[], extra: Partial<JobOptions> = {}): Promise<JobOptions> {
  const m = await ops();
  return {
    // The system's name goes along as an argument the function ignores: systems tested at once
    // share the project, and identical calls would otherwise share one job.
    name: `xpr_selftest_${name}`, fn: m[fn], module: OPS_FILE(), exportName: fn,
    args: [...args, { selftestOn: ctx.system }], project: ctx.project,
    preCmds: ctx.info.pre_cmds, postCmds: ctx.info.post_cmds, envVars: ctx.info.env_vars, ...extra,
  };
}

function check(ok: boolean, message: string, job?: Job): void {
  if (!ok) throw new CaseFailure(message, job?.stageDir);
}

/** getResults, with any error turned into a failure that names the job dir. */
async function results(ctx: CaseContext, job: Job): Promise<{ result: unknown; stdout: string }> {
  try {
    return await job.getResults(ctx.wait);
  } catch (err) {
    throw new CaseFailure(firstLines(err), job.stageDir);
  }
}

/** What a thrown error says, short: its message (and hint) without stacks. */
function firstLines(err: unknown, n = 6): string {
  const text = err instanceof RemoteError ? `${err.message}\n${err.job.stderrTail}`
    : err instanceof Error ? ('describe' in err ? (err as { describe(): string }).describe() : err.message) : String(err);
  return text.split('\n').filter((l) => l.trim() !== '').slice(0, n).join('\n');
}

const show = (v: unknown) => JSON.stringify(v);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reasons some schedulers cannot report (SLURM's Torque wrappers): the job just died. */
const NAMES_NO_REASONS = new Set(['torque']);

export const CASES: readonly SelftestCase[] = [
  {
    id: 'one_job',
    title: 'one job: result and stdout',
    async run(ctx) {
      const job = await Job.create(await call(ctx, 'one', 'greet', ['selftest']));
      await job.start(ctx.start);
      const { result, stdout } = await results(ctx, job);
      const r = result as { greeting?: string; node?: string };
      check(r?.greeting === 'hello selftest', `expected the result { greeting: "hello selftest" }, got ${show(result)}`, job);
      check(stdout === 'hello from selftest\n', `expected stdout "hello from selftest\\n", got ${show(stdout)}`, job);
      return `node ${r.node ?? '?'} there`;
    },
  },
  {
    id: 'array',
    title: 'an array of 3',
    async run(ctx) {
      const jobs = await Job.createMany(await Promise.all(['a', 'b', 'c'].map((x) => call(ctx, 'array', 'greet', [x]))));
      await Job.startMany(jobs, ctx.start);
      const names = new Set(jobs.map((j) => j.info.schedName));
      check(names.size === 1, `expected one submission (a job array), got ${names.size}: ${[...names].join(', ')}`, jobs[0]);
      const got: unknown[] = [];
      for (const j of jobs) got.push(((await results(ctx, j)).result as { greeting: string }).greeting);
      check(show(got) === show(['hello a', 'hello b', 'hello c']), `expected the results in order, got ${show(got)}`, jobs[0]);
      return `one array, ${jobs.map((j) => j.info.remoteId).join(' ')}`;
    },
  },
  {
    id: 'failure',
    title: 'a failing job: the remote error',
    async run(ctx) {
      const job = await Job.create(await call(ctx, 'fails', 'fails', [42]));
      await job.start(ctx.start);
      const err = await job.getResults(ctx.wait).then(() => undefined, (e: unknown) => e);
      check(err instanceof RemoteError, `expected a RemoteError, got ${err === undefined ? 'a result' : firstLines(err)}`, job);
      const remote = err as RemoteError;
      check(remote.remoteName === 'RangeError' && remote.message.includes('selftest value out of range: 42'),
        `expected RangeError: selftest value out of range: 42, got ${remote.remoteName}: ${remote.message}`, job);
      return 'RangeError came back';
    },
  },
  {
    id: 'cancel',
    title: 'cancel → CANCELLED',
    async run(ctx) {
      const job = await Job.create(await call(ctx, 'cancel', 'sleepy', [600]));
      await job.start(ctx.start);
      // Cancelled while it runs: that is when a scheduler must record why it ended.
      const deadline = Date.now() + ctx.wait.timeout * 1000;
      while ((await job.sync()) !== 'started') {
        check(job.status === 'submitted', `the job ended as ${job.status} before it could be cancelled`, job);
        check(Date.now() < deadline, `the job did not start within ${ctx.wait.timeout} s`, job);
        await sleep(1000);
      }
      await job.cancel();
      const err = await job.getResults(ctx.wait).then(() => undefined, (e: unknown) => e);
      check(err instanceof JobDiedError, `expected the job to die, got ${err === undefined ? 'a result' : firstLines(err)}`, job);
      const reason = (err as JobDiedError).reason;
      if (NAMES_NO_REASONS.has(ctx.scheduler)) return `died (${ctx.scheduler} names no reason)`;
      check(reason === 'CANCELLED', `expected reason CANCELLED, got ${reason ?? 'none'}`, job);
      return 'CANCELLED';
    },
  },
  {
    id: 'timeout',
    title: 'over its time limit → TIMEOUT',
    slow: true,
    async run(ctx) {
      // The local queue kills at the second; batch schedulers count whole minutes and look every 30 s or so.
      const maxTime = ctx.scheduler === 'local' ? 3 : 60;
      const job = await Job.create(await call(ctx, 'timeout', 'sleepy', [1200]));
      await job.start({ ...ctx.start, resources: { ...ctx.info.resources.toSpec(), max_time: maxTime } });
      const err = await job.getResults(ctx.wait).then(() => undefined, (e: unknown) => e);
      check(err instanceof JobDiedError, `expected the job to die at ${maxTime} s, got ${err === undefined ? 'a result' : firstLines(err)}`, job);
      const reason = (err as JobDiedError).reason;
      if (NAMES_NO_REASONS.has(ctx.scheduler)) return `died (${ctx.scheduler} names no reason)`;
      check(reason === 'TIMEOUT', `expected reason TIMEOUT, got ${reason ?? 'none'}`, job);
      return `TIMEOUT at max_time ${maxTime} s`;
    },
  },
  {
    id: 'reattach',
    title: 're-attach after the driver is killed',
    async run(ctx) {
      const args = [41, 5];
      const opts = await call(ctx, 'reattach', 'slowIncrement', args);
      const job = { preCmds: opts.preCmds, postCmds: opts.postCmds, envVars: opts.envVars };
      const driver = startDriver(ctx.dir, ctx.env, 'submit', { name: opts.name, args: opts.args, job, start: startJson(ctx.start) });
      const first = await driver.said('SUBMITTED', ctx.wait.timeout * 1000) as { id: string; remoteId: string };
      driver.child.kill('SIGKILL');
      const again = await Job.create(opts);
      check(again.reattached && again.id === first.id, `the rerun made a new job ${again.id} instead of re-attaching to ${first.id}`, again);
      await again.start(ctx.start);
      check(again.info.remoteId === first.remoteId, `the rerun submitted again (${again.info.remoteId}, first ${first.remoteId})`, again);
      const { result } = await results(ctx, again);
      check(result === 42, `expected 42, got ${show(result)}`, again);
      return `re-attached to ${first.remoteId}`;
    },
  },
  {
    id: 'files',
    title: 'input_files / output_files round trip',
    async run(ctx) {
      const input = path.join(ctx.dir, 'selftest-in.txt');
      const text = 'xpr selftest: a file staged in and one brought back\n';
      fs.writeFileSync(input, text);
      const job = await Job.create(await call(ctx, 'files', 'roundTrip', ['selftest-in.txt', 'selftest-out.txt'], {
        inputFiles: [input], outputFiles: ['selftest-out.txt'],
      }));
      await job.start(ctx.start);
      const { result } = await results(ctx, job);
      check(result === text.length, `expected the function to read ${text.length} characters, got ${show(result)}`, job);
      const back = path.join(job.stageDir, 'selftest-out.txt');
      check(fs.existsSync(back), `the output file did not come back to ${back}`, job);
      check(fs.readFileSync(back, 'utf8') === text.toUpperCase(), `the output file came back with other contents: ${show(fs.readFileSync(back, 'utf8'))}`, job);
      return 'in and back';
    },
  },
  {
    id: 'autoparallelize',
    title: 'an autoparallelize call of 2 chunks',
    async run(ctx) {
      const info = { ...ctx.info.toJSON(), job_name: 'xpr_selftest_autopara', num_inputs_per_queued_job: 2 };
      const driver = startDriver(ctx.dir, { ...ctx.env, WFL_EXPYRE_INFO: JSON.stringify(info) }, 'autopara', { items: [1, 2, 3, 4], kwargs: { selftestOn: ctx.system } });
      const result = await driver.said('RESULT', ctx.wait.timeout * 1000);
      const jobs = ctx.project.store.list({ name: ['xpr_selftest_autopara_chunk_.*'] }).filter((r) => r.system === ctx.system);
      check(show(result) === show([2, 4, 6, 8]), `expected [2,4,6,8], got ${show(result)}`, jobs[0]?.stageDir ? Job.get(jobs[0].id, ctx.project) : undefined);
      check(jobs.length === 2, `expected 2 jobs (2 chunks of 2), found ${jobs.length}`);
      return '2 chunks';
    },
  },
];

/** StartOptions as JSON for a driver process (its Resources as their spec). */
function startJson(start: StartOptions): unknown {
  const r = start.resources as { toSpec?: () => unknown };
  return { ...start, resources: typeof r.toSpec === 'function' ? r.toSpec() : start.resources };
}
