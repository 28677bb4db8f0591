// The local transport: commands are child processes on this machine, "remote" dirs are local dirs.
// When a job's stage dir is its run dir (the built-in local system) moving files is a no-op.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expandFileGlob, hasGlobMagic } from '../util/file-glob.js';
import { CommandTimeoutError } from './timeouts.js';
import type { ExecOptions, ExecResult, Transport } from './types.js';

export class LocalTransport implements Transport {
  readonly host = 'localhost';

  /** `env`: the environment commands run with (default: this process's). */
  constructor(private readonly options: { env?: NodeJS.ProcessEnv } = {}) {}

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/bash', ['-c', command], {
        cwd: path.resolve(os.homedir(), options.cwd ?? '.'),
        stdio: ['pipe', 'pipe', 'pipe'],
        env: this.options.env ?? process.env,
      });
      // Settles at once, not at 'close': a child the command left behind may hold its output open.
      const timer = options.timeoutMs ? setTimeout(() => {
        child.kill('SIGKILL');
        reject(new CommandTimeoutError(this.host, command, options.timeoutMs!, false));
      }, options.timeoutMs) : undefined;
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code });
      });
      child.stdin.on('error', () => { /* the command may not read its stdin */ });
      child.stdin.end(options.input ?? '');
    });
  }

  async upload(localDir: string, names: readonly string[], remoteDir: string): Promise<void> {
    copyNames(localDir, names, this.resolve(remoteDir));
  }

  async download(remoteDir: string, names: readonly string[], localDir: string): Promise<void> {
    const from = this.resolve(remoteDir);
    copyNames(from, expandGlobs(from, names), localDir);
  }

  async close(): Promise<void> { /* nothing held */ }

  private resolve(dir: string): string {
    return path.resolve(os.homedir(), dir);
  }
}

function copyNames(fromDir: string, names: readonly string[], toDir: string): void {
  if (path.resolve(fromDir) === path.resolve(toDir)) return;
  fs.mkdirSync(toDir, { recursive: true });
  for (const name of names) {
    const src = path.join(fromDir, name);
    if (!fs.existsSync(src)) continue;
    fs.mkdirSync(path.dirname(path.join(toDir, name)), { recursive: true });
    fs.cpSync(src, path.join(toDir, name), { recursive: true, force: true });
  }
}

/** Expand the globs among `names` as a remote shell would (but `*` also matches names starting with `.`). */
function expandGlobs(dir: string, names: readonly string[]): string[] {
  return names.flatMap((name) => (hasGlobMagic(name) ? expandFileGlob(name, { cwd: dir, dot: true, dirs: true }) : [name]));
}
