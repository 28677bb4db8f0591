// The `torque` scheduler on what SLURM's Torque wrappers (Debian's slurm-wlm-torque) really print,
// recorded in test/fixtures/torque by its record.sh (see its README), and on real Torque's documented
// forms (test/fixtures/pbs/doc-torque-*). The wrappers' answers differ from Torque's: bare SLURM ids,
// tab-indented `qstat -f` attributes, states Q R C only and no exit status, each array task under
// its own SLURM id, no -t / -x / --version / qselect, and a qdel that reads `1234[1]` as 1234.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseQstatFull, pbs, torque } from '../../src/schedulers/pbs.js';
import { FakeBin, brief, fixture, logArgs } from './helpers.js';

/** Job ids behind each role of the recording (jobs.tsv). */
const JOB: Record<string, string> = Object.fromEntries(
  fixture('torque/jobs.tsv').trim().split('\n').slice(1).map((l) => l.split('\t') as [string, string]),
);
const tq = (name: string): string => fixture(`torque/${name}.txt`);
/** Ids of the elements of array `id` as xpr names them. */
const elements = (id: string, n: number): string[] => Array.from({ length: n }, (_v, i) => torque.arrayElementId(id, i));

describe('torque on SLURM wrapper output', () => {
  it('qsub prints the bare SLURM id, for a plain job and an array', () => {
    expect(torque.parseSubmit(tq('qsub'))).toBe(JOB.completed);
    expect(torque.parseSubmit(tq('qsub-array'))).toBe(JOB.array);
    expect(elements(JOB.array!, 2)).toEqual([`${JOB.array}[0]`, `${JOB.array}[1]`]);
  });

  it('a refused submission (printed on stdout, exit 1) has no job id', () => {
    expect(() => torque.parseSubmit(tq('qsub-error-bad-queue'))).toThrow(/job id/);
  });

  it('parseQstatFull reads tab-indented attributes as attributes, not as continuation lines', () => {
    const [job] = parseQstatFull(tq('qstat-f-completed'));
    expect(job?.id).toBe(JOB.completed);
    expect(job?.attrs.get('Job_Name')).toBe('xpr_fx_ok');
    expect(job?.attrs.get('Job_Owner')).toBe('root@localhost');
    expect(job?.attrs.get('job_state')).toBe('C');
    expect(job?.attrs.get('Resource_List.walltime')).toBe('00:05:00');
  });

  it.each([
    ['completed', 'qstat-f-completed', 'done'],
    // No exit status in this qstat: C is all it says, for a failure, a qdel and a walltime kill
    // alike; the job's files decide (RemoteError / JobDiedError without a named reason).
    ['failed', 'qstat-f-failed', 'done'],
    ['cancelled-running', 'qstat-f-cancelled', 'done'],
    ['cancelled-pending', 'qstat-f-cancelled', 'done'],
    ['timeout', 'qstat-f-timeout', 'done'],
    ['timeout', 'qstat-f-all-array-running', 'running'],
    // A held job is Q like any pending one.
    ['held', 'qstat-f-held', 'queued'],
  ])('%s in %s → %s', (role, file, expected) => {
    const id = JOB[role]!;
    expect(brief(torque.parseStatus(tq(file), [id]))).toEqual({ [id]: expected });
  });

  it('a job gone from slurmctld (MinJobAge) is not listed: qstat exits 153 and prints nothing', () => {
    expect(tq('qstat-f-gone')).toBe('');
    expect(torque.parseStatus(tq('qstat-f-gone'), [JOB.completed!]).size).toBe(0);
  });

  it('array elements: no index in the output, so each takes the state of its array as a whole', () => {
    const ids = elements(JOB.array!, 4);
    // Only the array's own record, pending.
    expect(Object.values(brief(torque.parseStatus(tq('qstat-f-array-pending'), ids)))).toEqual(Array(4).fill('queued'));
    // Tasks 0 running under their own ids, the rest pending under the array's id.
    const running = torque.parseStatus(tq('qstat-f-all-array-running'), ids);
    expect(Object.values(brief(running))).toEqual(Array(4).fill('running'));
    expect(running.get(ids[0]!)?.raw).toMatch(/^array tasks: .*\bR\b/);
    // All four ended (C): the files decide.
    expect(Object.values(brief(torque.parseStatus(tq('qstat-f-array-cancel'), ids)))).toEqual(Array(4).fill('done'));
  });

  it("array elements stay running while a task runs, even after the array's own record ended", () => {
    // The last task to start runs under the array's id; it ended at once, task 0 still runs 40 s
    // later, past MinJobAge: SLURM keeps the array's record until every task is gone.
    const jobs = parseQstatFull(tq('qstat-f-array-long')).filter((j) => j.attrs.get('Job_Name') === 'xpr_fx_array_long');
    expect(jobs.map((j) => [j.id, j.attrs.get('job_state')]).sort()).toContainEqual([JOB['array-long'], 'C']);
    expect(jobs.some((j) => j.attrs.get('job_state') === 'R')).toBe(true);
    expect(Object.values(brief(torque.parseStatus(tq('qstat-f-array-long'), elements(JOB['array-long']!, 2)))))
      .toEqual(['running', 'running']);
  });

  it('real Torque array elements (their own records) are not mistaken for wrapper output', () => {
    const out = fixture('pbs/doc-torque-qstat-f.txt');
    expect(brief(torque.parseStatus(out, ['5310[0].torque01.cluster', '5310[7].torque01.cluster']))).toEqual({
      '5310[0].torque01.cluster': 'running',
    });
  });

  it('finds a job by name in the full listing: the lowest id of that name, the array itself', () => {
    expect(torque.parseFindByName(tq('qstat-f-all-array-running'), 'xpr_fx_array')).toBe(JOB.array);
    expect(torque.parseFindByName(tq('qstat-f-all-array-running'), 'xpr_fx_ok')).toBe(JOB.completed);
    expect(torque.parseFindByName(tq('qstat-f-all-array-running'), 'xpr_fx_nothing')).toBeUndefined();
    expect(torque.parseFindByName('', 'xpr_fx_ok')).toBeUndefined();
    // qselect's answer on real Torque still reads as before.
    expect(torque.parseFindByName('5310[].torque01.cluster\n', 'x')).toBe('5310[].torque01.cluster');
  });

  it("what the wrappers print for what they lack (why xpr asks qstat --version first)", () => {
    expect(tq('qstat-version')).toBe('');
    expect(fixture('torque/qstat-version.stderr.txt')).toMatch(/^Unknown option: version\n/);
    expect(fixture('torque/qstat-t.stderr.txt')).toMatch(/^Unknown option: t\n/);
    expect(fixture('torque/qstat-x.stderr.txt')).toMatch(/^Unknown option: x\n/);
    expect(tq('commands').split('\n')).not.toContain('qselect');
    expect(fixture('torque/qdel-array-element.stderr.txt')).toContain(`Argument "${JOB['array-cancel']}[1]" isn't numeric`);
  });
});

describe('torque directives and job script pieces', () => {
  const base = { schedName: 'xpr_a.b-1', node: { partitionKey: 'p', partition: 'p', numNodes: 1, numCores: 1, numCoresPerNode: 1, maxTime: 60 }, stdoutFile: 's/o.out', stderrFile: 's/o.err' };

  it('arrays with -t 0-(N-1)', () => {
    expect(torque.directives({ ...base, arraySize: 3 })).toEqual([
      '#PBS -N xpr_a.b-1', '#PBS -o s/o.out', '#PBS -e s/o.err', '#PBS -S /bin/bash', '#PBS -t 0-2',
    ]);
  });

  it('qsub names -o/-e on the command line too (the wrapper would put its own there)', () => {
    expect(torque.submitCommand('_xpr_submit/xpr_x.sh')).toBe(
      `qsub -o '_xpr_submit/xpr_x.out' -e '_xpr_submit/xpr_x.err' '_xpr_submit/xpr_x.sh'`);
    expect(torque.submitCommand('other')).toBe(`qsub 'other'`);
    expect(pbs.submitCommand('_xpr_submit/xpr_x.sh')).toBe(`qsub '_xpr_submit/xpr_x.sh'`);
  });

  it('mem= in kb/mb/gb, the largest exact unit', () => {
    expect(torque.formatMem(4 * 1024 * 1024)).toBe('4gb');
    expect(torque.formatMem(1536 * 1024)).toBe('1536mb');
    expect(torque.formatMem(1000)).toBe('1000kb');
  });

  it('recorded: the job sees SLURM variables only, and starts in the submit dir', () => {
    const out = tq('job-ok-output');
    expect(out).toMatch(/^pwd=\/tmp\/xpr-torque-fixtures$/m);
    expect(out).toMatch(/^SLURM_SUBMIT_DIR=\/tmp\/xpr-torque-fixtures$/m);
    expect(out).not.toMatch(/^PBS_/m);
  });

  it.each([
    ['real Torque', 'PBS_O_WORKDIR=/w/torque PBS_ARRAYID=2', 'dir=/w/torque x=c'],
    ["SLURM's wrappers", 'SLURM_SUBMIT_DIR=/w/slurm SLURM_ARRAY_TASK_ID=1', 'dir=/w/slurm x=b'],
  ])('%s: submit dir and array index under set -u', (_label, env, expected) => {
    const bin = new FakeBin();
    try {
      const r = bin.run(`${env} bash -c 'set -u; a=(a b c); echo "dir=${torque.submitDirExpr} x=\${a[${torque.arrayIndexExpr}]}"'`);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe(expected);
    } finally {
      bin.cleanup();
    }
  });
});

describe.each(['bash', 'sh'] as const)('torque command lines run by %s', (shell) => {
  let bin: FakeBin;
  beforeEach(() => { bin = new FakeBin(); });
  afterEach(() => bin.cleanup());

  /** A fake of SLURM's qstat wrapper: Getopt's answer to --version, `out` for -f, 153 when empty. */
  const wrapperQstat = (out: string): FakeBin => bin.data('qstat.out', out).add('qstat', `
if [ "$1" = --version ]; then printf 'Unknown option: version\\nUsage:\\n    qstat [-f] ...\\n' >&2; exit 2; fi
${logArgs('qstat')}
cat "$FAKEBIN/qstat.out"
[ -s "$FAKEBIN/qstat.out" ] || exit 153`);
  const torqueQstat = (): FakeBin => bin.data('qstat.out', fixture('pbs/doc-torque-qstat-f.txt')).add('qstat', `
if [ "$1" = --version ]; then printf 'Version: 6.1.3\\nCommit: abc\\n' >&2; exit 0; fi
${logArgs('qstat')}
cat "$FAKEBIN/qstat.out"`);

  it('status, wrapper: all jobs in full (no -t), elements from their array', () => {
    wrapperQstat(tq('qstat-f-all-array-running'));
    const ids = [JOB.completed!, ...elements(JOB.array!, 2)];
    const r = bin.run(torque.statusCommand(ids), shell);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(bin.calls('qstat')).toEqual([['-f']]);
    expect(brief(torque.parseStatus(r.stdout, ids))).toEqual({
      [JOB.completed!]: 'done', [`${JOB.array}[0]`]: 'running', [`${JOB.array}[1]`]: 'running',
    });
  });

  it('status, wrapper: no job at all (exit 153) is an empty answer, not a failure', () => {
    wrapperQstat('');
    const r = bin.run(torque.statusCommand(['1']), shell);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('status, wrapper: a failing qstat fails the command', () => {
    bin.add('qstat', `if [ "$1" = --version ]; then echo 'Unknown option: version' >&2; exit 2; fi
echo 'Problem loading jobs.' >&2; exit 255`);
    const r = bin.run(torque.statusCommand(['1']), shell);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Problem loading jobs.');
  });

  it('status, real Torque: qstat -f -t of the array parents', () => {
    torqueQstat();
    const r = bin.run(torque.statusCommand(['5302.torque01.cluster', '5310[1].torque01.cluster']), shell);
    expect(r.code).toBe(0);
    expect(bin.calls('qstat')).toEqual([['-f', '-t', '5302.torque01.cluster', '5310[].torque01.cluster']]);
  });

  it('find by name, wrapper: qstat -f, never a qselect that happens to be on PATH (Grid Engine has one)', () => {
    wrapperQstat(tq('qstat-f-all-array-running')).add('qselect', `${logArgs('qselect')}\necho all.q@vm`);
    const r = bin.run(torque.findByNameCommand('xpr_fx_array'), shell);
    expect(r.code).toBe(0);
    expect(bin.calls('qselect')).toEqual([]);
    expect(torque.parseFindByName(r.stdout, 'xpr_fx_array')).toBe(JOB.array);
  });

  it('find by name, real Torque: qselect', () => {
    torqueQstat().add('qselect', `${logArgs('qselect')}\necho '5310[].torque01.cluster'`);
    const r = bin.run(torque.findByNameCommand('xpr_arr'), shell);
    const user = bin.run('id -un', shell).stdout.trim();
    expect(bin.calls('qselect')).toEqual([['-u', user, '-N', 'xpr_arr']]);
    expect(torque.parseFindByName(r.stdout, 'xpr_arr')).toBe('5310[].torque01.cluster');
  });

  it('cancel, wrapper: each array once by its own id (its qdel cancels the whole array either way)', () => {
    wrapperQstat('').add('qdel', logArgs('qdel'));
    const a = JOB['array-cancel']!;
    expect(bin.run(torque.cancelCommand([...elements(a, 3), JOB.completed!]), shell).code).toBe(0);
    expect(bin.calls('qdel')).toEqual([[a, JOB.completed]]);
  });

  it('cancel, real Torque: each element', () => {
    torqueQstat().add('qdel', logArgs('qdel'));
    expect(bin.run(torque.cancelCommand(['5310[0].t', '5310[1].t']), shell).code).toBe(0);
    expect(bin.calls('qdel')).toEqual([['5310[0].t', '5310[1].t']]);
  });
});
