// autoparallelize end to end against the real test cluster: the flows test/autopara/remote.test.ts
// runs on the built-in `local` system, here with the remote info pointing at the system `cluster`,
// reached over the real sshd (built-in SSH client) as a cluster account other than the driver's, and
// queued on the real one-node SLURM. The config is a new user's (no rundir). Every driver is a real
// `node` process, killed for real. One file per cluster account runs this suite.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../src/store/jobstore.js';
import { drive as driveIn, EXAMPLES, runNode, sandbox, sandboxJobs, type Sandbox } from '../autopara/helpers.js';
import { userSystemConfig } from '../cluster/cluster-config.js';
import { clusterShapeUnavailable, skipOrFail } from '../cluster/shape.js';
import { submissionsNamed } from '../cluster/slurm.js';
import { startSshd, type SshdHandle } from '../cluster/sshd.js';

const run = promisify(execFile);

/** RemoteInfo for the SSH + SLURM system `cluster`: one core per job, polled every second at most. */
const clusterInfo = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  sys_name: 'cluster', resources: { num_cores: 1, max_time: '10m' }, partial_node: true, check_interval: 1, ...extra,
});
const viaEnv = (info: Record<string, unknown>) => ({ WFL_EXPYRE_INFO: JSON.stringify({ 'ops.js::calculate': info }) });
const items = (n: number) => Array.from({ length: n }, (_v, x) => ({ id: `i${x}`, x }));

export async function defineAutoparaSlurmSuite(account: string): Promise<void> {
  const unavailable = await clusterShapeUnavailable();
  skipOrFail(`autoparallelize SSH + SLURM end-to-end tests as ${account}`, unavailable);

  describe.skipIf(unavailable !== undefined)(`autoparallelize over SSH + SLURM as ${account}`, () => {
    let sshd: SshdHandle;
    let box: Sandbox;

    beforeAll(async () => { sshd = await startSshd(); });
    afterAll(async () => { await sshd?.stop(); });

    beforeEach(() => {
      box = sandbox();
      fs.writeFileSync(path.join(box.root, 'config.json'), JSON.stringify({
        systems: { cluster: userSystemConfig(account) },
      }));
      box.env = { ...box.env, XPR_SSH_CONFIG: sshd.sshConfigFile, XPR_SSH: 'builtin' };
      delete box.env.HOSTNAME;
    });
    afterEach(() => box.cleanup());

    const jobs = (): JobRecord[] => sandboxJobs(box);

    const drive = (spec: Record<string, unknown>, env: Record<string, string> = {}, onStderr?: (t: string, kill: () => void) => void) =>
      driveIn(box, spec, env, onStderr);

    const read = (f: string) => fs.readFileSync(path.join(box.dir, f), 'utf8');
    const parents = (recs: readonly JobRecord[]) => new Set(recs.map((r) => r.remoteId!.split('_')[0]!));

    it('the example with WFL_EXPYRE_INFO writes output files identical to the local run', async () => {
      const script = path.join(EXAMPLES, 'fit.js');
      fs.copyFileSync(path.join(EXAMPLES, 'inputs.jsonl'), path.join(box.dir, 'inputs.jsonl'));
      // The example's own remote info for the cluster, polled more often than its 5 s.
      const info = JSON.parse(fs.readFileSync(path.join(EXAMPLES, 'remoteinfo.cluster.json'), 'utf8')) as Record<string, Record<string, unknown>>;
      for (const v of Object.values(info)) {
        expect(v.sys_name).toBe('cluster');
        v.check_interval = 1;
      }
      fs.writeFileSync(path.join(box.dir, 'remoteinfo.json'), JSON.stringify(info));

      const local = await runNode([script], { cwd: box.dir, env: box.env });
      expect(local.code, local.stderr).toBe(0);
      const localOut = [read('scaled.jsonl'), read('even.jsonl')];
      expect(localOut[0]!.trim().split('\n')).toHaveLength(60);
      expect(localOut[1]!.trim().split('\n')).toHaveLength(30);
      fs.rmSync(path.join(box.dir, 'scaled.jsonl'));
      fs.rmSync(path.join(box.dir, 'even.jsonl'));

      const logins = sshd.connectionsAccepted();
      // The script never closes anything: it must still exit on its own once its calls are done.
      const remote = await runNode([script], { cwd: box.dir, env: { ...box.env, WFL_EXPYRE_INFO: 'remoteinfo.json' } });
      expect(remote.code, remote.stderr).toBe(0);
      expect([read('scaled.jsonl'), read('even.jsonl')]).toEqual(localOut);
      // Two remote calls, one SSH login for the whole run.
      expect(sshd.connectionsAccepted() - logins).toBe(1);
      expect(remote.stderr).toContain('key "fit.js::stageA,ops.js::calculate" matched');
      expect(remote.stderr).toContain('3 job(s) "scale_chunk_<i>" of up to 20 item(s) on "cluster": 3 submitted');
      expect(remote.stderr).toContain('3 job(s) "even_chunk_<i>" of up to 25 item(s) on "cluster": 3 submitted');
      const recs = jobs();
      expect(recs.map((r) => r.name).sort()).toEqual(['even_chunk_0', 'even_chunk_1', 'even_chunk_2', 'scale_chunk_0', 'scale_chunk_1', 'scale_chunk_2']);
      expect(recs.every((r) => r.status === 'processed' && r.system === 'cluster')).toBe(true);
      // Each call's chunks went to SLURM as one job array, each submitted once.
      for (const prefix of ['scale', 'even']) {
        const call = recs.filter((r) => r.name.startsWith(prefix));
        const schedNames = new Set(call.map((r) => r.schedName));
        expect(schedNames.size).toBe(1);
        expect(parents(call).size).toBe(1);
        expect(await submissionsNamed([...schedNames][0]!)).toEqual(parents(call));
      }
    }, 120_000);

    it('killed during the wait, a second run submits nothing new and completes', async () => {
      const spec = { inputs: items(6), kwargs: { factor: 3, delayMs: 1500 }, outputs: 'out.jsonl' };
      const local = await drive({ ...spec, outputs: 'local.jsonl' });
      expect(local.code, local.stderr).toBe(0);

      const env = viaEnv(clusterInfo({ num_inputs_per_queued_job: 2 }));
      const killed = await drive(spec, env, (text, kill) => { if (text.includes('3 submitted')) kill(); });
      expect(killed.code, killed.stderr).not.toBe(0);
      expect(killed.stderr).toContain('3 job(s) "calculate_chunk_<i>" of up to 2 item(s) on "cluster": 3 submitted');
      expect(fs.existsSync(path.join(box.dir, 'out.jsonl'))).toBe(false);
      const before = jobs();
      expect(before).toHaveLength(3);
      expect(before.every((r) => ['submitted', 'started', 'succeeded'].includes(r.status))).toBe(true);
      expect(before.every((r) => r.system === 'cluster' && r.remoteId !== null && r.submitIntent === null)).toBe(true);
      const schedNames = new Set(before.map((r) => r.schedName));
      expect(schedNames.size).toBe(1);
      const schedName = [...schedNames][0]!;
      expect(await submissionsNamed(schedName)).toEqual(parents(before));

      const again = await drive(spec, env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain('0 submitted, 3 re-attached to earlier runs');
      const after = jobs();
      expect(after.map((r) => r.id).sort()).toEqual(before.map((r) => r.id).sort());
      expect(after.map((r) => [r.id, r.remoteId]).sort()).toEqual(before.map((r) => [r.id, r.remoteId]).sort());
      expect(after.every((r) => r.status === 'processed')).toBe(true);
      // SLURM saw that one array and nothing else under its name.
      expect(await submissionsNamed(schedName)).toEqual(parents(before));

      const out = read('out.jsonl');
      const rows = out.trim().split('\n').map((l) => JSON.parse(l) as { x: number; y: number; where: string });
      expect(rows.map((o) => o.y)).toEqual([0, 3, 6, 9, 12, 15]);
      expect(rows.every((o) => o.where === 'remote')).toBe(true);
      expect(out.replaceAll('"remote"', '"local"')).toBe(read('local.jsonl'));
    }, 120_000);

    it('killed during the wait, then the project moved: the rerun in the new place re-attaches and completes', async () => {
      const spec = { inputs: items(6), kwargs: { factor: 3, delayMs: 1500 }, outputs: 'out.jsonl' };
      const env = viaEnv(clusterInfo({ num_inputs_per_queued_job: 2 }));
      const killed = await drive(spec, env, (text, kill) => { if (text.includes('3 submitted')) kill(); });
      expect(killed.code, killed.stderr).not.toBe(0);
      const before = jobs();
      expect(before).toHaveLength(3);

      // The whole project moves (as `mv` does); its driver now runs from the new place.
      const moved = `${box.dir}-moved`;
      fs.renameSync(box.dir, moved);
      const oldDir = box.dir;
      box.dir = moved;
      box.root = path.join(moved, '_expyre');
      box.env = { ...box.env, EXPYRE_ROOT: box.root, HOME: moved };
      try {
        const again = await drive(spec, env);
        expect(again.code, again.stderr).toBe(0);
        expect(again.stderr).toContain('0 submitted, 3 re-attached to earlier runs');
        const after = jobs();
        expect(after.map((r) => [r.id, r.remoteId]).sort()).toEqual(before.map((r) => [r.id, r.remoteId]).sort());
        expect(after.every((r) => r.status === 'processed')).toBe(true);
        expect(after.every((r) => r.stageDir.startsWith(moved))).toBe(true);
        expect(await submissionsNamed(before[0]!.schedName!)).toEqual(parents(before));
        const rows = read('out.jsonl').trim().split('\n').map((l) => JSON.parse(l) as { y: number });
        expect(rows.map((o) => o.y)).toEqual([0, 3, 6, 9, 12, 15]);
      } finally {
        // The sandbox's own cleanup removes the dir it made, which is gone now.
        fs.rmSync(moved, { recursive: true, force: true });
        box.dir = oldDir;
      }
    }, 120_000);

    it('raises the op\'s error locally with its message and the remote stack', async () => {
      const r = await drive({ inputs: items(6), kwargs: { failOn: 3 } }, viaEnv(clusterInfo({ num_inputs_per_queued_job: 2 })));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('on "cluster": 3 submitted');
      expect(r.stderr).toMatch(/RemoteError: RangeError: cannot scale x=3 \(in job calculate_chunk_1_/);
      expect(r.stderr).toMatch(/--- remote stack ---\nRangeError: cannot scale x=3\n\s+at scale \(.*remote-ops\.js:\d+:\d+\)/);
      expect(jobs().find((j) => j.name === 'calculate_chunk_1')?.status).toBe('failed');
    }, 90_000);

    it('puts every output in the right file when the last item of a chunk gives nothing', async () => {
      // Two input files of 5 items; x = 4 and x = 9 (the last of each file and of each job) give nothing.
      const writeJsonl = (name: string, rows: unknown[]) =>
        fs.writeFileSync(path.join(box.dir, name), rows.map((row) => JSON.stringify(row)).join('\n') + '\n');
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
        const r = await drive(spec, viaEnv(clusterInfo({ num_inputs_per_queued_job: perJob })));
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toContain(`${Math.ceil(10 / perJob)} job(s) "calculate_chunk_<i>" of up to ${perJob} item(s) on "cluster"`);
        const remoteOut = [read('oa.jsonl'), read('ob.jsonl')];
        expect(remoteOut.map(xs)).toEqual([[0, 1, 2, 3], [5, 6, 7, 8]]);
        expect(remoteOut.join('')).toContain('"where":"remote"');
        expect(remoteOut.map((t) => t.replaceAll('"remote"', '"local"'))).toEqual(localOut);
      }
      expect(jobs().every((r) => r.system === 'cluster' && r.status === 'processed')).toBe(true);
    }, 150_000);
  });
}
