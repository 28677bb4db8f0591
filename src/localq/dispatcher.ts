// The local queue's dispatcher: one detached process per queue dir that starts pending tasks while
// cores are free, kills tasks past their time limit or cancelled, and records how each one ended.
// It exits when the queue has been idle for a while; the next submit starts a new one.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  isAlive, listTasks, queueCapacity, readExit, readPid, readTask, signalGroup, taskFile, writeAtomic,
  type TaskExit, type TaskSpec,
} from './queue.js';

const TICK_MS = 100;
const IDLE_EXIT_MS = 3000;
/** Time between SIGTERM and SIGKILL for a task being cancelled or timed out. */
const KILL_GRACE_MS = 2000;

interface Running {
  spec: TaskSpec;
  pid: number;
  started: number;
  /** Set once we sent SIGTERM: when, to escalate to SIGKILL later. */
  termSentAt?: number;
  child?: ChildProcess;
}

const lockFile = (qdir: string) => path.join(qdir, 'dispatcher.lock');

/** Take the dispatcher lock; false when a live dispatcher already holds it. */
function acquireLock(qdir: string): boolean {
  const lock = lockFile(qdir);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(fs.readFileSync(lock, 'utf8'), 10);
      if (Number.isInteger(holder) && isAlive(holder)) return false;
      // A dispatcher died holding the lock. Even if two of us remove it at once, tasks are claimed
      // with O_EXCL below, so no task ever starts twice.
      fs.rmSync(lock, { force: true });
    }
  }
  return false;
}

function releaseLock(qdir: string): void {
  try {
    if (fs.readFileSync(lockFile(qdir), 'utf8') === String(process.pid)) fs.rmSync(lockFile(qdir));
  } catch { /* gone already */ }
}

export class Dispatcher {
  private readonly running = new Map<string, Running>();
  /** Tasks known to have ended; never looked at again. */
  private readonly ended = new Set<string>();
  private readonly capacity: number;

  constructor(private readonly qdir: string, capacity = queueCapacity()) {
    this.capacity = capacity;
  }

  /** Run until idle. Returns at once if another dispatcher holds the queue. */
  async run(): Promise<void> {
    if (!acquireLock(this.qdir)) return;
    let idleSince = Date.now();
    for (;;) {
      const pending = this.tick();
      if (pending > 0 || this.running.size > 0) idleSince = Date.now();
      else if (Date.now() - idleSince > IDLE_EXIT_MS) {
        releaseLock(this.qdir);
        // A submit may have landed while we were deciding to go; it saw our lock and did not start
        // a dispatcher of its own, so look once more before leaving.
        if (this.tick() === 0 || !acquireLock(this.qdir)) return;
        idleSince = Date.now();
      }
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
  }

  /** One pass over the queue; returns how many tasks are still waiting to start. */
  tick(): number {
    let used = [...this.running.values()].reduce((n, r) => n + r.spec.cores, 0);
    let pending = 0;
    for (const task of listTasks(this.qdir)) {
      if (this.ended.has(task) || this.running.has(task)) continue;
      if (readExit(this.qdir, task)) { this.ended.add(task); continue; }
      const spec = readTask(this.qdir, task);
      if (!spec) continue;
      const pid = readPid(this.qdir, task);
      if (pid) { this.adopt(spec, pid); used += spec.cores; continue; }
      if (this.has(task, 'cancel')) { this.finish(task, { code: null, signal: null, reason: 'CANCELLED', ended: now() }); continue; }
      if (this.has(task, 'hold') || this.has(task, 'claim')) { pending++; continue; }
      // A task bigger than the machine still runs, alone, rather than waiting forever.
      if (used > 0 && used + spec.cores > this.capacity) { pending++; continue; }
      if (this.start(spec)) used += spec.cores;
    }
    for (const r of this.running.values()) this.police(r);
    return pending;
  }

  private has(task: string, ext: string): boolean {
    return fs.existsSync(taskFile(this.qdir, task, ext));
  }

  private start(spec: TaskSpec): boolean {
    try {
      fs.writeFileSync(taskFile(this.qdir, spec.task, 'claim'), String(process.pid), { flag: 'wx' });
    } catch {
      return false; // another dispatcher took it
    }
    const rcFile = taskFile(this.qdir, spec.task, 'rc');
    let out: number | undefined;
    let err: number | undefined;
    try {
      fs.mkdirSync(path.dirname(spec.stdout), { recursive: true });
      fs.mkdirSync(path.dirname(spec.stderr), { recursive: true });
      out = fs.openSync(spec.stdout, 'a');
      err = spec.stderr === spec.stdout ? out : fs.openSync(spec.stderr, 'a');
      // The wrapper records the script's exit code itself, so it survives this dispatcher.
      const child = spawn('/bin/sh', ['-c', '"$0" "$1"; rc=$?; printf %s "$rc" > "$2"', spec.shell, spec.script, rcFile], {
        cwd: spec.cwd,
        detached: true, // own process group: cancel and timeout kill the whole task
        stdio: ['ignore', out, err],
        env: {
          ...(spec.env ?? process.env),
          XPR_LOCALQ_JOB_ID: spec.job,
          XPR_LOCALQ_TASK_ID: spec.task,
          XPR_LOCALQ_ARRAY_TASK_ID: String(spec.arrayIndex ?? ''),
          XPR_LOCALQ_NUM_CORES: String(spec.cores),
        },
      });
      const started = now();
      const pid = child.pid;
      if (pid === undefined) throw new Error('spawn gave no pid');
      writeAtomic(taskFile(this.qdir, spec.task, 'pid'), JSON.stringify({ pid, started }));
      const r: Running = { spec, pid, started, child };
      this.running.set(spec.task, r);
      child.on('exit', (code, signal) => this.onExit(r, code, signal));
      child.on('error', (e) => {
        fs.appendFileSync(spec.stderr, `xpr localq: cannot start task: ${e.message}\n`);
      });
      return true;
    } catch (e) {
      if (err !== undefined) fs.appendFileSync(spec.stderr, `xpr localq: cannot start task: ${(e as Error).message}\n`);
      this.finish(spec.task, { code: 127, signal: null, ended: now() });
      return false;
    } finally {
      if (out !== undefined) fs.closeSync(out);
      if (err !== undefined && err !== out) fs.closeSync(err);
    }
  }

  /** A task started by an earlier dispatcher that died: watch its pid instead of its exit event. */
  private adopt(spec: TaskSpec, pid: { pid: number; started: number }): void {
    this.running.set(spec.task, { spec, pid: pid.pid, started: pid.started });
  }

  /** Enforce time limit and cancel on a running task; notice adopted tasks that ended. */
  private police(r: Running): void {
    const t = now();
    if (!r.child && !isAlive(r.pid)) {
      this.onExit(r, null, null);
      return;
    }
    const cancelled = this.has(r.spec.task, 'cancel');
    const overtime = r.spec.timeLimit > 0 && t - r.started > r.spec.timeLimit;
    if (overtime && !cancelled && !this.has(r.spec.task, 'timeout')) {
      fs.writeFileSync(taskFile(this.qdir, r.spec.task, 'timeout'), String(t));
    }
    if (!cancelled && !overtime) return;
    if (r.termSentAt === undefined) {
      r.termSentAt = t;
      signalGroup(r.pid, 'SIGTERM');
    } else if ((t - r.termSentAt) * 1000 > KILL_GRACE_MS) {
      signalGroup(r.pid, 'SIGKILL');
    }
  }

  private onExit(r: Running, code: number | null, signal: NodeJS.Signals | null): void {
    if (!this.running.delete(r.spec.task)) return;
    const rcText = readText(taskFile(this.qdir, r.spec.task, 'rc'));
    const rc = rcText === undefined ? code : Number.parseInt(rcText, 10);
    const reason = this.has(r.spec.task, 'timeout') ? 'TIMEOUT'
      : this.has(r.spec.task, 'cancel') ? 'CANCELLED'
      : rcText === undefined && !r.child ? 'LOST' : undefined;
    this.finish(r.spec.task, { code: rc, signal, ...(reason ? { reason } : {}), ended: now() });
  }

  private finish(task: string, exit: TaskExit): void {
    writeAtomic(taskFile(this.qdir, task, 'exit'), JSON.stringify(exit));
    this.ended.add(task);
  }
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

const now = (): number => Date.now() / 1000;
