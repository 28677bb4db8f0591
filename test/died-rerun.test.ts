// A rerun of a call whose job died, on the built-in local system with real jobs: a job that died of a
// limit the scheduler named is re-attached only while the call asks for the same resources, and is
// resubmitted (as a new job, saying why) once it asks for other ones; a job that died with no reason
// named is re-attached as in ExPyRe. Every JobDiedError says how to run the call again, and that
// way works.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { failJob } from '../src/cli/commands/fail-job.js';
import { JobDiedError } from '../src/errors.js';
import { Job } from '../src/job/job.js';
import { readPid } from '../src/localq/queue.js';
import { tempProject, type TempProject } from './helpers/project.js';
import * as ops from './fixtures/jobs/ops.js';

const OPS = path.resolve('test/fixtures/jobs/ops.js');
const ONE_SECOND = { resources: { num_cores: 1, max_time: 1 } };
const FIVE_MINUTES = { resources: { num_cores: 1, max_time: '5m' } };

let t: TempProject;
beforeEach(() => { t = tempProject(); });
afterEach(async () => {
  vi.restoreAllMocks();
  await t.cleanup();
});

/** The same call each time: `sleepy(seconds)`, as a rerun of a script makes it. */
const nap = (seconds: number) => Job.create({ name: 'nap', fn: ops.sleepy, module: OPS, args: [seconds], project: t.project });

async function diedOf(job: Job): Promise<JobDiedError> {
  const err = await job.getResults({ timeout: 60 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(JobDiedError);
  return err as JobDiedError;
}

/** What a start writes on stderr while `fn` runs. */
async function stderrOf(fn: () => Promise<void>): Promise<string> {
  let text = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  });
  try {
    await fn();
  } finally {
    spy.mockRestore();
  }
  return text;
}

describe('a job that died of its time limit (TIMEOUT)', () => {
  it('is resubmitted as a new job once the call asks for more time, and says why on stderr', async () => {
    const first = await nap(3);
    await first.start(ONE_SECOND);
    expect((await diedOf(first)).reason).toBe('TIMEOUT');

    const rerun = await nap(3);
    expect(rerun.reattached).toBe(true);
    expect(rerun.id).toBe(first.id);
    const said = await stderrOf(() => rerun.start(FIVE_MINUTES));
    expect(rerun.id).not.toBe(first.id);
    expect(rerun.reattached).toBe(false);
    expect(said).toBe(`xpr: job ${first.id} died (TIMEOUT) with max_time 1 s; resubmitting with max_time 300 s as job ${rerun.id}\n`);
    expect(rerun.missReason).toBe(`the same call ran as ${first.id}, which died (TIMEOUT) with max_time 1 s`);
    expect((await rerun.getResults({ timeout: 60 })).result).toBe('woke');

    // The died job stays in the history as it ended, and points to the job that took its place.
    const old = t.project.store.get(first.id)!;
    expect(old).toMatchObject({ status: 'died', remoteReason: 'TIMEOUT' });
    expect(old.info.replacedBy).toBe(rerun.id);
    expect(t.project.store.list().map((r) => r.id).sort()).toEqual([first.id, rerun.id].sort());
    // A later identical call re-attaches to the new job, whatever it asks.
    const third = await nap(3);
    expect(third).toMatchObject({ id: rerun.id, reattached: true });
    await third.start(ONE_SECOND);
    expect(third.id).toBe(rerun.id);
  });

  it('is re-attached while the call asks for the same; the error names fail_job and rm, which let it run again', async () => {
    const first = await nap(3);
    await first.start(ONE_SECOND);
    await diedOf(first);

    const rerun = await nap(3);
    await rerun.start(ONE_SECOND);
    expect(rerun.id).toBe(first.id);
    const err = await diedOf(rerun);
    expect(err.message).toBe(`Job ${first.id} died (TIMEOUT) without writing a result`);
    expect(err.hint).toContain('To run the call again: ask for a longer max_time in start()');
    expect(err.hint).toContain(`xpr fail_job -i ${first.id}`);
    expect(err.hint).toContain(`xpr rm -i ${first.id}`);
    expect(t.project.store.list()).toHaveLength(1);

    // What the hint says works: after fail_job, the same call with the same resources runs afresh.
    const failed = await failJob({ cwd: t.dir, env: t.env, id: first.id, yes: true });
    expect(failed.failed.map((f) => f.id)).toEqual([first.id]);
    const afresh = await nap(0);
    expect(afresh.reattached).toBe(false);
  });
});

describe('a job killed with no reason named', () => {
  it('is re-attached whatever the call asks, as in ExPyRe, and the error says how to run it again', async () => {
    const first = await nap(60);
    await first.start(FIVE_MINUTES);
    let pid: number | undefined;
    for (let i = 0; i < 100 && pid === undefined; i++) {
      pid = readPid(process.env.XPR_LOCALQ_DIR!, first.info.remoteId!)?.pid;
      if (pid === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    process.kill(-pid!, 'SIGKILL');
    expect((await diedOf(first)).reason).toBeUndefined();

    const rerun = await nap(60);
    await rerun.start({ resources: { num_cores: 1, max_time: '10m' } });
    expect(rerun.id).toBe(first.id);
    expect(rerun.status).toBe('died');
    const err = await diedOf(rerun);
    expect(err.hint).toContain(`its files may yet show up (xpr sync -i ${first.id} looks again)`);
    expect(err.hint).toContain(`xpr fail_job -i ${first.id}`);
    expect(fs.existsSync(first.stageDir)).toBe(true);
  });
});
