// The local queue as a real scheduler: its command line run as child processes, tasks as real
// detached process groups.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { local } from '../src/schedulers/local.js';
import { parseDirectives } from '../src/localq/main.js';
import { removeProjectDir } from './helpers/localq.js';

const exec = promisify(execFile);
const MAIN = path.resolve('dist/src/localq/main.js');
let dir: string;
let env: NodeJS.ProcessEnv;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-localq-'));
  env = { ...process.env, XPR_LOCALQ_DIR: path.join(dir, 'q') };
});
afterEach(async () => { await removeProjectDir(dir, path.join(dir, 'q')); });

async function localq(...args: string[]): Promise<string> {
  return (await exec(process.execPath, [MAIN, ...args], { cwd: dir, env })).stdout;
}

function script(name: string, body: string, directives: string[] = []): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, ['#!/bin/bash', `#LOCALQ --job-name=${name}`, ...directives, body, ''].join('\n'));
  return file;
}

async function waitFor(ids: string[], done: (states: Map<string, string>) => boolean, ms = 30_000): Promise<Map<string, string>> {
  const end = Date.now() + ms;
  for (;;) {
    const states = new Map([...local.parseStatus(await localq('status', ...ids), ids)].map(([k, v]) => [k, v.raw ?? '']));
    if (done(states) || Date.now() > end) return states;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const allEnded = (s: Map<string, string>) => [...s.values()].every((v) => !['PENDING', 'RUNNING', 'HELD'].includes(v));

describe('localq', () => {
  it('reads #LOCALQ directives and rejects unknown ones', () => {
    expect(parseDirectives('#LOCALQ --cores=3\n#LOCALQ --time=60\n#LOCALQ --array=4\n')).toMatchObject({ cores: 3, timeLimit: 60, arraySize: 4 });
    expect(() => parseDirectives('#LOCALQ --gpus=1\n')).toThrow(/unknown directive #LOCALQ --gpus/);
  });

  it('runs a job array with each task seeing its index, and records exit codes', async () => {
    const id = local.parseSubmit(await localq('submit', script('arr', 'echo "task $XPR_LOCALQ_ARRAY_TASK_ID" > out.$XPR_LOCALQ_ARRAY_TASK_ID; exit $XPR_LOCALQ_ARRAY_TASK_ID', ['#LOCALQ --array=3'])));
    const ids = [0, 1, 2].map((i) => local.arrayElementId(id, i));
    const states = await waitFor(ids, allEnded);
    expect([...states.values()]).toEqual(['COMPLETED', 'FAILED', 'FAILED']);
    const parsed = local.parseStatus(await localq('status', ...ids), ids);
    expect(parsed.get(ids[2]!)).toMatchObject({ status: 'failed', exitCode: 2 });
    expect(fs.readFileSync(path.join(dir, 'out.1'), 'utf8')).toBe('task 1\n');
  });

  it('never runs more cores at once than it has', async () => {
    env.XPR_LOCALQ_CORES = '1';
    const log = path.join(dir, 'log');
    const body = `echo start >> ${log}; sleep 0.4; echo end >> ${log}`;
    const a = local.parseSubmit(await localq('submit', script('a', body)));
    const b = local.parseSubmit(await localq('submit', script('b', body)));
    await waitFor([a, b], allEnded);
    expect(fs.readFileSync(log, 'utf8')).toBe('start\nend\nstart\nend\n');
  });

  it('holds, releases, cancels and finds jobs by name', async () => {
    const id = local.parseSubmit(await localq('submit', '--hold', script('held-one', 'echo ran > ran.txt')));
    expect(local.parseStatus(await localq('status', id), [id]).get(id)?.status).toBe('held');
    expect(local.parseFindByName(await localq('find-name', 'held-one'), 'held-one')).toBe(id);
    await localq('release', id);
    await waitFor([id], allEnded);
    expect(fs.existsSync(path.join(dir, 'ran.txt'))).toBe(true);

    const long = local.parseSubmit(await localq('submit', script('long', 'sleep 30')));
    await waitFor([long], (s) => s.get(long) === 'RUNNING');
    await localq('cancel', long);
    const states = await waitFor([long], allEnded);
    expect(states.get(long)).toBe('CANCELLED');
    expect(local.parseStatus(await localq('status', long), [long]).get(long)).toMatchObject({ status: 'failed', reason: 'CANCELLED' });
  });

  it('kills a task past its time limit and says TIMEOUT', async () => {
    const id = local.parseSubmit(await localq('submit', script('slow', 'sleep 30', ['#LOCALQ --time=1'])));
    const states = await waitFor([id], allEnded);
    expect(states.get(id)).toBe('TIMEOUT');
  });

  it('keeps running jobs after the submitting process has exited', async () => {
    // The submit above ran in a child process that has long exited; its job still completes.
    const id = local.parseSubmit(await localq('submit', script('orphan', 'sleep 0.5; echo done > orphan.txt')));
    const states = await waitFor([id], allEnded);
    expect(states.get(id)).toBe('COMPLETED');
    expect(fs.readFileSync(path.join(dir, 'orphan.txt'), 'utf8')).toBe('done\n');
  });

  it('lets a test remove a project whose job is still writing into it', async () => {
    // What a driver that stopped early leaves behind: a job writing files into the project. A plain
    // recursive rm races it (ENOTEMPTY, or the dir made again); the queue must be stopped first.
    const busy = path.join(dir, 'busy');
    const id = local.parseSubmit(await localq('submit', script('writer', `while true; do mkdir -p "${busy}/d"; touch "${busy}/d/f$RANDOM"; done`)));
    const states = await waitFor([id], (s) => s.get(id) === 'RUNNING' && fs.existsSync(busy));
    expect(states.get(id)).toBe('RUNNING');
    await removeProjectDir(dir, path.join(dir, 'q'));
    await new Promise((r) => setTimeout(r, 300));
    expect(fs.existsSync(dir)).toBe(false);
  });
});
