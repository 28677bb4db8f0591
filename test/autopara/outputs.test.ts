// Output faults cost no work: every output path is checked before anything runs; a write that fails
// at the end keeps the results (in the jobs, or saved under the project's stage dir for a local
// run) and the rerun writes them without running the op again; temp files of killed runs are
// removed; pool workers die with their driver. Real files, real mounts (root only), real processes.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FIXTURES, remoteInfo, runNode, sandbox, sandboxJobs, type RunResult, type Sandbox } from './helpers.js';

const DRIVER = path.join(FIXTURES, 'outputs-drive.js');
const isRoot = process.getuid?.() === 0;

let box: Sandbox;
let mounts: string[] = [];
let started: number[] = [];
beforeEach(() => { box = sandbox(); mounts = []; started = []; });
afterEach(async () => {
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
  // Unmount before removing the sandbox: rm must not reach into (or trip over) a mount.
  for (const dir of mounts.reverse()) execFileSync('umount', [dir]);
  await box.cleanup();
});

const at = (...parts: string[]) => path.join(box.dir, ...parts);
const opLog = () => at('op.log');
const items = (n: number) => Array.from({ length: n }, (_v, x) => ({ x }));
const expected = (n: number, pad = 0) => items(n).map(({ x }) => ({ x, y: x * 2, pad: 'p'.repeat(pad) }));
const readJsonl = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
/** Chunks the op ran so far (one line each). */
const chunksRun = () => (fs.existsSync(opLog()) ? fs.readFileSync(opLog(), 'utf8').trim().split('\n').filter(Boolean) : []);
const listing = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

function drive(spec: Record<string, unknown>, env: Record<string, string> = {}): Promise<RunResult> {
  return runNode([DRIVER], { cwd: box.dir, env: { ...box.env, XPR_TEST_OP_LOG: opLog(), XPR_TEST_SPEC: JSON.stringify(spec), ...env } });
}

function mkdir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function mountReadOnly(dir: string): void {
  execFileSync('mount', ['--bind', dir, dir]);
  mounts.push(dir);
  execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
}

function mountTiny(dir: string, size: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
}

function alive(pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`) && !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

const POOL = { WFL_NUM_PYTHON_SUBPROCESSES: '2' };
const REMOTE = { remoteInfo: remoteInfo({ num_inputs_per_queued_job: 4 }), numInputsPerSubprocess: 2 };
const MODES = [
  { mode: 'in-process', env: {}, autopara: { numInputsPerSubprocess: 2 } },
  { mode: 'pool', env: POOL, autopara: { numInputsPerSubprocess: 2 } },
  { mode: 'remote', env: {}, autopara: REMOTE },
] as const;

describe('every output path is checked before any work', () => {
  for (const { mode, env, autopara } of MODES) {
    it(`an output path that is a directory fails at once (${mode})`, async () => {
      mkdir(at('out.jsonl'));
      const r = await drive({ inputs: items(6), outputs: 'out.jsonl', autopara }, env);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`Cannot write the output file ${at('out.jsonl')}: it is a directory`);
      expect(r.stderr).not.toMatch(/reusing|Input file not found|at .*node_modules|\/src\//);
      expect(chunksRun()).toEqual([]);
      expect(sandboxJobs(box)).toEqual([]);
      expect(listing(at('out.jsonl'))).toEqual([]);
    });
  }

  it('an output whose parent is a file fails at once, and the real cause is named', async () => {
    fs.writeFileSync(at('results'), 'not a dir\n');
    const before = listing(box.dir);
    const r = await drive({ inputs: items(4), outputs: ['results/a.jsonl'] });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`Cannot write the output file ${at('results', 'a.jsonl')}: ${at('results')} is a file, not a directory`);
    expect(r.stderr).not.toMatch(/ENOTDIR|rmSync|abort/);
    expect(chunksRun()).toEqual([]);
    expect(listing(box.dir)).toEqual(before);
    expect(fs.readFileSync(at('results'), 'utf8')).toBe('not a dir\n');
  });

  it('names every output that cannot be written, not just the first', async () => {
    mkdir(at('a.jsonl'));
    fs.writeFileSync(at('f'), '');
    fs.mkdirSync(at('in'));
    fs.writeFileSync(at('in', 'one.jsonl'), '{"x":1}\n');
    fs.writeFileSync(at('in', 'two.jsonl'), '{"x":2}\n');
    const r = await drive({ inputs: 'in/*.jsonl', outputs: ['a.jsonl', 'f/b.jsonl'] });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('Cannot write 2 output files');
    expect(r.stderr).toContain(`${at('a.jsonl')}: it is a directory`);
    expect(r.stderr).toContain(`${at('f', 'b.jsonl')}: ${at('f')} is a file, not a directory`);
    expect(chunksRun()).toEqual([]);
  });

  describe.skipIf(!isRoot)('a dir that cannot be written (read-only mount)', () => {
    for (const { mode, env, autopara } of MODES) {
      it(`fails before any chunk runs or job is submitted (${mode})`, async () => {
        const ro = mkdir(at('ro'));
        fs.writeFileSync(path.join(ro, 'keep.txt'), 'x');
        mountReadOnly(ro);
        const r = await drive({ inputs: items(6), outputs: 'ro/new/out.jsonl', autopara }, env);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toContain(`Cannot write the output file ${at('ro', 'new', 'out.jsonl')}: ${ro} is on a read-only file system`);
        expect(chunksRun()).toEqual([]);
        expect(sandboxJobs(box)).toEqual([]);
        expect(listing(box.root)).toEqual([]);
        expect(listing(ro)).toEqual(['keep.txt']);
      });
    }
  });

  it('a missing output dir is still created, and only once the results are written', async () => {
    const r = await drive({ inputs: items(3), outputs: 'deep/er/out.jsonl' });
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(at('deep', 'er', 'out.jsonl'))).toEqual(expected(3));
  });
});

describe.skipIf(!isRoot)('a write that fails at the end keeps the results', () => {
  // 40 results of ~3 kB: more than the 64 kB file system holds.
  const spec = (autopara: Record<string, unknown>) => ({ inputs: items(40), outputs: 'full/out.jsonl', kwargs: { pad: 3000 }, autopara });

  for (const { mode, env } of MODES.filter((m) => m.mode !== 'remote')) {
    it(`saves them under the stage dir, and the rerun writes them without running the op (${mode})`, async () => {
      const full = mkdir(at('full'));
      mountTiny(full, '64k');
      const r = await drive(spec({ numInputsPerSubprocess: 5 }), env);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`Cannot write the output file ${at('full', 'out.jsonl')}: no space left on the device (ENOSPC)`);
      const saved = listing(path.join(box.root, 'unwritten'));
      expect(saved).toHaveLength(1);
      expect(saved[0]).toMatch(/^grow-\d{8}T\d{6}-\d+\.jsonl$/);
      const savedFile = path.join(box.root, 'unwritten', saved[0]!);
      expect(r.stderr).toContain(`The 40 results are saved in ${savedFile}`);
      expect(r.stderr).toContain('run the same call again');
      expect(r.stderr).not.toMatch(/rmSync|\/src\//);
      // Nothing half-written is left in the output dir.
      expect(listing(full)).toEqual([]);
      expect(chunksRun()).toHaveLength(8);

      execFileSync('mount', ['-o', 'remount,size=4m', full]);
      const again = await drive(spec({ numInputsPerSubprocess: 5 }), env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain(`using the 40 results saved in ${savedFile}`);
      expect(chunksRun()).toHaveLength(8);
      expect(readJsonl(at('full', 'out.jsonl'))).toEqual(expected(40, 3000));
      expect(listing(full)).toEqual(['out.jsonl']);
      expect(listing(path.join(box.root, 'unwritten'))).toEqual([]);
    });
  }

  it('when the op fails too, the results so far are saved, and the rerun runs only the rest', async () => {
    const full = mkdir(at('full'));
    mountTiny(full, '64k');
    const r = await drive(spec({ numInputsPerSubprocess: 5 }), { XPR_TEST_FAIL_ON: '37' });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('RangeError: cannot grow x=37');
    expect(r.stderr).toMatch(/xpr grow: Cannot write the output file .*full\/out\.jsonl: no space left on the device \(ENOSPC\)\n {2}The 35 results are saved in /);
    expect(listing(full)).toEqual([]);

    execFileSync('mount', ['-o', 'remount,size=4m', full]);
    const again = await drive(spec({ numInputsPerSubprocess: 5 }));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('using the 35 results saved in');
    expect(chunksRun().slice(8)).toEqual([expect.stringMatching(/ 35,36,37,38,39$/)]);
    expect(readJsonl(at('full', 'out.jsonl'))).toEqual(expected(40, 3000));
    expect(listing(path.join(box.root, 'unwritten'))).toEqual([]);
  });

  it('when the results cannot be saved either, the work stops and the error says so', async () => {
    const full = mkdir(at('full'));
    mountTiny(full, '64k');
    mountReadOnly(box.root);
    const r = await drive(spec({ numInputsPerSubprocess: 5 }));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`Cannot write the output file ${at('full', 'out.jsonl')}: no space left on the device (ENOSPC)`);
    expect(r.stderr).toContain(`The results could not be saved either (in ${path.join(box.root, 'unwritten')}: ${box.root} is on a read-only file system)`);
    expect(r.stderr).toContain('the op runs again for the results not saved');
    expect(listing(full)).toEqual([]);
    expect(listing(box.root)).toEqual([]);
  });

  it('saved results of other inputs are not used', async () => {
    const full = mkdir(at('full'));
    mountTiny(full, '64k');
    expect((await drive(spec({ numInputsPerSubprocess: 5 }))).code).toBe(1);
    execFileSync('mount', ['-o', 'remount,size=4m', full]);
    const other = { ...spec({ numInputsPerSubprocess: 5 }), kwargs: { pad: 2999 } };
    const r = await drive(other);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('using the');
    expect(chunksRun()).toHaveLength(16);
    expect(listing(path.join(box.root, 'unwritten'))).toHaveLength(1);
  });

  it('in remote mode the jobs keep them, stay unprocessed, and the rerun collects them', async () => {
    const full = mkdir(at('full'));
    mountTiny(full, '64k');
    const r = await drive(spec(REMOTE));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`Cannot write the output file ${at('full', 'out.jsonl')}: no space left on the device (ENOSPC)`);
    expect(r.stderr).toContain('The results stay in the 10 jobs, which are not marked processed');
    expect(listing(full)).toEqual([]);
    const jobs = sandboxJobs(box);
    expect(jobs).toHaveLength(10);
    expect(jobs.every((j) => j.status === 'succeeded')).toBe(true);

    execFileSync('mount', ['-o', 'remount,size=4m', full]);
    const again = await drive(spec(REMOTE));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('0 submitted, 10 re-attached');
    expect(readJsonl(at('full', 'out.jsonl'))).toEqual(expected(40, 3000));
    const after = sandboxJobs(box);
    expect(after.map((j) => j.id).sort()).toEqual(jobs.map((j) => j.id).sort());
    expect(after.every((j) => j.status === 'processed')).toBe(true);
  });
});

describe('temp files of killed runs', () => {
  it('are removed by the next run, but never those of a live process or of other outputs', async () => {
    mkdir(at('out'));
    const killed = await drive({ inputs: items(6), outputs: 'out/r.jsonl' }, { XPR_TEST_CRASH_AT: 'output-write:3' });
    expect(killed.code).toBeNull();
    const left = listing(at('out'));
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.r\.jsonl\.tmp-\d+-[0-9a-f]+/);

    // A live process's temp file (another run writing now), and a dead one's of another output.
    const live = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    started.push(live.pid!);
    const liveTemp = `.r.jsonl.tmp-${live.pid}-abcdef`;
    fs.writeFileSync(at('out', liveTemp), '{"x":99}\n');
    const otherTemp = left[0]!.replace('.r.jsonl', '.other.jsonl');
    fs.writeFileSync(at('out', otherTemp), '');

    const r = await drive({ inputs: items(6), outputs: 'out/r.jsonl' });
    expect(r.code, r.stderr).toBe(0);
    expect(listing(at('out'))).toEqual([liveTemp, otherTemp, 'r.jsonl'].sort());
    expect(readJsonl(at('out', 'r.jsonl'))).toEqual(expected(6));
  });
});

describe('pool workers', () => {
  const cases = [
    { what: 'inside a long computation (event loop blocked)', kwargs: { delayMs: 60_000 } },
    { what: 'while the op waits (event loop free)', kwargs: { sleepMs: 60_000 } },
  ];
  it.each(cases)('exit at once when their driver is killed, $what', async ({ kwargs }) => {
    const driver = spawn(process.execPath, [DRIVER], {
      cwd: box.dir, stdio: 'ignore',
      env: {
        ...box.env, ...POOL, XPR_TEST_OP_LOG: opLog(),
        XPR_TEST_SPEC: JSON.stringify({ inputs: items(4), outputs: 'out.jsonl', kwargs, autopara: { numInputsPerSubprocess: 1 } }),
      },
    });
    started.push(driver.pid!);
    const workers = await waitFor(() => {
      const pids = [...new Set(chunksRun().map((l) => Number(l.split(' ')[0])))];
      return pids.length === 2 ? pids : undefined;
    }, 30_000);
    started.push(...workers);
    for (const w of workers) expect(fs.readFileSync(`/proc/${w}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]).toBe(String(driver.pid));

    const exited = new Promise((resolve) => driver.once('exit', resolve));
    driver.kill('SIGKILL');
    await exited;
    const t0 = Date.now();
    await waitFor(() => (workers.every((w) => !alive(w)) ? true : undefined), 2_000);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });
});

async function waitFor<T>(probe: () => T | undefined, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`nothing after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
