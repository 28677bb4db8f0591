// What the reliability tests share: the workflow fixture and the log its stages write, waits on
// states (a log line, a file, an exit) rather than on the clock, `xpr` as a child process, and the
// bookkeeping that stops every process a test started, whatever happened to the test.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Executor, type LaunchOptions } from '../../src/executor/executor.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { stopLeftovers } from './leftovers.js';

export const FIXTURE = path.join(PACKAGE_ROOT, 'test/fixtures/executor/reliability.mjs');
export const XPR_BIN = path.join(PACKAGE_ROOT, 'bin/xpr.js');
export const WORKFLOW = 'reliable';

/** The built package is what worker processes and `bin/xpr.js` run. */
export function requireBuild(): void {
  if (!fs.existsSync(path.join(PACKAGE_ROOT, 'dist/src/executor/worker-main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before the executor tests');
  }
}

/** A temp dir with a space in its name, as users' paths have. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `xpr rel ${prefix} `));
}

/** Polls a state (a file, a log line, a process) until it holds; fails naming what was awaited. */
export async function until<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------- the stages' log

export interface Run {
  /** e.g. `hold a start`, `check a 2 done`. */
  what: string;
  pid: number;
}

/** The runs.log the fixture's stages append to, in `dir`. */
export class Runs {
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  all(): Run[] {
    const file = path.join(this.dir, 'runs.log');
    if (!fs.existsSync(file)) return [];
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => {
      const at = line.lastIndexOf(' ');
      return { what: line.slice(0, at), pid: Number(line.slice(at + 1)) };
    });
  }

  of(what: string): Run[] {
    return this.all().filter((r) => r.what === what);
  }

  count(what: string): number {
    return this.of(what).length;
  }

  /** Resolves with the n-th line `what` once it is there. */
  async waitFor(what: string, n = 1, timeoutMs = 60_000): Promise<Run> {
    return until(() => this.of(what)[n - 1], `"${what}" #${n} in ${path.join(this.dir, 'runs.log')}`, timeoutMs);
  }

  open(name: string): void {
    fs.writeFileSync(path.join(this.dir, name), '');
  }

  exists(name: string): boolean {
    return fs.existsSync(path.join(this.dir, name));
  }

  /** The input of one submission of the fixture's workflow. */
  input(key: string, extra: { n?: number; checkGate?: boolean } = {}): { dir: string; key: string; n?: number; checkGate?: boolean } {
    return { dir: this.dir, key, ...extra };
  }
}

// ---------------------------------------------------------------- processes the tests start

/** Every executor and child process a test file started, so afterEach/afterAll can stop them all. */
export class Processes {
  private readonly executors: Executor[] = [];
  private readonly children: { child: ChildProcess; detached: boolean }[] = [];
  private readonly directories: string[] = [];

  /** Executor.launch with the fixture, logging into `lines`. */
  async launch(directory: string, options: Partial<LaunchOptions> & { lines?: string[] } = {}): Promise<Executor> {
    const { lines, ...rest } = options;
    this.directories.push(directory);
    const ex = await Executor.launch({
      directory, workflowModule: FIXTURE, port: 0, graceMs: 1_000, env: {}, cwd: path.dirname(directory),
      log: (line) => { lines?.push(line); },
      ...rest,
    });
    this.executors.push(ex);
    return ex;
  }

  /** `node bin/xpr.js …`; a detached child leads its own process group. */
  xpr(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; detached?: boolean } = {}): XprChild {
    const child = spawn(process.execPath, [XPR_BIN, ...args], {
      cwd: options.cwd ?? os.tmpdir(),
      env: options.env ?? { PATH: process.env['PATH'] ?? '', HOME: os.tmpdir(), NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.detached ?? false,
    });
    this.children.push({ child, detached: options.detached ?? false });
    return new XprChild(child);
  }

  /** A directory whose executor state (workers, Redis) is cleaned up at the end too. */
  track(directory: string): void {
    this.directories.push(directory);
  }

  async stopAll(): Promise<void> {
    for (const ex of this.executors.splice(0)) await ex.close().catch(() => undefined);
    for (const { child, detached } of this.children.splice(0)) {
      if (child.pid === undefined) continue;
      const running = child.exitCode === null && child.signalCode === null;
      const exited = running ? new Promise((r) => child.once('exit', r)) : Promise.resolve();
      try {
        // A detached child leads its own group, which may outlive it: the whole group goes.
        process.kill(detached ? -child.pid : child.pid, 'SIGKILL');
      } catch { /* gone already */ }
      await exited;
    }
    for (const dir of this.directories.splice(0)) await stopLeftovers(dir);
  }
}

/** A running `xpr` with its output collected. */
export class XprChild {
  stdout = '';
  stderr = '';
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (b: Buffer) => { this.stdout += b.toString(); });
    child.stderr?.on('data', (b: Buffer) => { this.stderr += b.toString(); });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves once stdout or stderr matches; rejects if the process exits first. */
  async waitFor(re: RegExp, timeoutMs = 60_000): Promise<void> {
    let exited: number | string | undefined;
    void this.exited.then((c) => { exited = c; });
    await until(() => {
      if (re.test(this.stdout) || re.test(this.stderr)) return true;
      if (exited !== undefined) throw new Error(`xpr exited (${exited}) before printing ${re}:\n${this.stdout}\n${this.stderr}`);
      return false;
    }, `${re} from xpr ${this.child.spawnargs.slice(2).join(' ')}`, timeoutMs);
  }
}

/** A stack trace's frame lines ("    at f (file:1:2)"): what a user must never see for their own mistake. */
export const STACK_FRAME = /^\s+at .+[:(]/m;
