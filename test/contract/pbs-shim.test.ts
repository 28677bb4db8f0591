// The PBS Professional command shim (test/shims/pbs) the contract suite runs xpr's PBS code against:
// it must print what the PBS Pro Reference Guide documents (qsub ids, qstat -f/-x/-t attributes and
// error lines, qselect ids) and run jobs the way PBS does (in $HOME, with PBS_* variables).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseQstatFull } from '../../src/schedulers/pbs.js';
import { LOCALQ_MAIN, PBS_SHIM_DIR } from './backends.js';

const run = promisify(execFile);
let dir: string;
let env: NodeJS.ProcessEnv;

interface Out { stdout: string; stderr: string; code: number }

async function cmd(name: string, args: string[], cwd = dir): Promise<Out> {
  try {
    const r = await run(path.join(PBS_SHIM_DIR, name), args, { env, cwd });
    return { ...r, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

function script(name: string, lines: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/bash\n${lines.join('\n')}\n`);
  return file;
}

/** Full status of one id once its (parent) job_state is F. */
async function finished(id: string): Promise<ReturnType<typeof parseQstatFull>> {
  for (let i = 0; i < 150; i++) {
    const jobs = parseQstatFull((await cmd('qstat', ['-x', '-f', '-t', id])).stdout);
    if (jobs[0]?.attrs.get('job_state') === 'F') return jobs;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${id} did not finish`);
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-pbs-shim-'));
  env = { ...process.env, XPR_LOCALQ_DIR: path.join(dir, 'q'), PATH: `${PBS_SHIM_DIR}:${process.env.PATH ?? ''}` };
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!fs.existsSync(LOCALQ_MAIN))('PBS Pro shim', () => {
  it('qstat --version prints a PBS Pro version line', async () => {
    expect((await cmd('qstat', ['--version'])).stdout).toMatch(/^pbs_version = \d+\.\d+\.\d+\n$/);
  });

  it('runs a job in $HOME with PBS variables, reads #PBS directives and reports it as F with Exit_status', async () => {
    const file = script('plain.sh', [
      '#PBS -N plain_job', '#PBS -o plain.out', '#PBS -e plain.err', '#PBS -l walltime=00:10:00', '#PBS -S /bin/bash',
      'echo "$PBS_JOBID|$PBS_JOBNAME|$PBS_O_WORKDIR|$PWD|$PBS_ENVIRONMENT|${PBS_ARRAY_INDEX-unset}"', 'echo oops >&2', 'exit 3',
    ]);
    const sub = await cmd('qsub', [file]);
    expect(sub.stdout).toMatch(/^\d+\.pbsserver\n$/);
    const id = sub.stdout.trim();
    const [job] = await finished(id);
    const a = job!.attrs;
    expect(job!.id).toBe(id);
    expect(a.get('Job_Name')).toBe('plain_job');
    expect(a.get('Exit_status')).toBe('3');
    expect(a.get('substate')).toBe('93');
    expect(a.get('Resource_List.walltime')).toBe('00:10:00');
    expect(a.get('resources_used.walltime')).toMatch(/^\d\d:\d\d:\d\d$/);
    expect(a.get('Output_Path')).toBe(`${os.hostname().split('.')[0]}:${path.join(dir, 'plain.out')}`);
    expect(a.get('Variable_List')).toContain(`PBS_O_WORKDIR=${dir}`);
    expect(fs.readFileSync(path.join(dir, 'plain.out'), 'utf8')).toBe(`${id}|plain_job|${dir}|${os.homedir()}|PBS_BATCH|unset\n`);
    expect(fs.readFileSync(path.join(dir, 'plain.err'), 'utf8')).toBe('oops\n');
    // Without -x a finished job is history: an error line and a non-zero exit, as PBS Pro does.
    const noHistory = await cmd('qstat', ['-f', id]);
    expect(noHistory.stdout).toBe('');
    expect(noHistory.stderr).toBe(`qstat: ${id} Job has finished, use -x or -H to obtain historical job information\n`);
    expect(noHistory.code).toBe(35);
    expect(await cmd('qstat', ['-f', '99999.pbsserver'])).toMatchObject({ stderr: 'qstat: Unknown Job Id 99999.pbsserver\n', code: 153 });
  });

  it('runs a -J array: <n>[].server, ^array_index^ files, subjobs X with array_index', async () => {
    const file = script('arr.sh', [
      '#PBS -N arr_job', '#PBS -o arr.out.^array_index^', '#PBS -e arr.err.^array_index^', '#PBS -J 0-2',
      'echo "$PBS_ARRAY_INDEX $PBS_JOBID $PBS_ARRAY_ID"',
    ]);
    const sub = await cmd('qsub', [file]);
    expect(sub.stdout).toMatch(/^\d+\[\]\.pbsserver\n$/);
    const id = sub.stdout.trim();
    const n = id.split('[')[0]!;
    const jobs = await finished(id);
    expect(jobs.map((j) => j.id)).toEqual([id, `${n}[0].pbsserver`, `${n}[1].pbsserver`, `${n}[2].pbsserver`]);
    expect(jobs[0]!.attrs.get('array')).toBe('True');
    expect(jobs[0]!.attrs.get('array_indices_submitted')).toBe('0-2');
    expect(jobs.slice(1).map((j) => [j.attrs.get('job_state'), j.attrs.get('array_index'), j.attrs.get('Exit_status')]))
      .toEqual([['X', '0', '0'], ['X', '1', '0'], ['X', '2', '0']]);
    for (const i of [0, 1, 2]) {
      expect(fs.readFileSync(path.join(dir, `arr.out.${i}`), 'utf8')).toBe(`${i} ${n}[${i}].pbsserver ${n}[].pbsserver\n`);
    }
    expect((await cmd('qselect', ['-x', '-u', os.userInfo().username, '-N', 'arr_job'])).stdout).toBe(`${id}\n`);
    expect((await cmd('qselect', ['-u', os.userInfo().username, '-N', 'arr_job'])).stdout).toBe('');
  });

  it('refuses a one-subjob array and a name that does not start with a letter', async () => {
    expect(await cmd('qsub', ['-J', '0-0', script('one.sh', ['true'])])).toMatchObject({ code: 2, stderr: 'qsub: illegal -J value\n' });
    expect(await cmd('qsub', ['-N', '9lives', script('nine.sh', ['true'])])).toMatchObject({ code: 2, stderr: 'qsub: illegal -N value\n' });
  });

  it('kills a job at its walltime with Exit_status -29', async () => {
    const id = (await cmd('qsub', ['-l', 'walltime=00:00:01', script('slow.sh', ['sleep 30'])])).stdout.trim();
    const [job] = await finished(id);
    expect(job!.attrs.get('Exit_status')).toBe('-29');
    expect(job!.attrs.get('substate')).toBe('93');
  });

  it('qhold/qrls hold and release a queued job (H, then it runs); qdel leaves substate 91', async () => {
    const id = (await cmd('qsub', ['-h', script('held.sh', ['sleep 30'])])).stdout.trim();
    const state = async () => parseQstatFull((await cmd('qstat', ['-f', id])).stdout)[0]?.attrs;
    expect((await state())?.get('job_state')).toBe('H');
    expect((await state())?.get('Hold_Types')).toBe('u');
    expect((await cmd('qrls', [id])).code).toBe(0);
    let s = await state();
    for (let i = 0; i < 100 && s?.get('job_state') !== 'R'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      s = await state();
    }
    expect(s?.get('job_state')).toBe('R');
    expect((await cmd('qdel', [id])).code).toBe(0);
    const [job] = await finished(id);
    expect(job!.attrs.get('substate')).toBe('91');
    expect(job!.attrs.get('comment')).toMatch(/ and terminated$/);
    expect((await cmd('qdel', [id])).code).toBe(35);
  });
});
