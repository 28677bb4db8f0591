// Grid Engine parsing on recorded outputs. Formats as documented:
//   qsub(1) -terse: `1234`, arrays `1234.1-20:1`; without -terse `Your job 1234 ("name") has been
//   submitted` / `Your job-array 1234.1-20:1 ("name") has been submitted`.
//   qstat(1) -xml (schema qstat.xsd): <job_list state="running|pending"> with JB_job_number, JB_name,
//   state (letters d E h r R s S t T w q: qw, hqw, Eqw, dr, t, ...), tasks (`3`, `3-5:1`, `2,4`).
//   qacct(1) -j and accounting(5): records between `=====` lines; failed `100 : assumedly after job`,
//   `37 : qmaster enforced h_rt, h_cpu, or h_vmem limit`, `26 : opening input/output file`;
//   exit_status 128+signal (137 = SIGKILL, printed `137 (Killed)` by Son of Grid Engine 8.1);
//   ru_wallclock `39` (SGE 6.2) or `61s` (SoGE 8.1); maxvmem `79.340M` or `19.344MB`; category.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseQstatXml, sge, sgeState } from '../../src/schedulers/sge.js';
import { FakeBin, brief, fixture, fixturesDir, logArgs, node } from './helpers.js';

describe('sge.parseSubmit', () => {
  it.each([
    [fixture('sge/doc-qsub-terse.txt'), '7201'],
    [fixture('sge/doc-qsub-terse-array.txt'), '7210'],
    [fixture('sge/doc-qsub.txt'), '7201'],
    [fixture('sge/doc-qsub-array.txt'), '7210'],
  ])('reads %j', (out, id) => {
    expect(sge.parseSubmit(out)).toBe(id);
  });
  it('throws when qsub printed no id', () => {
    expect(() => sge.parseSubmit('Unable to run job: denied: host "x" is no submit host.\n')).toThrow(/job id/);
  });
});

describe('sge ids', () => {
  it('array element i is task i+1 (GE task ids are 1-based)', () => {
    expect(sge.arrayElementId('7210', 0)).toBe('7210.1');
    expect(sge.arrayElementId('7210', 19)).toBe('7210.20');
    expect(sge.arrayTaskFile?.('s/o.out', 0)).toBe('s/o.out.1');
  });
});

describe('sge.parseStatus (doc-qstat-xml.txt)', () => {
  const out = fixture('sge/doc-qstat-xml.txt');
  it.each([
    ['7001', 'running'],
    ['7002', 'queued'],
    ['7003', 'held'],
    ['7004', 'failed/CANCELLED'],
    ['7005', 'failed'],
    ['7010.1', 'running'],
    ['7010.2', 'running'],
    ['7010.3', 'queued'],
    ['7010.5', 'queued'],
    ['7011.4', 'held'],
  ])('%s → %s', (id, expected) => {
    expect(brief(sge.parseStatus(out, [id]))).toEqual({ [id]: expected });
  });
  it('leaves out ids not listed', () => {
    expect(sge.parseStatus(out, ['7010.6', '7011.3', '7999']).size).toBe(0);
  });
  it('reads names and task lists', () => {
    const entries = parseQstatXml(out);
    expect(entries.find((e) => e.name === 'N_9starts_with_digit')?.ids).toEqual(['7011.2', '7011.4']);
  });
  it.each([
    ['qw', 'queued'], ['hqw', 'held'], ['hRwq', 'held'], ['r', 'running'], ['hr', 'running'],
    ['Rr', 'running'], ['t', 'running'], ['s', 'running'], ['S', 'running'], ['Eqw', 'failed'],
    ['dr', 'failed'], ['dt', 'failed'], ['?', 'other'],
  ])('state %s → %s', (state, status) => {
    expect(sgeState(state).status).toBe(status);
  });
});

describe('sge.parseRecord (doc-qacct.txt)', () => {
  const out = fixture('sge/doc-qacct.txt');
  it.each([
    ['7101', 'done:0'],
    ['7102', 'timeout/TIMEOUT:137'], // killed, wallclock 61 s >= h_rt 00:01:00
    ['7103', 'failed:137'], // SGE 6.2 record, no category: killed, reason unknown
    ['7104', 'timeout/TIMEOUT:137'], // failed 37: qmaster enforced limit, over h_rt
    ['7105', 'failed/OUT_OF_MEMORY:137'], // maxvmem at h_vmem=1G
    ['7106', 'failed:3'],
    ['7110.1', 'done:0'],
    ['7110.2', 'failed:0'], // failed 26: could not open its output file
  ])('%s → %s', (id, expected) => {
    expect(brief(sge.parseRecord(out, [id]))).toEqual({ [id]: expected });
  });
  it('keeps the failed text in raw', () => {
    expect(sge.parseRecord(out, ['7110.2']).get('7110.2')?.raw).toContain('26  : opening input/output file');
  });
  it('finds a finished job by name in qacct output', () => {
    expect(sge.parseFindByName(out, 'xpr_calc_DeF')).toBe('7102');
  });
});

describe('sge directives and commands', () => {
  const base = { schedName: 'xpr_a.b-1', node, stdoutFile: 's/o.out', stderrFile: 's/o.err' };
  it('plain job runs in the submit dir', () => {
    expect(sge.directives({ ...base, arraySize: 0 })).toEqual([
      '#$ -N xpr_a.b-1', '#$ -o s/o.out', '#$ -e s/o.err', '#$ -cwd', '#$ -S /bin/bash',
    ]);
  });
  it('array: -t 1-N and $TASK_ID in the file names', () => {
    expect(sge.directives({ ...base, arraySize: 3 })).toEqual([
      '#$ -N xpr_a.b-1', '#$ -o s/o.out.$TASK_ID', '#$ -e s/o.err.$TASK_ID', '#$ -cwd', '#$ -S /bin/bash',
      '#$ -t 1-3',
    ]);
  });
  it('names starting with a digit get N_', () => {
    expect(sge.directives({ ...base, schedName: '9starts_with_digit', arraySize: 0 })[0]).toBe('#$ -N N_9starts_with_digit');
    expect(sge.parseFindByName(fixture('sge/doc-qstat-xml.txt'), '9starts_with_digit')).toBe('7011');
  });
  it('commands', () => {
    expect(sge.statusCommand(['7001'])).toBe(`qstat -xml -u "$(id -un)"`);
    expect(sge.cancelCommand(['7010.2', '7001'])).toBe(`qdel '7010.2' '7001'`);
    expect(sge.formatTime(90061)).toBe('25:01:01');
  });
});

describe.each(['bash', 'sh'] as const)('sge command lines run by %s, against fake GE commands', (shell) => {
  let bin: FakeBin;
  beforeEach(() => { bin = new FakeBin(); });
  afterEach(() => bin.cleanup());

  it('recordCommand asks qacct once per job and survives unknown jobs', () => {
    bin.data('qacct.out', fixture('sge/doc-qacct.txt'))
      .add('qacct', `${logArgs('qacct')}
if [ "$2" = 7110 ]; then cat "$FAKEBIN/qacct.out"; else echo "error: job id $2 not found" >&2; exit 1; fi`);
    const r = bin.run(sge.recordCommand(['7110.1', '7110.2', '7999'])!, shell);
    expect(r.code).toBe(0);
    expect(bin.calls('qacct')).toEqual([['-j', '7110'], ['-j', '7999']]);
    expect(brief(sge.parseRecord(r.stdout, ['7110.1', '7999']))).toEqual({ '7110.1': 'done:0' });
  });

  it('findByNameCommand fails when qstat fails, not when qacct does', () => {
    bin.data('qstat.out', fixture('sge/doc-qstat-xml.txt'))
      .add('qstat', `cat "$FAKEBIN/qstat.out"`)
      .add('qacct', `echo 'error: job name xpr_calc_DeF not found' >&2; exit 1`);
    const ok = bin.run(sge.findByNameCommand('xpr_calc_DeF'), shell);
    expect(ok.code).toBe(0);
    expect(sge.parseFindByName(ok.stdout, 'xpr_calc_DeF')).toBe('7002');
    bin.add('qstat', `echo 'error: commlib error: got select error (Connection refused)' >&2; exit 1`);
    expect(bin.run(sge.findByNameCommand('xpr_calc_DeF'), shell).code).not.toBe(0);
  });

  it.runIf(shell === 'bash')('arrayIndexExpr turns the 1-based SGE_TASK_ID into a 0-based index', () => {
    const r = bin.run(`set -u; SGE_TASK_ID=1; a=(x y z); echo "\${a[${sge.arrayIndexExpr}]}"`, 'bash');
    expect(r.stdout.trim()).toBe('x');
  });
});

// Outputs captured from a real Grid Engine 8.1.9 (Debian gridengine; test/fixtures/sge/record.sh;
// commands in commands.tsv). Job ids change with every recording and are read from jobs.tsv.
const jobsFile = path.join(fixturesDir, 'sge', 'jobs.tsv');
const jobs = fs.existsSync(jobsFile)
  ? new Map(fs.readFileSync(jobsFile, 'utf8').split('\n').slice(1).filter(Boolean)
    .map((l) => l.split('\t') as [string, string]))
  : new Map<string, string>();

describe.skipIf(jobs.size === 0)('sge on outputs captured from a real Grid Engine 8.1.9', () => {
  const id = (role: string): string => jobs.get(role) ?? `no-${role}`;

  it('parseSubmit reads qsub -terse and plain qsub output, plain and array', () => {
    expect(sge.parseSubmit(fixture('sge/qsub-terse.txt'))).toBe(id('ok'));
    expect(sge.parseSubmit(fixture('sge/qsub-terse-array.txt'))).toBe(id('array'));
    expect(sge.parseSubmit(fixture('sge/qsub-plain.txt'))).toMatch(/^\d+$/);
    expect(sge.parseSubmit(fixture('sge/qsub-array.txt'))).toMatch(/^\d+$/);
    // A refused submission prints nothing on stdout (the reason is on stderr).
    expect(() => sge.parseSubmit(fixture('sge/qsub-error-bad-queue.txt'))).toThrow(/job id/);
  });

  it('qstat -xml: running array task and job, queued, held; finished tasks are not listed', () => {
    const out = fixture('sge/qstat-xml.txt');
    const ids = [`${id('array')}.3`, id('cancel'), id('fail'), id('held'), `${id('array')}.1`];
    expect(brief(sge.parseStatus(out, ids))).toEqual({
      [`${id('array')}.3`]: 'running', [id('cancel')]: 'running', [id('fail')]: 'queued', [id('held')]: 'held',
    });
    expect(sge.parseFindByName(out, 'xpr-fx-held')).toBe(id('held'));
    expect(sge.parseFindByName(out, '9digit')).toBe(id('digit'));
  });

  it('qstat -xml: a job whose output dir is missing sits in Eqw, reported failed', () => {
    expect(sge.parseStatus(fixture('sge/qstat-xml-eqw.txt'), [id('eqw')]).get(id('eqw'))).toEqual({ status: 'failed', raw: 'Eqw' });
  });

  it('qstat -xml with no jobs is an empty map', () => {
    expect(sge.parseStatus(fixture('sge/qstat-no-such-user.txt'), [id('ok')]).size).toBe(0);
  });

  it('qacct: success, exit 3, h_rt kill (failed 37), qdel (failed 100), h_vmem refusal', () => {
    const rec = (file: string, jobId: string): string | undefined => brief(sge.parseRecord(fixture(`sge/${file}`), [jobId]))[jobId];
    expect(rec('qacct-ok.txt', id('ok'))).toBe('done:0');
    expect(rec('qacct-fail.txt', id('fail'))).toBe('failed:3');
    expect(rec('qacct-timeout.txt', id('timeout'))).toBe('timeout/TIMEOUT:137');
    // qdel of a running job: killed, no limit asked for; qacct does not say who killed it.
    expect(rec('qacct-cancel.txt', id('cancel'))).toBe('failed:137');
    // The allocation was refused under h_vmem and the job exited on its own; maxvmem was never
    // sampled, so nothing shows it was the limit.
    expect(rec('qacct-mem.txt', id('mem'))).toBe('failed:12');
  });

  it('qacct of an array lists every task', () => {
    const ids = [1, 2, 3].map((t) => `${id('array')}.${t}`);
    expect(Object.values(brief(sge.parseRecord(fixture('sge/qacct-array.txt'), ids)))).toEqual(['done:0', 'done:0', 'done:0']);
    expect(sge.parseFindByName(fixture('sge/qacct-by-name.txt'), 'xpr-fx-fail')).toBe(id('fail'));
  });

  it('GE expands $TASK_ID in -o paths to the 1-based task id, as arrayTaskFile assumes', () => {
    const files = fixture('sge/array-output-files.txt').split('\n');
    expect([0, 1, 2].map((i) => sge.arrayTaskFile?.('o', i))).toEqual(['o.1', 'o.2', 'o.3']);
    for (const f of ['o.1', 'o.2', 'o.3']) expect(files).toContain(f);
  });
});
