// PBS parsing on recorded outputs. Formats as documented:
//   PBS Professional 2024.1 Reference Guide: qstat -f / -x / -t (`Job Id:` then `    name = value`,
//   long values continued on tab-indented lines), job_state letters (B E F H M Q R S T U W X),
//   Exit_status and Table "Job Exit Codes" (-29 JOB_EXEC_KILL_WALLTIME, -27 JOB_EXEC_KILL_MEM,
//   -26 JOB_EXEC_KILL_VMEM; 128+/256+signal for killed jobs), subjob ids `1234[5].server`.
//   Torque 6.1 Admin Guide: qstat -f (job_state C, lowercase exit_status), "Job exit status"
//   (-11 JOB_EXEC_OVERLIMIT_WT, -10 JOB_EXEC_OVERLIMIT_MEM), job arrays (`qsub -t`, PBS_ARRAYID,
//   `1234[].server`), qstat --version (`Version: 6.1.3`) vs PBS Pro (`pbs_version = 2022.1.0`).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseQstatFull, pbs, torque } from '../../src/schedulers/pbs.js';
import { FakeBin, brief, fixture, logArgs, node } from './helpers.js';

describe('pbs.parseSubmit', () => {
  it.each([
    [fixture('pbs/doc-pbspro-qsub.txt'), '4201.pbs01'],
    [fixture('pbs/doc-pbspro-qsub-array.txt'), '4210[].pbs01'],
    [fixture('pbs/doc-torque-qsub-array.txt'), '5310[].torque01.cluster'],
    ['1234\n', '1234'],
    ['site banner: be nice\n1234.server.example.org\n', '1234.server.example.org'],
  ])('reads %j', (out, id) => {
    expect(pbs.parseSubmit(out)).toBe(id);
  });
  it('throws when qsub printed no id', () => {
    expect(() => pbs.parseSubmit('qsub: Unknown queue\n')).toThrow(/job id/);
  });
});

describe('pbs ids', () => {
  it('array elements are <n>[<i>].<server>', () => {
    expect(pbs.arrayElementId('4210[].pbs01', 3)).toBe('4210[3].pbs01');
    expect(pbs.arrayElementId('4210[]', 0)).toBe('4210[0]');
    expect(torque.arrayElementId('5310[].torque01.cluster', 1)).toBe('5310[1].torque01.cluster');
  });
  it('per-task output files: ^array_index^ on PBS Pro, -<index> appended by Torque', () => {
    expect(pbs.arrayTaskFile?.('s/o.out', 2)).toBe('s/o.out.2');
    expect(torque.arrayTaskFile?.('s/o.out', 2)).toBe('s/o.out-2');
  });
});

describe('parseQstatFull', () => {
  it('joins tab-continued values and keeps every job', () => {
    const jobs = parseQstatFull(fixture('pbs/doc-pbspro-qstat-xf.txt'));
    expect(jobs.map((j) => j.id)).toEqual([
      '4201.pbs01', '4202.pbs01', '4203.pbs01', '4204.pbs01', '4205.pbs01', '4206.pbs01', '4207.pbs01',
      '4208.pbs01', '4210[].pbs01', '4210[0].pbs01', '4210[1].pbs01', '4210[2].pbs01', '4210[3].pbs01',
    ]);
    const first = jobs[0]!;
    expect(first.attrs.get('Output_Path')).toBe('login01.cluster:/home/alice/run_expyre/_xpr_submit/xpr_calc_AbC.out');
    expect(first.attrs.get('Variable_List')).toMatch(/PBS_O_LOGNAME=alice,.*PBS_O_HOST=login01\.cluster$/);
    expect(first.attrs.get('Exit_status')).toBe('-29');
  });
});

describe('pbs.parseStatus on PBS Pro qstat -x -f -t (doc-pbspro-qstat-xf.txt)', () => {
  const out = fixture('pbs/doc-pbspro-qstat-xf.txt');
  it.each([
    ['4201.pbs01', 'timeout/TIMEOUT:-29'],
    ['4202.pbs01', 'done:0'],
    ['4203.pbs01', 'failed:1'],
    ['4204.pbs01', 'failed/OUT_OF_MEMORY:-27'],
    ['4205.pbs01', 'timeout/TIMEOUT:271'], // killed by SIGTERM (256+15) after using its walltime
    ['4206.pbs01', 'running'],
    ['4207.pbs01', 'queued'],
    ['4208.pbs01', 'held'],
    ['4210[].pbs01', 'running'],
    ['4210[0].pbs01', 'done:0'],
    ['4210[1].pbs01', 'failed:2'],
    ['4210[2].pbs01', 'running'],
    ['4210[3].pbs01', 'queued'],
    // the server part of an id may be printed longer or shorter than qsub printed it
    ['4202.pbs01.cluster.example', 'done:0'],
    ['4202', 'done:0'],
  ])('%s → %s', (id, expected) => {
    expect(brief(pbs.parseStatus(out, [id]))).toEqual({ [id]: expected });
  });
  it('leaves out ids qstat did not list', () => {
    expect(pbs.parseStatus(out, ['9999.pbs01', '4210[7].pbs01']).size).toBe(0);
  });
  it('names a job deleted with qdel (substate 91, JOB_SUBSTATE_TERMINATED) CANCELLED, run or not', () => {
    const deleted = [
      'Job Id: 4301.pbs01', '    job_state = F', '    substate = 91', '    Exit_status = 271', '',
      'Job Id: 4302.pbs01', '    job_state = F', '    substate = 91', '',
      'Job Id: 4303[1].pbs01', '    job_state = X', '    substate = 91', '    array_index = 1', '',
    ].join('\n');
    expect(brief(pbs.parseStatus(deleted, ['4301.pbs01', '4302.pbs01', '4303[1].pbs01']))).toEqual({
      '4301.pbs01': 'failed/CANCELLED:271', '4302.pbs01': 'failed/CANCELLED', '4303[1].pbs01': 'failed/CANCELLED',
    });
  });
});

describe('pbs.parseStatus on Torque qstat -f -t (doc-torque-qstat-f.txt)', () => {
  const out = fixture('pbs/doc-torque-qstat-f.txt');
  it.each([
    ['5301.torque01.cluster', 'timeout/TIMEOUT:271'],
    ['5302.torque01.cluster', 'done:0'],
    ['5303.torque01.cluster', 'timeout/TIMEOUT:-11'],
    ['5304.torque01.cluster', 'failed/OUT_OF_MEMORY:-10'],
    ['5305.torque01.cluster', 'queued'],
    ['5310[0].torque01.cluster', 'running'],
    ['5310[1].torque01.cluster', 'held'],
  ])('%s → %s', (id, expected) => {
    expect(brief(torque.parseStatus(out, [id]))).toEqual({ [id]: expected });
    // The same text read by the `pbs` module (a Torque site configured as "pbs"): same answer.
    expect(brief(pbs.parseStatus(out, [id]))).toEqual({ [id]: expected });
  });
});

describe('pbs directives', () => {
  const base = { schedName: 'xpr_a.b-1', node, stdoutFile: 's/o.out', stderrFile: 's/o.err' };
  it('plain job', () => {
    expect(pbs.directives({ ...base, arraySize: 0 })).toEqual(['#PBS -N xpr_a.b-1', '#PBS -o s/o.out', '#PBS -e s/o.err', '#PBS -S /bin/bash']);
  });
  it('PBS Pro array: -J 0-(N-1) and ^array_index^ files; refuses 1 subjob', () => {
    expect(pbs.directives({ ...base, arraySize: 4 })).toEqual([
      '#PBS -N xpr_a.b-1', '#PBS -o s/o.out.^array_index^', '#PBS -e s/o.err.^array_index^', '#PBS -S /bin/bash',
      '#PBS -J 0-3',
    ]);
    expect(() => pbs.directives({ ...base, arraySize: 1 })).toThrow(/array of 1/);
  });
  it('Torque array: -t 0-(N-1)', () => {
    expect(torque.directives({ ...base, arraySize: 1 })).toEqual([
      '#PBS -N xpr_a.b-1', '#PBS -o s/o.out', '#PBS -e s/o.err', '#PBS -S /bin/bash', '#PBS -t 0-0',
    ]);
  });
  it('a job name must start with a letter', () => {
    expect(pbs.directives({ ...base, schedName: '9abc', arraySize: 0 })[0]).toBe('#PBS -N N_9abc');
    expect(pbs.findByNameCommand('9abc')).toContain(`-N 'N_9abc'`);
  });
  it('walltime as HH:MM:SS past 24 h', () => {
    expect(pbs.formatTime(90061)).toBe('25:01:01');
  });
});

describe('pbs commands', () => {
  it('cancels array elements one by one', () => {
    expect(pbs.cancelCommand(['4210[1].pbs01'])).toBe(`qdel '4210[1].pbs01'`);
  });
  it('has no separate record query: qstat -x in the status query is the record', () => {
    expect(pbs.recordCommand(['1.s'])).toBeUndefined();
  });
  it('parseFindByName takes the id qselect printed, as the array parent', () => {
    expect(pbs.parseFindByName(fixture('pbs/doc-pbspro-qselect.txt'), 'xpr_arr')).toBe('4210[].pbs01');
    expect(pbs.parseFindByName('5310[0].torque01\n', 'x')).toBe('5310[].torque01');
    expect(pbs.parseFindByName('', 'x')).toBeUndefined();
  });
});

describe.each(['bash', 'sh'] as const)('pbs command lines run by %s, against fake PBS commands', (shell) => {
  let bin: FakeBin;
  beforeEach(() => { bin = new FakeBin(); });
  afterEach(() => bin.cleanup());

  const fakeQstat = (version: string, stderrLine: string, code: number): string => `
if [ "$1" = --version ]; then echo '${version}'; exit 0; fi
${logArgs('qstat')}
cat "$FAKEBIN/qstat.out"
echo '${stderrLine}' >&2
exit ${code}`;

  it('PBS Pro: adds -x, asks for array parents once, and ignores "Unknown Job Id"', () => {
    bin.data('qstat.out', fixture('pbs/doc-pbspro-qstat-xf.txt'))
      .add('qstat', fakeQstat('pbs_version = 2022.1.0', 'qstat: Unknown Job Id 9999.pbs01', 153));
    const ids = ['4202.pbs01', '4210[0].pbs01', '4210[1].pbs01', '9999.pbs01'];
    const r = bin.run(pbs.statusCommand(ids), shell);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(bin.calls('qstat')).toEqual([['-f', '-t', '-x', '4202.pbs01', '4210[].pbs01', '9999.pbs01']]);
    expect(brief(pbs.parseStatus(r.stdout, ids))).toEqual({
      '4202.pbs01': 'done:0', '4210[0].pbs01': 'done:0', '4210[1].pbs01': 'failed:2',
    });
  });

  it('Torque: no -x (it would mean XML there), and PBS_QSTAT_NO_COMPLETE is cleared', () => {
    bin.data('qstat.out', fixture('pbs/doc-torque-qstat-f.txt'))
      .add('qstat', `[ -n "\${PBS_QSTAT_NO_COMPLETE+x}" ] && { echo 'hiding completed' >&2; exit 9; }
${fakeQstat('Version: 6.1.3', 'qstat: Unknown Job Id Error 9999.torque01.cluster', 153)}`);
    const r = bin.run(`export PBS_QSTAT_NO_COMPLETE=1; ${pbs.statusCommand(['5302.torque01.cluster', '9999.torque01.cluster'])}`, shell);
    expect(r.code).toBe(0);
    expect(bin.calls('qstat')).toEqual([['-f', '-t', '5302.torque01.cluster', '9999.torque01.cluster']]);
    expect(brief(pbs.parseStatus(r.stdout, ['5302.torque01.cluster']))).toEqual({ '5302.torque01.cluster': 'done:0' });
  });

  it('fails, with the message, when qstat fails for another reason', () => {
    bin.data('qstat.out', '')
      .add('qstat', fakeQstat('pbs_version = 2022.1.0', 'qstat: cannot connect to server pbs01 (errno=15010)', 2));
    const r = bin.run(pbs.statusCommand(['4202.pbs01']), shell);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('cannot connect to server');
  });

  it('findByNameCommand uses qselect, with -x on PBS Pro only', () => {
    bin.add('qselect', `${logArgs('qselect')}\necho '4210[].pbs01'`)
      .add('qstat', `echo 'pbs_version = 2022.1.0'`);
    const r = bin.run(pbs.findByNameCommand('xpr_arr'), shell);
    expect(r.code).toBe(0);
    expect(pbs.parseFindByName(r.stdout, 'xpr_arr')).toBe('4210[].pbs01');
    const user = bin.run('id -un', shell).stdout.trim();
    expect(bin.calls('qselect')).toEqual([['-x', '-u', user, '-N', 'xpr_arr']]);
    bin.run(torque.findByNameCommand('xpr_arr'), shell);
    expect(bin.calls('qselect')[1]).toEqual(['-u', user, '-N', 'xpr_arr']);
  });

  it.runIf(shell === 'bash')('arrayIndexExpr reads PBS_ARRAY_INDEX (PBS Pro) or PBS_ARRAYID (Torque)', () => {
    const pick = `set -u; a=(x y z w); echo "\${a[${pbs.arrayIndexExpr}]}"`;
    expect(bin.run(`PBS_ARRAY_INDEX=2; ${pick}`, 'bash').stdout.trim()).toBe('z');
    expect(bin.run(`PBS_ARRAYID=3; ${pick}`, 'bash').stdout.trim()).toBe('w');
  });
});
