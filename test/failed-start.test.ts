// A start that fails its checks (invalid resources, no partition that fits, a rundir that cannot be
// made, an unknown system) leaves nothing behind: no job record, no stage dir, no job script; a job
// that was there before (re-attached) is left exactly as it was. Through the Job API and
// `xpr create_job`, with real jobs on the local queue where a start succeeds.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createJob } from '../src/cli/commands/create-job.js';
import { exitCodeOf } from '../src/cli/exit.js';
import { ConfigError, XprError } from '../src/errors.js';
import { Job } from '../src/job/job.js';
import type { Project } from '../src/job/project.js';
import type { ResourcesSpec } from '../src/resources/resources.js';
import { JobStore, type JobRecord } from '../src/store/jobstore.js';
import { cliProject, openProject, OPS, type CliProject } from './cli/helpers.js';
import * as ops from './fixtures/cli/ops.js';

let p: CliProject;
let project: Project;
beforeEach(() => {
  p = cliProject();
  // A file where the rundir's parent should be: no user can make a dir under it.
  fs.writeFileSync(path.join(p.dir, 'not-a-dir'), '');
  fs.writeFileSync(path.join(p.root, 'config.json'), JSON.stringify({
    systems: {
      small: { host: null, scheduler: 'local', partitions: { short: { num_cores: 2, max_time: '1h' } } },
      blocked: { host: null, scheduler: 'local', rundir: path.join(p.dir, 'not-a-dir', 'rundir') },
    },
  }));
  project = openProject(p);
});
afterEach(async () => {
  await project.close();
  await p.cleanup();
});

/** Everything a start could leave: the job records, the stage dirs and the job scripts. */
function leftBehind(): { rows: JobRecord[]; runDirs: string[]; scripts: string[] } {
  let rows: JobRecord[] = [];
  if (fs.existsSync(p.dbPath)) {
    const store = JobStore.open(p.dbPath);
    rows = store.list();
    store.close();
  }
  const submitDir = path.join(p.root, '_xpr_submit');
  return {
    rows,
    runDirs: fs.readdirSync(p.root).filter((f) => f.startsWith('run_')),
    scripts: fs.existsSync(submitDir) ? fs.readdirSync(submitDir) : [],
  };
}

const NOTHING = { rows: [], runDirs: [], scripts: [] };
const double = (x: number) => Job.create({ name: 'double', fn: ops.double, module: OPS, args: [x], project });

describe('a new job whose start fails its checks', () => {
  it.each<[string, { system?: string; resources: ResourcesSpec }, RegExp]>([
    ['invalid resources', { resources: { num_cores: 1 } as ResourcesSpec }, /Invalid resources \(1 problem\)/],
    ['no partition that fits', { system: 'small', resources: { num_cores: 1, max_time: '2h' } }, /No partition/],
    ['a rundir that cannot be made', { system: 'blocked', resources: { num_cores: 1, max_time: '5m' } }, /Cannot create the rundir .*not-a-dir\/rundir/],
    ['an unknown system', { system: 'nope', resources: { num_cores: 1, max_time: '5m' } }, /nope/],
  ])('%s: leaves no record, stage dir or script', async (_what, start, message) => {
    const job = await double(1);
    expect(leftBehind().rows).toHaveLength(1);
    const err = await job.start(start).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XprError);
    expect((err as Error).message).toMatch(message);
    expect(leftBehind()).toEqual(NOTHING);
    expect(() => job.reload()).toThrow(/was removed when its start failed/);
  });

  it('can be started again once the start is fixed: it is staged anew', async () => {
    const job = await double(2);
    await expect(job.start({ system: 'small', resources: { num_cores: 1, max_time: '2h' } })).rejects.toThrow(/No partition/);
    expect(leftBehind()).toEqual(NOTHING);
    await job.start({ system: 'small', resources: { num_cores: 1, max_time: '30m' } });
    expect(job.status).toBe('submitted');
    expect((await job.getResults({ timeout: 60 })).result).toBe(4);
    expect(leftBehind().rows.map((r) => r.id)).toEqual([job.id]);
  });
});

describe('a re-attached job whose start fails its checks', () => {
  it('is left exactly as it was, record and stage dir', async () => {
    const made = await double(3);
    const before = leftBehind();
    const files = fs.readdirSync(made.stageDir);
    const again = await double(3);
    expect(again).toMatchObject({ id: made.id, reattached: true });
    const errors = [
      await again.start({ system: 'small', resources: { num_cores: 1, max_time: '2h' } }).catch((e: unknown) => e),
      await again.start({ system: 'blocked', resources: { num_cores: 1, max_time: '5m' } }).catch((e: unknown) => e),
    ];
    expect(leftBehind()).toEqual(before);
    expect(fs.readdirSync(made.stageDir)).toEqual(files);
    expect(errors.map((e) => (e as Error).message)).toEqual([expect.stringMatching(/No partition/), expect.stringMatching(/Cannot create the rundir/)]);
  });
});

describe('xpr create_job with a start that fails its checks', () => {
  const create = (extra: Record<string, string>) =>
    createJob({ ...p.ctx, module: OPS, exportName: 'double', args: '[21]', ...extra }).catch((e: unknown) => e);

  it.each<[string, Record<string, string>, RegExp]>([
    ['invalid -r', { resources: '{"num_cores": 1}' }, /Invalid resources/],
    ['-r that fits no partition', { resources: '{"num_cores": 1, "max_time": "2h"}', system: 'small' }, /No partition/],
    ['a rundir that cannot be made', { resources: '{"num_cores": 1, "max_time": "5m"}', system: 'blocked' }, /Cannot create the rundir/],
  ])('%s: exit 1, and no record, stage dir or script', async (_what, extra, message) => {
    const err = await create(extra);
    expect(exitCodeOf(err)).toBe(1);
    expect((err as Error).message).toMatch(message);
    expect(leftBehind()).toEqual(NOTHING);
  });

  it('an identical call already recorded: its record is left as it was', async () => {
    await create({});
    const before = leftBehind();
    expect(before.rows).toHaveLength(1);
    const errors = [
      await create({ resources: '{"num_cores": 1, "max_time": "5m", "max_mem_tot": "lots"}' }),
      await create({ resources: '{"num_cores": 1, "max_time": "5m"}', system: 'blocked' }),
    ];
    expect(leftBehind()).toEqual(before);
    expect(errors[0]).toBeInstanceOf(ConfigError);
    expect(exitCodeOf(errors[1])).toBe(1);
  });
});
