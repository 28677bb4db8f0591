// The executor's local worker processes: N per stage, each `node worker-main.js` with its settings in
// XPR_WORKER_SETTINGS (not argv: the Redis URL holds the password). A worker that dies is started
// again; one that keeps dying at once is given up on with its log named, rather than restarted in a
// loop. Closing sends SIGTERM (the worker finishes or hands back its task within the grace period)
// and SIGKILL to one still there after it.
//
// Workers run in their own process group: Ctrl-C in the terminal must reach the executor only, which
// then drains them in order; otherwise they would stop before the executor could hand back tasks.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { WORKER_SETTINGS_VARIABLE } from './local-worker.js';
import type { LocalWorkerSettings } from './types.js';

export interface PoolSlot {
  stage: string;
  /** 1-based number within its stage. */
  index: number;
  settings: LocalWorkerSettings;
}

export interface WorkerPoolOptions {
  /** The worker program (dist/src/executor/worker-main.js). */
  program: string;
  /** Directory of the worker logs, `<stage>-<index>.log`. */
  logDir: string;
  /** Extra time after the workers' own grace before SIGKILL. */
  killAfterMs?: number;
  log: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** Called after a worker is started (again): the set of pids changed. */
  onSpawn?: () => void;
}

/** A worker that exits sooner than this after its start counts as failing to start. */
const QUICK_EXIT_MS = 5_000;
/** Quick exits in a row after which a slot is given up on. */
const MAX_QUICK_EXITS = 5;

interface Running {
  slot: PoolSlot;
  child: ChildProcess | undefined;
  startedAt: number;
  quickExits: number;
  restartTimer?: NodeJS.Timeout;
}

export class WorkerPool {
  private readonly running: Running[] = [];
  private closing = false;

  constructor(private readonly options: WorkerPoolOptions) {
    fs.mkdirSync(options.logDir, { recursive: true, mode: 0o700 });
  }

  start(slots: readonly PoolSlot[]): void {
    for (const slot of slots) {
      const r: Running = { slot, child: undefined, startedAt: 0, quickExits: 0 };
      this.running.push(r);
      this.spawn(r);
    }
  }

  /** Process ids of the live workers. */
  pids(): number[] {
    return this.running.flatMap((r) => (r.child?.pid !== undefined && r.child.exitCode === null && r.child.signalCode === null ? [r.child.pid] : []));
  }

  /** Live workers per stage. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.running) {
      if (r.child && r.child.exitCode === null && r.child.signalCode === null) out[r.slot.stage] = (out[r.slot.stage] ?? 0) + 1;
    }
    return out;
  }

  private logFile(slot: PoolSlot): string {
    return path.join(this.options.logDir, `${slot.stage}-${slot.index}.log`);
  }

  private spawn(r: Running): void {
    const { slot } = r;
    const logFd = fs.openSync(this.logFile(slot), 'a', 0o600);
    const child = spawn(process.execPath, [this.options.program], {
      env: { ...(this.options.env ?? process.env), [WORKER_SETTINGS_VARIABLE]: JSON.stringify(slot.settings) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    r.child = child;
    r.startedAt = Date.now();
    this.options.onSpawn?.();
    const name = `${slot.stage}#${slot.index}`;
    const relay = (chunk: Buffer): void => {
      fs.writeSync(logFd, chunk);
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') this.options.log(`[${name}] ${line}`);
    };
    child.stdout?.on('data', relay);
    child.stderr?.on('data', relay);
    child.once('error', (err) => this.options.log(`[${name}] could not start: ${err.message}`));
    child.once('close', (code, signal) => {
      fs.closeSync(logFd);
      if (this.closing) return;
      const quick = Date.now() - r.startedAt < QUICK_EXIT_MS;
      r.quickExits = quick ? r.quickExits + 1 : 0;
      if (r.quickExits >= MAX_QUICK_EXITS) {
        this.options.log(`[${name}] exited ${MAX_QUICK_EXITS} times right after starting (last: ${signal ?? `code ${String(code)}`}); ` +
          `not restarted. See ${this.logFile(slot)}.`);
        r.child = undefined;
        return;
      }
      this.options.log(`[${name}] exited (${signal ?? `code ${String(code)}`}); starting it again`);
      // Back off only when it keeps dying at once; a worker killed mid-run comes back right away.
      const delay = quick ? Math.min(250 * 2 ** r.quickExits, 5_000) : 0;
      r.restartTimer = setTimeout(() => { if (!this.closing) this.spawn(r); }, delay);
    });
  }

  /** SIGTERM every worker, and SIGKILL those still running after `graceMs` (+ a margin). */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const waits: Promise<void>[] = [];
    for (const r of this.running) {
      if (r.restartTimer) clearTimeout(r.restartTimer);
      const child = r.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      waits.push(new Promise<void>((resolve) => {
        const killer = setTimeout(() => child.kill('SIGKILL'), graceMs + (this.options.killAfterMs ?? 5_000));
        child.once('exit', () => { clearTimeout(killer); resolve(); });
      }));
      child.kill('SIGTERM');
    }
    await Promise.all(waits);
  }
}
