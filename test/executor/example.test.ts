// examples/executor/ as its README runs it: `xpr executor run` on the word-ranking workflow, as a
// real process from the repository root. It launches an executor in a temp dir (its own
// redis-server and worker processes), runs the three stages, writes the ranking and stops
// everything it started. The expected ranking is what the example's own stage functions give when
// called one after the other in this process.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { skipWithoutRedis } from './redis.js';

const EXAMPLE = path.join(PACKAGE_ROOT, 'examples/executor');

interface Example {
  split: (input: unknown) => string[];
  score: (word: string) => { word: string; luck: number };
  rank: (scores: { word: string; luck: number }[], ctx: { input: unknown }) => unknown;
}

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe.skipIf(skipWithoutRedis('the executor example test'))('examples/executor', () => {
  let root: string;
  let tmp: string;

  beforeAll(() => {
    // Spaces in the paths, as a user's may have; TMPDIR is private so that what `run` leaves can be seen.
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr exec example '));
    tmp = path.join(root, 'tmp dir');
    fs.mkdirSync(tmp);
  });
  afterAll(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  function xpr(args: string[]): Promise<Exit> {
    const child = spawn(process.execPath, [path.join(PACKAGE_ROOT, 'bin/xpr.js'), ...args], {
      cwd: PACKAGE_ROOT,
      env: { PATH: process.env['PATH'] ?? '', HOME: root, TMPDIR: tmp, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** Processes whose command line names the private temp dir: a redis-server or worker left behind. */
  function processesUnder(dir: string): string[] {
    const found: string[] = [];
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let cmd: string;
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      } catch {
        continue;
      }
      if (cmd.includes(dir)) found.push(`${pid}: ${cmd}`);
    }
    return found;
  }

  it('ranks the words of input.json: 60 words, each distinct word scored once, everything stopped after', async () => {
    const output = path.join(root, 'ranking out.json');
    const r = await xpr(['executor', 'run', '--workflow', 'examples/executor/workflow.js',
      '--input', 'examples/executor/input.json', '--output', output, '--workers', 'score=2']);
    expect(r.stderr + r.stdout).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Wrote the result of wordrank to ${output}`);

    const input = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'input.json'), 'utf8')) as unknown;
    const m = await import(pathToFileURL(path.join(EXAMPLE, 'workflow.js')).href) as Example;
    const expected = m.rank(m.split(input).map((w) => m.score(w)), { input });
    const result = JSON.parse(fs.readFileSync(output, 'utf8')) as { words: number; distinct: number; ranking: unknown[] };
    expect(result).toEqual(expected);
    // Pinned, so that a change in the example (or in what the executor hands each stage) shows here.
    expect(result.words).toBe(60);
    expect(result.distinct).toBe(20);
    expect(result.ranking).toHaveLength(5);
    expect(result.ranking[0]).toEqual({ word: 'darkness', count: 1, luck: 222 });
    // 60 words, 20 of them distinct: identical elements of an `each` stage are one task.
    expect(r.stderr).toMatch(/success {2}split 1\/1 · score 20\/20 · rank 1\/1/);

    // `run` stops its redis-server and workers and removes its temp dir.
    expect(processesUnder(tmp)).toEqual([]);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('xpr-executor-run-'))).toEqual([]);
  }, 180_000);

  it('writes nothing when a stage fails, and says which stage and why', async () => {
    const bad = path.join(root, 'bad input.json');
    fs.writeFileSync(bad, JSON.stringify({ txt: 'no text key' }));
    const output = path.join(root, 'never.json');
    const r = await xpr(['executor', 'run', '--workflow', 'examples/executor/workflow.js', '--input', bad, '--output', output]);
    expect(r.code).toBe(1);
    expect(fs.existsSync(output)).toBe(false);
    expect(r.stdout + r.stderr).toContain('errored in stage split: TypeError: the input must be { "text": "..." }');
    expect(processesUnder(tmp)).toEqual([]);
  }, 180_000);
});
