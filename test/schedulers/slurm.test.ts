// SLURM parsing on recorded outputs. Formats as documented in the SLURM 22.05 man pages:
//   squeue(1)   -o '%i|%T|%r' (JOB STATE CODES, JOB REASON CODES; -r one line per array task)
//   sacct(1)    -n -P -X -o JobID,State,ExitCode (`CANCELLED by <uid>`, ExitCode `code:signal`,
//               pending array tasks as `1234_[2-3]`)
//   scontrol(1) -o show job (one line of Key=Value per job or array task; ArrayJobId/ArrayTaskId)
// Files named doc-*.txt are written to those documented layouts; other files in
// test/fixtures/slurm/ are captured from a real SLURM 22.05 and are parsed below when present.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { slurm, slurmState } from '../../src/schedulers/slurm.js';
import { FakeBin, brief, fixture, fixturesDir, logArgs, node } from './helpers.js';

describe('slurm.parseSubmit', () => {
  it.each([
    ['1234\n', '1234'],
    ['1401;cluster2\n', '1401'],
    ['Submitted batch job 1234\n', '1234'],
    ['sbatch: some site banner\n1234\n', '1234'],
    [fixture('slurm/doc-sbatch-parsable.txt'), '1401'],
  ])('reads %j', (out, id) => {
    expect(slurm.parseSubmit(out)).toBe(id);
  });

  it('throws a readable error when there is no id', () => {
    expect(() => slurm.parseSubmit('sbatch: error: Batch job submission failed: Invalid partition\n'))
      .toThrow(/Could not find a job id in the output of sbatch/);
  });
});

describe('slurm ids', () => {
  it('array elements are <base>_<index>, the form squeue -r and sacct print', () => {
    expect(slurm.arrayElementId('1234', 0)).toBe('1234_0');
    expect(slurm.arrayElementId('1234', 7)).toBe('1234_7');
    expect(slurm.arrayTaskFile?.('_xpr_submit/x.out', 3)).toBe('_xpr_submit/x.out.3');
  });
});

describe('slurm.parseStatus (doc-squeue-status.txt)', () => {
  const out = fixture('slurm/doc-squeue-status.txt');
  it.each([
    ['1001', 'running'],
    ['1002', 'queued'],
    ['1003', 'held'],
    ['1004', 'held'],
    ['1005', 'running'],
    ['1006', 'done'],
    ['1007', 'failed'],
    ['1008', 'timeout/TIMEOUT'],
    ['1009', 'failed/OUT_OF_MEMORY'],
    ['1010', 'failed/CANCELLED'],
    ['1011', 'failed/PREEMPTED'],
    ['1012', 'failed/NODE_FAIL'],
    ['1013', 'queued'],
    ['1014', 'held'],
    ['1015', 'running'],
    ['1016', 'failed/NODE_FAIL'],
    ['1017', 'failed'],
    ['1020_0', 'done'],
    ['1020_1', 'running'],
    ['1020_2', 'queued'],
    ['1030_5', 'queued'],
  ])('%s → %s', (id, expected) => {
    expect(brief(slurm.parseStatus(out, [id]))).toEqual({ [id]: expected });
  });

  it('returns only the asked ids; ids not listed have left the queue', () => {
    const states = slurm.parseStatus(out, ['1001', '1020_3', '9999', '1030_9']);
    expect([...states.keys()].sort()).toEqual(['1001', '1020_3']);
  });

  it('keeps the state word and reason in raw', () => {
    expect(slurm.parseStatus(out, ['1002']).get('1002')?.raw).toBe('PENDING (Resources)');
  });

  it('maps unknown states to other', () => {
    expect(slurmState('REVOKED').status).toBe('other');
  });
});

describe('slurm.parseRecord (doc-sacct-scontrol-record.txt)', () => {
  const out = fixture('slurm/doc-sacct-scontrol-record.txt');
  it.each([
    ['1101', 'done:0'],
    ['1102', 'failed:1'],
    ['1103', 'timeout/TIMEOUT:0'],
    ['1104', 'failed/OUT_OF_MEMORY:253'],
    ['1105', 'failed/CANCELLED:143'],
    ['1106', 'failed/NODE_FAIL:0'],
    ['1107_0', 'done:0'],
    ['1107_1', 'failed:2'],
    ['1107_3', 'queued:0'],
    // scontrol lines (after the marker); Command= and WorkDir= with spaces do not confuse the parse
    ['1201', 'timeout/TIMEOUT:0'],
    ['1202', 'failed/OUT_OF_MEMORY:253'],
    ['1210_0', 'done:0'],
    ['1210_1', 'failed/CANCELLED:143'],
    ['1210_3', 'held:0'],
  ])('%s → %s', (id, expected) => {
    expect(brief(slurm.parseRecord(out, [id]))).toEqual({ [id]: expected });
  });

  it('omits ids neither sacct nor scontrol know', () => {
    expect(slurm.parseRecord(out, ['5555']).size).toBe(0);
  });
});

describe('slurm.parseFindByName (doc-findbyname.txt)', () => {
  const out = fixture('slurm/doc-findbyname.txt');
  it('finds the base id of a job listed by squeue or sacct', () => {
    expect(slurm.parseFindByName(out, 'xpr_calc_AbC')).toBe('1300');
    expect(slurm.parseFindByName(out, 'xpr_calc_other')).toBe('1301');
    expect(slurm.parseFindByName(out, 'xpr_calc')).toBeUndefined();
  });
});

describe('slurm commands', () => {
  it('asks squeue once for all of the user\'s jobs, including recently ended ones', () => {
    expect(slurm.statusCommand(['1', '2_3'])).toBe(`squeue -h -r -t all -u "$(id -un)" -o '%i|%T|%r'`);
  });
  it('acts on the given ids, quoted', () => {
    expect(slurm.cancelCommand(['12', '13_4'])).toBe(`scancel '12' '13_4'`);
    expect(() => slurm.cancelCommand([])).toThrow(RangeError);
  });
  it('directives: name, output files, array range with per-task files', () => {
    const base = { schedName: 'xpr_a.b-1', node, stdoutFile: 's/o.out', stderrFile: 's/o.err' };
    expect(slurm.directives({ ...base, arraySize: 0 })).toEqual([
      '#SBATCH --job-name=xpr_a.b-1', '#SBATCH --output=s/o.out', '#SBATCH --error=s/o.err',
    ]);
    expect(slurm.directives({ ...base, arraySize: 5 })).toEqual([
      '#SBATCH --job-name=xpr_a.b-1', '#SBATCH --output=s/o.out.%a', '#SBATCH --error=s/o.err.%a',
      '#SBATCH --array=0-4',
    ]);
    expect(() => slurm.directives({ ...base, arraySize: 0, stdoutFile: 'a b.out' })).toThrow(/directive/);
    expect(() => slurm.directives({ ...base, arraySize: 0, schedName: "a'b" })).toThrow(/job name/);
  });
  it('formats time as D-HH:MM:SS', () => {
    expect(slurm.formatTime(90061)).toBe('1-01:01:01');
    expect(slurm.formatTime(3600)).toBe('01:00:00');
  });
});

describe.each(['bash', 'sh'] as const)('slurm command lines run by %s, against fake SLURM commands', (shell) => {
  let bin: FakeBin;
  beforeEach(() => { bin = new FakeBin(); });
  afterEach(() => bin.cleanup());

  it('recordCommand survives disabled accounting and unknown ids, and its output parses', () => {
    bin.add('sacct', `${logArgs('sacct')}\necho 'Slurm accounting storage is disabled' >&2; exit 1`)
      .data('scontrol.out', 'JobId=1201 JobName=x UserId=alice(1000) JobState=TIMEOUT Reason=TimeLimit ExitCode=0:0 RunTime=00:01:01\n')
      .add('scontrol', `${logArgs('scontrol')}
if [ "$4" = 1201 ]; then cat "$FAKEBIN/scontrol.out"; else echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1; fi`);
    const r = bin.run(slurm.recordCommand(['1201', '1300_4', '1300_5'])!, shell);
    expect(r.code).toBe(0);
    expect(bin.calls('sacct')).toEqual([['-n', '-P', '-X', '-o', 'JobID,State,ExitCode', '-j', '1201,1300']]);
    expect(bin.calls('scontrol')).toEqual([['-o', 'show', 'job', '1201'], ['-o', 'show', 'job', '1300']]);
    expect(brief(slurm.parseRecord(r.stdout, ['1201', '1300_4']))).toEqual({ 1201: 'timeout/TIMEOUT:0' });
  });

  it('findByNameCommand fails when squeue fails, not when sacct does', () => {
    bin.add('squeue', `${logArgs('squeue')}\necho '1300|xpr_n'`)
      .add('sacct', `echo 'Slurm accounting storage is disabled' >&2; exit 1`);
    const ok = bin.run(slurm.findByNameCommand('xpr_n'), shell);
    expect(ok.code).toBe(0);
    expect(slurm.parseFindByName(ok.stdout, 'xpr_n')).toBe('1300');
    expect(bin.calls('squeue')[0]).toContain('xpr_n');

    bin.add('squeue', `echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1`);
    expect(bin.run(slurm.findByNameCommand('xpr_n'), shell).code).not.toBe(0);
  });

  it.runIf(shell === 'bash')('arrayIndexExpr gives the 0-based index inside a bash array subscript', () => {
    const r = bin.run(`set -u; SLURM_ARRAY_TASK_ID=2; a=(x y z w); echo "\${a[${slurm.arrayIndexExpr}]}"`, 'bash');
    expect(r.stdout.trim()).toBe('z');
  });
});

// Outputs captured from the live SLURM 22.05 test cluster (test/fixtures/slurm/record.sh; the exact
// command of each capture is in commands.tsv). Job ids differ on every recording, so they are read
// from commands.tsv. The captures use wider layouts than ours (`%i|%A|%K|%j|%T|%r`,
// `JobID,State,ExitCode,Reason`); the tests keep the columns our commands ask for.
const slurmDir = path.join(fixturesDir, 'slurm');
const commandsFile = path.join(slurmDir, 'commands.tsv');
const captured = fs.existsSync(commandsFile)
  ? new Map(fs.readFileSync(commandsFile, 'utf8').split('\n').slice(1).filter(Boolean)
    .map((l) => l.split('\t')).map(([name = '', , cmd = '']) => [name, cmd]))
  : new Map<string, string>();

/** The job id a capture was taken of: the `-j` list or the last word of its command. */
function jobOf(name: string): string {
  const cmd = captured.get(name) ?? '';
  return /-j (\S+)/.exec(cmd)?.[1] ?? cmd.trim().split(/\s+/).at(-1) ?? '';
}

/** Keep columns `cols` of `|`-separated lines. */
function columns(text: string, cols: number[]): string {
  return text.split('\n').map((l) => (l ? cols.map((c) => l.split('|')[c] ?? '').join('|') : l)).join('\n');
}

describe.skipIf(captured.size === 0)('slurm on outputs captured from a real SLURM 22.05', () => {
  const id = {
    completed: jobOf('scontrol-completed'), failed: jobOf('scontrol-failed'), oom: jobOf('scontrol-oom'),
    held: jobOf('scontrol-held'), cancelledRunning: jobOf('scontrol-cancelled-running'),
    cancelledPending: jobOf('scontrol-cancelled-pending'), timeout: jobOf('scontrol-timeout'),
    array: jobOf('scontrol-array-done'), beginTime: jobOf('squeue-pending-begintime'),
    partTime: jobOf('squeue-pending-partition-time-limit'),
  };

  it('parseSubmit reads sbatch --parsable and plain sbatch output', () => {
    expect(slurm.parseSubmit(fixture('slurm/sbatch-parsable.txt'))).toBe(id.completed);
    expect(slurm.parseSubmit(fixture('slurm/sbatch-array-parsable.txt'))).toBe(id.array);
    expect(slurm.parseSubmit(fixture('slurm/sbatch.txt'))).toMatch(/^\d+$/);
    // A refused submission prints nothing on stdout (the reason is on stderr).
    expect(() => slurm.parseSubmit(fixture('slurm/sbatch-error-bad-partition.txt'))).toThrow(/job id/);
  });

  it('squeue -t all: a recently ended job still shows, with its final state', () => {
    const out = columns(fixture('slurm/squeue-mixed-ids-all-states.txt'), [0, 4, 5]);
    expect(brief(slurm.parseStatus(out, [id.completed, id.timeout, `${id.array}_0`, `${id.array}_3`]))).toEqual({
      [id.completed]: 'done', [id.timeout]: 'running', [`${id.array}_0`]: 'running', [`${id.array}_3`]: 'queued',
    });
  });

  it('squeue: held, and pending for BeginTime or PartitionTimeLimit', () => {
    const st = (file: string, jobId: string): Record<string, string> =>
      brief(slurm.parseStatus(columns(fixture(`slurm/${file}`), [0, 4, 5]), [jobId]));
    expect(st('squeue-held.txt', id.held)).toEqual({ [id.held]: 'held' });
    expect(st('squeue-pending-begintime.txt', id.beginTime)).toEqual({ [id.beginTime]: 'queued' });
    expect(st('squeue-pending-partition-time-limit.txt', id.partTime)).toEqual({ [id.partTime]: 'queued' });
    expect(st('squeue-array-r.txt', `${id.array}_2`)).toEqual({ [`${id.array}_2`]: 'queued' });
  });

  it('squeue -j <one gone id> fails (exit 1), which is why statusCommand lists the user\'s jobs', () => {
    expect(fixture('slurm/squeue-gone.stderr.txt')).toMatch(/Invalid job id specified/);
    expect(fixture('slurm/squeue-gone.txt')).toBe('');
  });

  it('sacct -X -P: final states with exit codes', () => {
    const out = fixture('slurm/sacct-mixed-ids.txt');
    expect(brief(slurm.parseRecord(out, [
      id.completed, id.failed, id.oom, id.cancelledRunning, id.cancelledPending, id.timeout,
      `${id.array}_0`, `${id.array}_1`,
    ]))).toEqual({
      [id.completed]: 'done:0',
      [id.failed]: 'failed:3',
      [id.oom]: 'failed/OUT_OF_MEMORY:253',
      [id.cancelledRunning]: 'failed/CANCELLED:0',
      [id.cancelledPending]: 'failed/CANCELLED:0',
      [id.timeout]: 'timeout/TIMEOUT:0',
      [`${id.array}_0`]: 'done:0',
      [`${id.array}_1`]: 'failed:1',
    });
  });

  it('scontrol -o show job: plain jobs and array tasks (base id lists all tasks)', () => {
    const rec = (file: string, ids: string[]): Record<string, string> =>
      brief(slurm.parseRecord(`#xpr-scontrol\n${fixture(`slurm/${file}`)}`, ids));
    expect(rec('scontrol-oneliner-completed.txt', [id.completed])).toEqual({ [id.completed]: 'done:0' });
    expect(rec('scontrol-oneliner-timeout.txt', [id.timeout])).toEqual({ [id.timeout]: 'timeout/TIMEOUT:143' });
    expect(rec('scontrol-oneliner-array-running.txt', [`${id.array}_0`, `${id.array}_3`])).toEqual({
      [`${id.array}_0`]: 'running:0', [`${id.array}_3`]: 'queued:0',
    });
  });

  it('squeue --name: the base id of an array, pending range or running task', () => {
    const out = columns(fixture('slurm/squeue-name-ids.txt'), [0, 2]);
    expect(slurm.parseFindByName(out, 'xpr-fx-array')).toBe(id.array);
    expect(slurm.parseFindByName(fixture('slurm/squeue-name-none.txt'), 'xpr-fx-no-such-name')).toBeUndefined();
  });
});
