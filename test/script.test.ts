// Job scripts, pinned as golden files; a change to what xpr submits shows up in review.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { fillHeaderLine, renderScript, type ScriptInput } from '../src/job/script.js';
import { getScheduler } from '../src/schedulers/registry.js';
import { goldenScript } from './helpers/golden.js';

const base = (scheduler: string, jobDirs: string[]): ScriptInput => ({
  scheduler: getScheduler(scheduler),
  schedName: 'xpr_fit_AbCdEfGhIj',
  node: { partitionKey: 'std', partition: 'standard', numNodes: 2, numCores: 80, numCoresPerNode: 40, maxTime: 90061 },
  jobDirs,
  stdoutFile: '_xpr_submit/xpr_fit_AbCdEfGhIj.out',
  stderrFile: '_xpr_submit/xpr_fit_AbCdEfGhIj.err',
  header: ['#SBATCH --account=proj{{1}}', '# nodes={num_nodes} cores={num_cores} per_node={num_cores_per_node} part={partition} time={max_time}'],
  noDefaultHeader: false,
  partitionHeader: ['# partition header for {queue}'],
  headerExtra: ['# extra for {id}'],
  commands: ['module load node/20'],
  preCmds: ['echo pre'],
  postCmds: ['echo post'],
  envVars: { OMP_NUM_THREADS: '1', WEIRD: "it's $HOME" },
  nodeCommand: 'node',
  shell: '/bin/bash',
  runnerHash: 'deadbeef',
});

function bashSyntaxOk(text: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-script-'));
  try {
    fs.writeFileSync(path.join(dir, 'job.sh'), text);
    execFileSync('bash', ['-n', path.join(dir, 'job.sh')]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('job scripts', () => {
  for (const sched of ['local', 'slurm', 'pbs', 'sge']) {
    it(`renders a plain ${sched} job`, async () => {
      const text = renderScript(base(sched, ["run_fit+x 'a' $HOME_abc_12345678"]));
      bashSyntaxOk(text);
      await expect(goldenScript(text)).toMatchFileSnapshot(`fixtures/golden/job-${sched}.sh`);
    });

    it(`renders a ${sched} job array that picks its own dir`, async () => {
      const text = renderScript(base(sched, ['run_a_1', "run_b 'q'_2", 'run_c$_3']));
      bashSyntaxOk(text);
      await expect(goldenScript(text)).toMatchFileSnapshot(`fixtures/golden/array-${sched}.sh`);
    });
  }

  it('matches the same golden file whatever the package version', async () => {
    vi.resetModules();
    vi.doMock('../src/util/paths.js', async (original) => ({ ...await original<object>(), XPR_VERSION: '99.1.2-rc.3' }));
    try {
      const bumped = await import('../src/job/script.js');
      const text = bumped.renderScript(base('slurm', ['run_a_1', "run_b 'q'_2", 'run_c$_3']));
      expect(text).toContain('# Job script written by xpr 99.1.2-rc.3;');
      await expect(goldenScript(text, '99.1.2-rc.3')).toMatchFileSnapshot('fixtures/golden/array-slurm.sh');
    } finally {
      vi.doUnmock('../src/util/paths.js');
      vi.resetModules();
    }
  });

  it('selects the right dir in each array task when run', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-array-'));
    const dirs = ['run_a 1', "run_b'2", 'run_$c3'];
    for (const d of dirs) fs.mkdirSync(path.join(dir, d));
    const text = renderScript({ ...base('local', dirs), header: [], partitionHeader: [], headerExtra: [], commands: [], preCmds: [], postCmds: [], nodeCommand: 'true' });
    fs.writeFileSync(path.join(dir, 'job.sh'), text);
    try {
      for (let i = 0; i < 3; i++) {
        execFileSync('bash', ['job.sh'], { cwd: dir, env: { ...process.env, XPR_LOCALQ_ARRAY_TASK_ID: String(i) } });
        expect(fs.readFileSync(path.join(dir, dirs[i]!, '_xpr_exit_code'), 'utf8').trim()).toBe('0');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names unknown placeholders and the known ones', () => {
    expect(() => fillHeaderLine('#X {nodes}', {}, 'system header')).toThrow(/system header: unknown placeholder \{nodes\}/);
    expect(fillHeaderLine('a {{b}} {c}', { c: 'C' }, 'x')).toBe('a {b} C');
  });

  it('refuses an environment variable name that is not one', () => {
    expect(() => renderScript({ ...base('local', ['run_x']), envVars: { 'A B': '1' } })).toThrow(/not a valid environment variable name/);
  });
});
