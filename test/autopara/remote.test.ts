// The remote flow end to end on the built-in `local` system (a real local batch queue), which runs
// the same code paths as a cluster: jobs are bundled, queued as arrays, run by the job runner with a
// pool, and their results placed back. Every run is a real `node` process, killed for real.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../src/store/jobstore.js';
import { drive as driveIn, EXAMPLES, jsonLines, remoteInfo, runNode, sandbox, sandboxJobs, type Sandbox } from './helpers.js';

let box: Sandbox;
beforeEach(() => { box = sandbox(); });
afterEach(() => box.cleanup());

const jobs = (): JobRecord[] => sandboxJobs(box);

const drive = (spec: Record<string, unknown>, env: Record<string, string> = {}, onStderr?: (t: string, kill: () => void) => void) =>
  driveIn(box, spec, env, onStderr);

const items = (n: number) => Array.from({ length: n }, (_v, x) => ({ id: `i${x}`, x }));
const viaEnv = (info: Record<string, unknown>) => ({ WFL_EXPYRE_INFO: JSON.stringify({ 'ops.js::calculate': info }) });
const read = (f: string) => fs.readFileSync(path.join(box.dir, f), 'utf8');

function writeJsonl(name: string, rows: unknown[]): void {
  fs.writeFileSync(path.join(box.dir, name), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

describe('the example, locally and as jobs', () => {
  it('writes identical output files, and marks the jobs processed', async () => {
    const script = path.join(EXAMPLES, 'fit.js');
    for (const f of ['inputs.jsonl', 'remoteinfo.json']) fs.copyFileSync(path.join(EXAMPLES, f), path.join(box.dir, f));
    const local = await runNode([script], { cwd: box.dir, env: box.env });
    expect(local.code, local.stderr).toBe(0);
    const localOut = [read('scaled.jsonl'), read('even.jsonl')];
    fs.rmSync(path.join(box.dir, 'scaled.jsonl'));
    fs.rmSync(path.join(box.dir, 'even.jsonl'));

    const remote = await runNode([script], { cwd: box.dir, env: { ...box.env, WFL_EXPYRE_INFO: 'remoteinfo.json' } });
    expect(remote.code, remote.stderr).toBe(0);
    expect([read('scaled.jsonl'), read('even.jsonl')]).toEqual(localOut);
    expect(remote.stderr).toContain('key "fit.js::stageA,ops.js::calculate" matched');
    expect(remote.stderr).toContain('3 job(s) "scale_chunk_<i>" of up to 20 item(s) on "local": 3 submitted');
    expect(remote.stderr).toContain('3 job(s) "even_chunk_<i>" of up to 25 item(s) on "local": 3 submitted');
    const recs = jobs();
    expect(recs.map((r) => r.name).sort()).toEqual(['even_chunk_0', 'even_chunk_1', 'even_chunk_2', 'scale_chunk_0', 'scale_chunk_1', 'scale_chunk_2']);
    expect(recs.every((r) => r.status === 'processed')).toBe(true);
    // Chunks of one call went out as one job array.
    expect(new Set(recs.filter((r) => r.name.startsWith('scale')).map((r) => r.schedName)).size).toBe(1);
  });
});

describe('remote calls on the local system', () => {
  it('killed during the wait, a second run submits nothing new and completes', async () => {
    const spec = { inputs: items(6), kwargs: { factor: 3, delayMs: 1500 }, outputs: 'out.jsonl' };
    const env = viaEnv(remoteInfo({ num_inputs_per_queued_job: 2 }));
    const killed = await drive(spec, env, (text, kill) => { if (text.includes('3 submitted')) kill(); });
    expect(killed.code).not.toBe(0);
    expect(fs.existsSync(path.join(box.dir, 'out.jsonl'))).toBe(false);
    const before = jobs();
    expect(before).toHaveLength(3);
    expect(before.every((r) => ['submitted', 'started', 'succeeded'].includes(r.status))).toBe(true);

    const again = await drive(spec, env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('0 submitted, 3 re-attached to earlier runs');
    const after = jobs();
    expect(after.map((r) => r.id).sort()).toEqual(before.map((r) => r.id).sort());
    const out = read('out.jsonl').trim().split('\n').map((l) => JSON.parse(l) as { x: number; y: number; where: string });
    expect(out.map((o) => o.y)).toEqual([0, 3, 6, 9, 12, 15]);
    expect(out.every((o) => o.where === 'remote')).toBe(true);
  });

  it('raises the op\'s error locally with its message and the remote stack', async () => {
    const r = await drive({ inputs: items(6), kwargs: { failOn: 3 } }, viaEnv(remoteInfo({ num_inputs_per_queued_job: 2 })));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/RemoteError: RangeError: cannot scale x=3 \(in job calculate_chunk_1_/);
    expect(r.stderr).toMatch(/--- remote stack ---\nRangeError: cannot scale x=3\n\s+at scale \(.*remote-ops\.js:\d+:\d+\)/);
    expect(jobs().find((j) => j.name === 'calculate_chunk_1')?.status).toBe('failed');
  });

  it('puts every output in the right file when the last item of a chunk gives nothing', async () => {
    // Two input files of 5 items; x = 4 and x = 9 (the last of each file and of each job) give nothing.
    writeJsonl('a.jsonl', items(10).slice(0, 5));
    writeJsonl('b.jsonl', items(10).slice(5));
    const spec = { inputs: { files: ['a.jsonl', 'b.jsonl'] }, outputs: ['oa.jsonl', 'ob.jsonl'], kwargs: { nullLast: 5 } };
    const local = await drive(spec);
    expect(local.code, local.stderr).toBe(0);
    const localOut = [read('oa.jsonl'), read('ob.jsonl')];
    const xs = (text: string) => text.trim().split('\n').map((l) => (JSON.parse(l) as { x: number }).x);
    expect(localOut.map(xs)).toEqual([[0, 1, 2, 3], [5, 6, 7, 8]]);
    for (const perJob of [5, 3, 1]) {
      fs.rmSync(path.join(box.dir, 'oa.jsonl'));
      fs.rmSync(path.join(box.dir, 'ob.jsonl'));
      const r = await drive(spec, viaEnv(remoteInfo({ num_inputs_per_queued_job: perJob })));
      expect(r.code, r.stderr).toBe(0);
      const remoteOut = [read('oa.jsonl'), read('ob.jsonl')];
      expect(remoteOut.map(xs)).toEqual([[0, 1, 2, 3], [5, 6, 7, 8]]);
      expect(remoteOut.map((t) => t.replaceAll('"remote"', '"local"'))).toEqual(localOut);
    }
  });

  it('ignore_failed_jobs writes the failed chunk\'s inputs flagged EXPYRE_REMOTE_JOB_FAILED', async () => {
    const r = await drive({ inputs: items(6), kwargs: { failOn: 3 }, outputs: 'out.jsonl' },
      viaEnv(remoteInfo({ num_inputs_per_queued_job: 2, ignore_failed_jobs: true })));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/job calculate_chunk_1_\S+ failed \(RangeError: cannot scale x=3/);
    const out = read('out.jsonl').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(out).toHaveLength(6);
    expect(out.map((o) => o.x)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(out.map((o) => o.EXPYRE_REMOTE_JOB_FAILED ?? false)).toEqual([false, false, true, true, false, false]);
    expect(out[2]).toEqual({ id: 'i2', x: 2, EXPYRE_REMOTE_JOB_FAILED: true });
  });

  it('waitForResults: false submits and returns; a later run collects without submitting again', async () => {
    const info = remoteInfo({ num_inputs_per_queued_job: 2 });
    const first = await drive({ inputs: items(4), kwargs: { factor: 2 }, autopara: { remoteInfo: info, waitForResults: false } });
    expect(first.code, first.stderr).toBe(0);
    expect(jsonLines(first.stdout)).toEqual([null]);
    expect(first.stderr).toContain('submitted; call again');
    const submitted = jobs();
    expect(submitted).toHaveLength(2);
    expect(submitted.every((j) => j.status !== 'processed')).toBe(true);

    const second = await drive({ inputs: items(4), kwargs: { factor: 2 }, autopara: { remoteInfo: info } });
    expect(second.code, second.stderr).toBe(0);
    expect((jsonLines(second.stdout)[0] as { y: number }[]).map((o) => o.y)).toEqual([0, 2, 4, 6]);
    expect(jobs().map((j) => j.id).sort()).toEqual(submitted.map((j) => j.id).sort());
    expect(jobs().every((j) => j.status === 'processed')).toBe(true);
  });

  it('a reused options object keeps every call remote', async () => {
    const r = await drive({ inputs: items(3), kwargs: { factor: 2 }, calls: 3, autopara: { remoteInfo: remoteInfo() } });
    expect(r.code, r.stderr).toBe(0);
    const results = jsonLines(r.stdout) as { where: string }[][];
    expect(results).toHaveLength(3);
    expect(results.flat().every((o) => o.where === 'remote')).toBe(true);
  });

  it('runs the initializer once in each worker of the job\'s pool', async () => {
    const r = await drive({ inputs: items(6), initializerArgs: [7], autopara: { numSubprocesses: 2 } }, viaEnv(remoteInfo({ num_inputs_per_queued_job: 3 })));
    expect(r.code, r.stderr).toBe(0);
    const out = jsonLines(r.stdout)[0] as { where: string; setup: number }[];
    expect(out.map((o) => [o.where, o.setup])).toEqual(Array.from({ length: 6 }, () => ['remote', 7]));
  });

  it('WFL_EXPYRE_NO_MARK_PROCESSED leaves the jobs succeeded', async () => {
    const r = await drive({ inputs: items(2) }, { ...viaEnv(remoteInfo()), WFL_EXPYRE_NO_MARK_PROCESSED: '1' });
    expect(r.code, r.stderr).toBe(0);
    expect(jobs().map((j) => j.status)).toEqual(['succeeded']);
  });

  it('hashes items and op kwargs, not the output spec, pool sizes or hash_ignore keys', async () => {
    const info = remoteInfo({ hash_ignore: ['verbose'] });
    const run = (outputs: string, kwargs: Record<string, unknown>, autopara: Record<string, unknown>) =>
      drive({ inputs: items(3), outputs, kwargs, autopara }, { ...viaEnv(info), WFL_EXPYRE_NO_MARK_PROCESSED: '1' }).then((r) => {
        expect(r.code, r.stderr).toBe(0);
        return r;
      });
    await run('one.jsonl', { factor: 2, verbose: 1 }, {});
    const same = await run('two.jsonl', { factor: 2, verbose: 2 }, { numSubprocesses: 1, numInputsPerSubprocess: 2 });
    expect(same.stderr).toContain('0 submitted, 1 re-attached');
    expect(read('two.jsonl')).toBe(read('one.jsonl'));
    const other = await run('three.jsonl', { factor: 5 }, {});
    expect(other.stderr).toContain('1 submitted, 0 re-attached');
    expect(jobs()).toHaveLength(2);
  });

  it('a chunk that died of its wall time is re-attached while the time is the same, and resubmitted once it is raised', async () => {
    const spec = { inputs: items(2), kwargs: { delayMs: 4000 } };
    const short = viaEnv(remoteInfo({ resources: { num_cores: 1, max_time: '1s' } }));
    const first = await drive(spec, short);
    expect(first.code).not.toBe(0);
    expect(first.stderr).toMatch(/JobDiedError: Job calculate_chunk_0_\S+ died \(TIMEOUT\)/);
    // The error says how to run it again, the autoparallelize way.
    expect(first.stderr).toContain('To run the call again: ask for a longer max_time in its remote info, or set resubmit_killed_jobs');
    const [died] = jobs();

    const same = await drive(spec, short);
    expect(same.code).not.toBe(0);
    expect(same.stderr).toContain('0 submitted, 1 re-attached');
    expect(jobs().map((j) => j.id)).toEqual([died!.id]);

    const longer = await drive(spec, viaEnv(remoteInfo({ resources: { num_cores: 1, max_time: '5m' } })));
    expect(longer.code, longer.stderr).toBe(0);
    expect(longer.stderr).toContain(`xpr: job ${died!.id} died (TIMEOUT) with max_time 1 s; resubmitting with max_time 300 s as job calculate_chunk_0_`);
    expect(longer.stderr).toContain('1 submitted, 0 re-attached');
    const all = jobs();
    expect(all).toHaveLength(2);
    const old = all.find((j) => j.id === died!.id)!;
    expect(old).toMatchObject({ status: 'died', remoteReason: 'TIMEOUT' });
    expect(all.find((j) => j.id === old.info.replacedBy)?.status).toBe('processed');
  });

  it('a call whose remote info fits no partition makes no job and no stage dir', async () => {
    const r = await drive({ inputs: items(4) }, viaEnv(remoteInfo({ num_inputs_per_queued_job: 2, resources: { num_cores: 1, max_time: '5m', partitions: 'nope' } })));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/No partition/);
    expect(jobs()).toEqual([]);
    expect(fs.readdirSync(box.root).filter((f) => f.startsWith('run_'))).toEqual([]);
  });

  it('resubmit_killed_jobs wipes and resubmits a job that died of its wall time', async () => {
    const spec = { inputs: items(2), kwargs: { delayMs: 4000 } };
    const short = await drive(spec, viaEnv(remoteInfo({ resources: { num_cores: 1, max_time: '1s' } })));
    expect(short.code).not.toBe(0);
    expect(short.stderr).toMatch(/JobDiedError: Job calculate_chunk_0_\S+ died \(TIMEOUT\)/);
    const died = jobs();
    expect(died.map((j) => j.status)).toEqual(['died']);

    const longer = await drive(spec, viaEnv(remoteInfo({ resources: { num_cores: 1, max_time: '5m' }, resubmit_killed_jobs: true })));
    expect(longer.code, longer.stderr).toBe(0);
    expect(longer.stderr).toMatch(/job calculate_chunk_0_\S+ died \(TIMEOUT\); wiping it and submitting again/);
    const all = jobs();
    expect(all).toHaveLength(2);
    expect(all.find((j) => j.id === died[0]!.id)?.status).toBe('cleaned');
    expect(fs.existsSync(died[0]!.stageDir)).toBe(false);
    expect(all.filter((j) => j.status === 'processed')).toHaveLength(1);
  });
});
