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
    expect(slurm.holdCommand(['12'])).toBe(`scontrol hold '12'`);
    expect(slurm.releaseCommand(['12'])).toBe(`scontrol release '12'`);
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

// Outputs captured from the live SLURM 22.05 by the capture helper, when present: every file must
// parse without throwing, and every id a status listing shows must map to a known status.
describe('slurm on captured real outputs', () => {
  const dir = path.join(fixturesDir, 'slurm');
  const real = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => !f.startsWith('doc-')) : [];
  it.skipIf(real.length === 0).each(real.length ? real : ['(none)'])('%s parses', (file) => {
    const text = fixture(`slurm/${file}`);
    const ids = [...text.matchAll(/(?:^|JobId=)(\d+(?:_\d+)?)\b/gm)].map((m) => m[1] ?? '');
    expect(() => slurm.parseStatus(text, ids)).not.toThrow();
    expect(() => slurm.parseRecord(text, ids)).not.toThrow();
    for (const s of slurm.parseStatus(text, ids).values()) {
      expect(['queued', 'held', 'running', 'done', 'failed', 'timeout', 'other']).toContain(s.status);
    }
  });
});
