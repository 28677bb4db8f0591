// What every cluster scheduler module must do the same way: keep hostile file names and ids one
// literal shell word, render the same kind of header (pinned as golden files), and give ids that
// its own status parser produces.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderScript } from '../../src/job/script.js';
import { local } from '../../src/schedulers/local.js';
import { pbs, torque } from '../../src/schedulers/pbs.js';
import { sge } from '../../src/schedulers/sge.js';
import { slurm } from '../../src/schedulers/slurm.js';
import type { Scheduler, ScriptContext } from '../../src/schedulers/types.js';
import { FakeBin, fillHeader, logArgs, node, templatesDir } from './helpers.js';

const SCHEDULERS: [string, Scheduler, string][] = [
  ['slurm', slurm, 'sbatch'], ['pbs', pbs, 'qsub'], ['torque', torque, 'qsub'], ['sge', sge, 'qsub'],
];

const HOSTILE = [
  "job's file.sh",
  'a b $HOME $(touch pwned) `touch pwned2`.sh',
  'semi;colon & amp | pipe > out.sh',
  '"double" \\back\\slash\\ *.sh',
  'new\nline\t tab.sh',
  '-starts-with-dash.sh',
];

describe.each(SCHEDULERS)('%s: shell words stay literal', (_label, sched, submitBin) => {
  let bin: FakeBin;
  beforeEach(() => { bin = new FakeBin(); });
  afterEach(() => bin.cleanup());

  it.each(HOSTILE)('submitCommand(%j) passes the file name as one argument (bash and sh)', (file) => {
    bin.add(submitBin, logArgs(submitBin));
    expect(bin.run(sched.submitCommand(file), 'bash').code).toBe(0);
    expect(bin.run(sched.submitCommand(file), 'sh').code).toBe(0);
    const calls = bin.calls(submitBin);
    expect(calls.map((args) => args.at(-1))).toEqual([file, file]);
    expect(fs.existsSync(path.join(bin.dir, 'pwned'))).toBe(false);
    expect(fs.existsSync(path.join(bin.dir, 'pwned2'))).toBe(false);
  });

  it('cancel passes each id as one argument', () => {
    const ids = ['1; touch pwned', '$(touch pwned)'];
    for (const name of ['scancel', 'qdel']) bin.add(name, logArgs(name));
    expect(bin.run(sched.cancelCommand(ids)).code).toBe(0);
    expect(fs.existsSync(path.join(bin.dir, 'pwned'))).toBe(false);
  });
});

describe.each(SCHEDULERS)('%s: contract', (label, sched) => {
  it('has a directive prefix that its own directives use', () => {
    const ctx: ScriptContext = { schedName: 'xpr_n', node, arraySize: 3, stdoutFile: 'o', stderrFile: 'e' };
    for (const line of sched.directives(ctx)) expect(line.startsWith(`${sched.directivePrefix} `)).toBe(true);
  });

  it('refuses names and file names a directive cannot carry', () => {
    const ok: ScriptContext = { schedName: 'xpr_n', node, arraySize: 0, stdoutFile: 'o', stderrFile: 'e' };
    expect(() => sched.directives({ ...ok, schedName: 'a b' })).toThrow();
    expect(() => sched.directives({ ...ok, stdoutFile: 'o$x' })).toThrow();
    expect(() => sched.directives({ ...ok, stderrFile: 'host:e' })).toThrow();
  });

  it('array element ids round-trip through parseSubmit output', () => {
    const submitted = { slurm: '4711', pbs: '4711[].srv', torque: '4711[].srv', sge: '4711.1-3:1' }[label] ?? '';
    const parent = sched.parseSubmit(`${submitted}\n`);
    const ids = [0, 1, 2].map((i) => sched.arrayElementId(parent, i));
    expect(new Set(ids).size).toBe(3);
    expect(ids.every((id) => id.startsWith('4711'))).toBe(true);
  });
});

// Golden files: directives + default header with ExPyRe placeholders filled as the renderer does.
const values = {
  num_nodes: String(node.numNodes), num_cores: String(node.numCores), num_cores_per_node: String(node.numCoresPerNode),
  partition: node.partition, queue: node.partition, id: 'xpr_calc_AbC', max_mem: '',
};

describe.each([['slurm', slurm], ['pbs', pbs], ['torque', torque], ['sge', sge]] as const)('%s golden header', (label, sched) => {
  const template = fs.readFileSync(path.join(templatesDir, 'headers', `${label}.txt`), 'utf8');

  it('default header file holds only directive lines with known placeholders', () => {
    const lines = template.split('\n').filter((l) => l !== '');
    expect(template.endsWith('\n')).toBe(true);
    for (const line of lines) {
      expect(line.startsWith(`${sched.directivePrefix} `)).toBe(true);
      for (const [, key] of line.matchAll(/\{(\w+)\}/g)) expect(Object.keys(values).concat('max_time')).toContain(key);
    }
  });

  it.each([0, 4])('arraySize %i', async (arraySize) => {
    const ctx: ScriptContext = {
      schedName: 'xpr_calc_AbC', node, arraySize,
      stdoutFile: '_xpr_submit/xpr_calc_AbC.out', stderrFile: '_xpr_submit/xpr_calc_AbC.err',
    };
    const header = [
      ...sched.directives(ctx),
      ...fillHeader(template.split('\n').filter((l) => l !== ''), { ...values, max_time: sched.formatTime(node.maxTime) }),
    ];
    await expect(`${header.join('\n')}\n`).toMatchFileSnapshot(`../fixtures/golden/${label}-${arraySize ? 'array' : 'plain'}.txt`);
  });
});

// {max_mem} in each scheduler's own memory request, through the job script renderer, for 1.5 GB
// (and 1 GB + 1 kB, which has no larger exact unit): `--mem` wants K/M/G/T (a bare number is MB),
// PBS and Torque `mem=` kb/mb/gb, Grid Engine `h_vmem` K/M/G (it calls `...kb` "not a memory
// value"). The local queue takes no memory request; a header line shows config.json's form.
// test/contract/contract.test.ts submits these lines to the real SLURM, Torque wrappers and SGE.
const MEMORY_LINE: [string, Scheduler, string][] = [
  ['slurm', slurm, '#SBATCH --mem={max_mem}'],
  ['pbs', pbs, '#PBS -l mem={max_mem}'],
  ['torque', torque, '#PBS -l mem={max_mem}'],
  ['sge', sge, '#$ -l h_vmem={max_mem},mem_free={max_mem}'],
  ['local', local, '# memory per node: {max_mem}'],
];

describe.each(MEMORY_LINE)('%s golden memory directive', (label, sched, line) => {
  /** The header part of a rendered script: between the #! line and xpr's own first comment. */
  const header = (maxMemPerNode: number): string[] => {
    const text = renderScript({
      scheduler: sched, schedName: 'xpr_calc_AbC',
      node: { partitionKey: 'p', partition: 'p', numNodes: 1, numCores: 1, numCoresPerNode: 1, maxTime: 60, maxMemPerNode },
      jobDirs: ['run_x'], stdoutFile: '_xpr_submit/xpr_calc_AbC.out', stderrFile: '_xpr_submit/xpr_calc_AbC.err',
      header: [line], noDefaultHeader: false, partitionHeader: [], headerExtra: [], commands: [], preCmds: [],
      postCmds: [], envVars: {}, nodeCommand: 'node', shell: '/bin/bash', runnerHash: 'deadbeef',
    });
    const lines = text.split('\n');
    return lines.slice(1, lines.findIndex((l) => l.startsWith('# Job script written by xpr')));
  };

  it('renders {max_mem} in the form the directive takes', async () => {
    const rendered = [...header(1536 * 1024), ...header(1024 * 1024 + 1).slice(-1)];
    await expect(`${rendered.join('\n')}\n`).toMatchFileSnapshot(`../fixtures/golden/${label}-mem.txt`);
  });
});
