// Driver processes for the selftest cases that need a script of their own: one that submits a job
// and is then killed (the rerun must re-attach), and an autoparallelize call, which finds its
// project the way a user's script does (the working dir and its environment).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { distFile, templateFile } from '../util/paths.js';

const SCRIPT = (index: string, ops: string) => `
import { ConfigSet, Job, Project } from ${JSON.stringify(index)};
import * as ops from ${JSON.stringify(ops)};
const [mode, json] = process.argv.slice(2);
const a = JSON.parse(json);
if (mode === 'submit') {
  const project = Project.open();
  const job = await Job.create({ name: a.name, fn: ops.slowIncrement, args: a.args, project, ...a.job });
  await job.start(a.start);
  console.log('SUBMITTED ' + JSON.stringify({ id: job.id, remoteId: job.info.remoteId }));
  // Stay until killed: the point is to die while the job runs.
  setInterval(() => undefined, 60000);
} else if (mode === 'autopara') {
  const out = await ops.double(new ConfigSet(a.items), null, a.kwargs);
  console.log('RESULT ' + JSON.stringify(await out.toArray()));
  process.exit(0);
}
`;

/** Write the driver script into the project dir (once) and return its path. */
export function driverScript(dir: string): string {
  const file = path.join(dir, 'selftest-driver.mjs');
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, SCRIPT(pathToFileURL(distFile('index.js')).href, pathToFileURL(templateFile('selftest/ops.mjs')).href));
  }
  return file;
}

export interface DriverRun {
  child: ChildProcess;
  /** Resolves with the JSON after `marker` on the driver's stdout; rejects if it exits first. */
  said(marker: string, timeoutMs: number): Promise<unknown>;
}

export function startDriver(dir: string, env: NodeJS.ProcessEnv, mode: string, args: unknown): DriverRun {
  const child = spawn(process.execPath, [driverScript(dir), mode, JSON.stringify(args)], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  return {
    child,
    said: (marker, timeoutMs) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`the driver said nothing in ${timeoutMs / 1000} s; its stderr: ${tail(err)}`)); }, timeoutMs);
      const look = () => {
        const line = out.split('\n').find((l) => l.startsWith(`${marker} `));
        if (line) { clearTimeout(timer); resolve(JSON.parse(line.slice(marker.length + 1))); }
      };
      child.stdout!.on('data', look);
      child.on('exit', (code) => {
        look();
        clearTimeout(timer);
        reject(new Error(`the driver exited (${code ?? 'killed'}) before saying ${marker}; its stderr: ${tail(err)}`));
      });
    }),
  };
}

function tail(text: string, lines = 8): string {
  const t = text.trim().split('\n').slice(-lines).join('\n');
  return t === '' ? '(empty)' : t;
}
