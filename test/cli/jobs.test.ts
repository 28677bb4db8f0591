// The commands that talk to systems, with real jobs on the local queue: sync over two systems and a
// job never started, logs, doctor, cancel, create_job. Needs `npm run build` (the queue runs from dist/).
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cancel } from '../../src/cli/commands/cancel.js';
import { createJob, parseJobId, renderCreateJob } from '../../src/cli/commands/create-job.js';
import { doctor, renderDoctor } from '../../src/cli/commands/doctor.js';
import { logs, renderLogs } from '../../src/cli/commands/logs.js';
import { shortId } from '../../src/cli/commands/ls.js';
import { rm } from '../../src/cli/commands/rm.js';
import { renderSync, sync } from '../../src/cli/commands/sync.js';
import { exitCodeOf, exitCodeOfProblems } from '../../src/cli/exit.js';
import { PLAIN } from '../../src/cli/format.js';
import { Job } from '../../src/job/job.js';
import type { Project } from '../../src/job/project.js';
import { RESULT_FILE } from '../../src/runner/protocol.js';
import * as ops from '../fixtures/cli/ops.js';
import { cliProject, openProject, openStore, OPS, realJob, seed, until, type CliProject } from './helpers.js';

let p: CliProject;
let project: Project;
beforeEach(() => {
  p = cliProject({
    systems: {
      // No host, but a rundir: jobs are copied there and their results copied back, as over SSH.
      other: { host: null, scheduler: 'local', rundir: 'other_rundir' },
      far: { host: 'nowhere.invalid', scheduler: 'local' },
    },
  });
  project = openProject(p);
});
afterEach(async () => {
  await project.close();
  await p.cleanup();
});

describe('xpr sync', () => {
  it('syncs jobs on two systems, each against its own, and skips one never started', async () => {
    const onLocal = await realJob(project, 'on_local', ops.double, [1], 'local');
    const onOther = await realJob(project, 'on_other', ops.double, [2], 'other');
    const never = await realJob(project, 'never', ops.double, [3], null);
    expect(onOther.info.remoteDir).toMatch(new RegExp(`^${p.dir}/other_rundir/`));

    const last = await until('both jobs to succeed', () => sync({ ...p.ctx, status: '*' }),
      (r) => r.synced.length === 0 || r.synced.every((j) => j.after === 'succeeded'));
    // Once ended, they are no longer ongoing: the default selection (ongoing) has nothing left to sync.
    const store = openStore(p);
    try {
      expect(store.get(onLocal.id)!.status).toBe('succeeded');
      expect(store.get(onOther.id)!.status).toBe('succeeded');
      expect(store.get(never.id)!.status).toBe('created');
    } finally {
      store.close();
    }
    // The result of the job on `other` came back from its rundir into the stage dir.
    expect(JSON.parse(fs.readFileSync(path.join(onOther.stageDir, RESULT_FILE), 'utf8'))).toEqual({ ok: true, value: 4 });
    expect(last.problems).toEqual([]);
    expect(last.skipped.find((s) => s.id === never.id)).toEqual({ id: never.id, name: 'never', status: 'created', reason: 'never started' });
  });

  it('reports each system once, with its jobs, in one pass', async () => {
    // Different arguments: an identical call would re-attach to the first job.
    const a = await realJob(project, 'a', ops.sleepy, [0.2], 'local');
    const b = await realJob(project, 'b', ops.sleepy, [0.3], 'other');
    await realJob(project, 'c', ops.double, [5], null);
    const r = await sync(p.ctx);
    expect(r.systems).toEqual([{ name: 'local', jobs: 1, ok: true }, { name: 'other', jobs: 1, ok: true }]);
    expect(r.synced.map((s) => s.id).sort()).toEqual([a.id, b.id].sort());
    expect(r.skipped.map((s) => s.reason)).toEqual(['never started']);
    expect(renderSync(r, PLAIN)).toMatch(/Synced 2 jobs on local, other; \d changed status\. Skipped 1 never started\./);
    await until('both to end', () => sync(p.ctx), (x) => x.synced.length === 0);
  });

  it('goes on past a system it cannot reach, and says so (exit 3)', async () => {
    const ok = await realJob(project, 'ok', ops.double, [1], 'local');
    const [far] = seed(p, [{ name: 'stuck', patch: { status: 'submitted', system: 'far', remoteId: '12', remoteStatus: 'queued' } }]);
    const r = await until('the local job to end', () => sync(p.ctx), (x) => x.synced.some((s) => s.id === ok.id && s.after === 'succeeded'));
    expect(r.systems).toContainEqual({ name: 'far', jobs: 1, ok: false });
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ system: 'far', unreachable: true });
    expect(exitCodeOfProblems(r.problems)).toBe(3);
    expect(renderSync(r, PLAIN)).toMatch(/Could not sync far: /);
    expect(openStore(p).get(far!)!.status).toBe('submitted');
  });

  it('with nothing recorded says so and creates no database', async () => {
    const r = await sync({ ...p.ctx, dbFile: path.join(p.dir, 'none.db') });
    expect(renderSync(r, PLAIN)).toBe('No jobs to sync.');
    expect(fs.existsSync(path.join(p.dir, 'none.db'))).toBe(false);
  });
});

describe('xpr logs', () => {
  it('shows what the job and the function printed, and the job script', async () => {
    const job = await realJob(project, 'talky', ops.double, [21], 'other');
    await until('the job to end', () => sync(p.ctx), (r) => r.synced.length === 0);
    const r = await logs({ ...p.ctx, id: job.id });
    const byName = Object.fromEntries(r.sections.map((s) => [s.name, s]));
    expect(r.source).toBe('local');
    expect(byName['fn.stdout']!.text).toBe('doubling 21\n');
    expect(byName['fn.stderr']!.text).toContain('a line on stderr');
    expect(byName['job.stdout']!.text).toBe('');
    expect(byName.script!.text).toMatch(/^#!\/bin\/bash\n#LOCALQ --job-name=xpr_talky_/);
    expect(byName.script!.path).toBe(path.join(p.root, '_xpr_submit', `${job.info.schedName}.sh`));
    const text = renderLogs(r, PLAIN);
    expect(text).toMatch(/^Job talky_.* \(succeeded on other\)\n==> job.stdout: .*job\.stdout <==\n\(empty\)\n/);
    expect(text).toContain('==> fn.stdout: ');
  });

  it('reads a running job on its system while its files are only there', async () => {
    const job = await realJob(project, 'live', ops.chatty, [30], 'other');
    await until('the job to start', async () => (await sync(p.ctx)).synced[0]?.after, (s) => s === 'started');
    const r = await until('it to talk', () => logs({ ...p.ctx, id: job.id, files: ['fn.stdout'] }),
      (x) => x.sections[0]!.text === 'started talking\n');
    expect(r.source).toBe('remote');
    expect(r.sections[0]!.path).toBe(`other:${job.info.remoteDir}/fn.stdout`);
    expect(fs.existsSync(path.join(job.stageDir, 'fn.stdout'))).toBe(false);
    await cancel({ ...p.ctx, id: job.id, yes: true });
  });

  it('picks files, tails them, and finds a job by the id ls shows', async () => {
    const job = await realJob(project, 'tail', ops.double, [1], 'local');
    await job.getResults({ timeout: 60 });
    const r = await logs({ ...p.ctx, id: shortId(job), files: ['fn.stderr,script'], tail: 1 });
    expect(r.id).toBe(job.id);
    expect(r.sections.map((s) => s.name)).toEqual(['fn.stderr', 'script']);
    expect(r.sections[1]!.text).toBe('exit "$rc"\n');
    expect(r.sections[1]!.omitted).toBeGreaterThan(5);
    expect(renderLogs(r, PLAIN)).toMatch(/\(… \d+ earlier lines\)\nexit "\$rc"/);
  });

  it('says what is missing: no such job, an ambiguous prefix, a job not yet run', async () => {
    const a = await realJob(project, 'twin', ops.double, [1], null);
    await realJob(project, 'twin', ops.double, [2], null);
    await expect(logs({ ...p.ctx, id: 'nope' })).rejects.toThrow(/No job with id nope/);
    await expect(logs({ ...p.ctx, id: 'twin_' })).rejects.toThrow(/2 jobs have ids starting with twin_/);
    await expect(logs({ ...p.ctx, id: a.id, files: ['fn.log'] })).rejects.toThrow(/Unknown log "fn.log" \(known: job.stdout/);
    const r = await logs({ ...p.ctx, id: a.id });
    expect(r.sections.every((s) => s.text === null)).toBe(true);
    expect(renderLogs(r, PLAIN)).toContain('(no such file yet)');
  });
});

describe('xpr doctor', () => {
  it('passes on the built-in local system', async () => {
    const r = await doctor({ ...p.ctx, system: 'local' });
    expect(r.checks.map((c) => [c.name, c.ok])).toEqual([['connect', true], ['scheduler (local)', true], ['node', true], ['rundir', true]]);
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([]);
    expect(renderDoctor(r, PLAIN)).toMatch(/ok   node: v\d+\.\d+\.\d+ \(node\)[\s\S]*Ready to run jobs\.$/);
  });

  it('says what to fix: an old node, a rundir it cannot write', async () => {
    const q = cliProject({
      systems: {
        old: { host: null, scheduler: 'local', node_command: 'echo v16.3.0 #' },
        ro: { host: null, scheduler: 'local', rundir: '/proc/xpr-cannot-write-here' },
        gone: { host: null, scheduler: 'local', node_command: 'no-such-node-binary' },
      },
    });
    try {
      const old = await doctor({ ...q.ctx, system: 'old' });
      expect(old.checks.find((c) => c.name === 'node')).toMatchObject({ ok: false, detail: 'v16.3.0 is too old (need 20 or newer)' });
      expect(exitCodeOfProblems(old.problems)).toBe(1);
      const ro = await doctor({ ...q.ctx, system: 'ro' });
      expect(ro.checks.find((c) => c.name === 'rundir')).toMatchObject({ ok: false });
      const gone = await doctor({ ...q.ctx, system: 'gone' });
      const node = gone.checks.find((c) => c.name === 'node')!;
      expect(node.ok).toBe(false);
      expect(node.fix).toMatch(/node_command/);
      expect(renderDoctor(gone, PLAIN)).toMatch(/FAIL node: [\s\S]*fix: Install Node\.js 20[\s\S]*Not ready/);
    } finally {
      await q.cleanup();
    }
  });

  it('a system it cannot reach: a clear message and exit code 3', async () => {
    const r = await doctor({ ...p.ctx, system: 'far' });
    expect(r.checks).toHaveLength(1);
    expect(r.checks[0]).toMatchObject({ name: 'connect', ok: false });
    expect(r.checks[0]!.detail).toMatch(/nowhere\.invalid/);
    expect(exitCodeOfProblems(r.problems)).toBe(3);
  });

  it('an unknown system is a user error listing the known ones', async () => {
    const err = await doctor({ ...p.ctx, system: 'nope' }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('Unknown system "nope" (known: other, far, local)');
    expect(exitCodeOf(err)).toBe(1);
  });
});

describe('xpr cancel (real jobs)', () => {
  it('cancels a running job on its system; it ends as died (CANCELLED)', async () => {
    const job = await realJob(project, 'long', ops.sleepy, [60], 'local');
    await until('the job to start', async () => (await sync(p.ctx)).synced[0]?.after, (s) => s === 'started');
    const r = await cancel({ ...p.ctx, name: 'long', yes: true });
    expect(r.cancelled.map((c) => c.id)).toEqual([job.id]);
    const store = openStore(p);
    try {
      await until('the job to be died', async () => { await sync(p.ctx); return store.get(job.id)!; }, (j) => j.status === 'died');
      expect(store.get(job.id)!.remoteReason).toBe('CANCELLED');
    } finally {
      store.close();
    }
  });
});

describe('xpr rm -c (real jobs)', () => {
  it('cancels a running job, wipes its dirs here and on its system, and forgets it', async () => {
    const job = await realJob(project, 'doomed', ops.sleepy, [60], 'other');
    await until('the job to start', async () => (await sync(p.ctx)).synced[0]?.after, (s) => s === 'started');
    const remoteDir = job.reload().remoteDir!;
    expect(fs.existsSync(remoteDir)).toBe(true);
    const r = await rm({ ...p.ctx, name: 'doomed', clean: true, yes: true });
    expect(r).toMatchObject({ removed: [job.id], cancelled: [job.id], kept: [], problems: [] });
    expect(fs.existsSync(job.stageDir)).toBe(false);
    expect(fs.existsSync(remoteDir)).toBe(false);
    expect(openStore(p).get(job.id)).toBeUndefined();
  });
});

describe('xpr create_job', () => {
  it('stages a call from a module export and submits it with --resources', async () => {
    const r = await createJob({
      ...p.ctx, module: path.relative(p.dir, OPS), exportName: 'double', args: '[21]', name: 'cli job',
      resources: '{"num_cores": 1, "max_time": "5m"}',
    });
    expect(r).toMatchObject({ name: 'cli job', status: 'submitted', system: 'local', reattached: false, submitted: true });
    expect(renderCreateJob(r, PLAIN)).toMatch(/^Created job cli job_.* \(submitted to local\)\n  stage dir: /);
    expect((await Job.get(r.id, project).getResults({ timeout: 60 })).result).toBe(42);
    // The same call again re-attaches to it.
    const again = await createJob({ ...p.ctx, module: OPS, exportName: 'double', args: '[21]', name: 'cli job' });
    expect(again).toMatchObject({ id: r.id, reattached: true });
  });

  it('records an existing stage dir (--from-dir), as ExPyRe does', async () => {
    const staged = await createJob({ ...p.ctx, module: OPS, exportName: 'double', args: '[5]' });
    expect(staged).toMatchObject({ name: 'double', status: 'created', submitted: false });
    const store = openStore(p);
    const before = store.get(staged.id)!;
    store.delete([staged.id]);
    store.close();
    const r = await createJob({ ...p.ctx, fromDir: path.relative(p.dir, staged.stageDir), system: 'local' });
    expect(r).toMatchObject({ id: staged.id, name: 'double', status: 'created', system: 'local' });
    const after = openStore(p).get(staged.id)!;
    expect(after.hash).toBe(before.hash);
    expect(parseJobId(staged.id)).toEqual({ name: 'double', hash: before.hash });
    await expect(createJob({ ...p.ctx, fromDir: staged.stageDir, system: 'local' })).rejects.toThrow(/already in/);
    await expect(createJob({ ...p.ctx, fromDir: p.dir, system: 'local' })).rejects.toThrow(/is not a job stage dir/);
    await expect(createJob({ ...p.ctx, fromDir: staged.stageDir })).rejects.toThrow(/needs -S\/--system/);
  });

  it.each([
    [{ module: 'test/fixtures/cli/ops.js', exportName: 'triple' }, /has no exported function "triple" \(its exported functions: double, sleepy, chatty\)/],
    [{ module: 'test/fixtures/cli/ops.js', exportName: 'notAFunction' }, /has no exported function "notAFunction"/],
    [{ module: 'nope.js' }, /Module .*nope\.js does not exist/],
    [{ module: 'test/fixtures/cli/ops.js', exportName: 'double', args: '[1,' }, /--args: invalid JSON/],
    [{ module: 'test/fixtures/cli/ops.js', exportName: 'double', args: '{"x":1}' }, /--args: expected a JSON array/],
    [{ module: 'test/fixtures/cli/ops.js', exportName: 'double', kwargs: '[1]' }, /--kwargs: expected a JSON object/],
    [{}, /needs --module \(with --export\) or --from-dir/],
  ])('refuses %j with a message', async (opts, message) => {
    await expect(createJob({ ...p.ctx, cwd: path.resolve('.'), ...opts })).rejects.toThrow(message);
  });
});
