// The local queue: a small real batch scheduler for one machine, kept as plain files in a queue
// dir so that it outlives the process that submitted to it. Submitting writes one task file per job
// (or per array element) and makes sure a dispatcher is running; the dispatcher (dispatcher.ts)
// starts tasks while cores are free, enforces time limits and records exits. Every state is a file:
//
//   <qdir>/tasks/<task>.json     what to run (written once, at submit)
//   <qdir>/tasks/<task>.claim    a dispatcher took the task (O_EXCL: never started twice)
//   <qdir>/tasks/<task>.pid      pid of the task's process group leader and its start time
//   <qdir>/tasks/<task>.exit     exit code / signal / reason, written when it ended
//   <qdir>/tasks/<task>.cancel   cancel requested;  <task>.hold: not to be started until released
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TaskSpec {
  task: string;
  job: string;
  name: string;
  script: string;
  cwd: string;
  cores: number;
  /** Wall-time limit in seconds; 0 for none. */
  timeLimit: number;
  stdout: string;
  stderr: string;
  /** 0-based array index, for array elements. */
  arrayIndex?: number;
  shell: string;
  submitted: number;
  /** The submitter's environment, given to the task as sbatch's default --export=ALL does. */
  env?: NodeJS.ProcessEnv;
}

export interface TaskExit {
  code: number | null;
  signal: string | null;
  /** Why the queue ended it, when it did: TIMEOUT or CANCELLED. */
  reason?: 'TIMEOUT' | 'CANCELLED' | 'LOST';
  ended: number;
}

export type TaskState = 'PENDING' | 'HELD' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'TIMEOUT';

export interface TaskStatus {
  task: string;
  state: TaskState;
  exitCode: number | null;
  name: string;
}

/** Queue dir: `$XPR_LOCALQ_DIR`, else `~/.xpr/localq` (one queue per user and machine). */
export function defaultQueueDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.XPR_LOCALQ_DIR || path.join(os.homedir(), '.xpr', 'localq');
}

/** Cores the dispatcher may use at once: `$XPR_LOCALQ_CORES`, else all of this machine's. */
export function queueCapacity(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.XPR_LOCALQ_CORES);
  return Number.isInteger(n) && n > 0 ? n : os.availableParallelism();
}

export const tasksDir = (qdir: string): string => path.join(qdir, 'tasks');
export const taskFile = (qdir: string, task: string, ext: string): string => path.join(tasksDir(qdir), `${task}.${ext}`);

/** Write a file so that readers see all of it or none of it. */
export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export const readTask = (qdir: string, task: string): TaskSpec | undefined => readJson<TaskSpec>(taskFile(qdir, task, 'json'));
export const readExit = (qdir: string, task: string): TaskExit | undefined => readJson<TaskExit>(taskFile(qdir, task, 'exit'));
export const readPid = (qdir: string, task: string): { pid: number; started: number } | undefined =>
  readJson(taskFile(qdir, task, 'pid'));

/** Allocate the next job number; O_EXCL on a marker file makes two submitters never share one. */
function allocateJobNumber(qdir: string): number {
  const idsDir = path.join(qdir, 'ids');
  fs.mkdirSync(idsDir, { recursive: true });
  const counter = path.join(qdir, 'next_id');
  let n = Number.parseInt(fs.existsSync(counter) ? fs.readFileSync(counter, 'utf8') : '1', 10) || 1;
  for (;;) {
    try {
      fs.closeSync(fs.openSync(path.join(idsDir, String(n)), 'wx'));
      writeAtomic(counter, String(n + 1));
      return n;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      n++;
    }
  }
}

export interface SubmitRequest {
  script: string;
  cwd: string;
  name: string;
  cores: number;
  timeLimit: number;
  stdout: string;
  stderr: string;
  /** Number of array elements; 0 for a plain job. */
  arraySize: number;
  hold: boolean;
  shell: string;
  env: NodeJS.ProcessEnv;
}

/** Queue a job (or an array); returns its job id. */
export function submit(qdir: string, req: SubmitRequest): string {
  fs.mkdirSync(tasksDir(qdir), { recursive: true });
  const job = String(allocateJobNumber(qdir));
  const indices = req.arraySize > 0 ? [...Array(req.arraySize).keys()] : [undefined];
  for (const index of indices) {
    const task = index === undefined ? job : `${job}_${index}`;
    const subst = (f: string) => f.replace(/%A/g, job).replace(/%a/g, String(index ?? 0)).replace(/%j/g, task);
    const spec: TaskSpec = {
      task, job, name: req.name, script: req.script, cwd: req.cwd, cores: req.cores, timeLimit: req.timeLimit,
      stdout: path.resolve(req.cwd, subst(req.stdout)), stderr: path.resolve(req.cwd, subst(req.stderr)),
      shell: req.shell, submitted: Date.now() / 1000, env: req.env,
      ...(index === undefined ? {} : { arrayIndex: index }),
    };
    // The hold marker goes first, so a running dispatcher never sees the task unheld.
    if (req.hold) fs.writeFileSync(taskFile(qdir, task, 'hold'), '');
    writeAtomic(taskFile(qdir, task, 'json'), JSON.stringify(spec));
  }
  return job;
}

/** All task names in the queue dir, in submission order. */
export function listTasks(qdir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(tasksDir(qdir));
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).sort(compareTasks);
}

function compareTasks(a: string, b: string): number {
  const [ja, ia] = a.split('_').map(Number);
  const [jb, ib] = b.split('_').map(Number);
  return (ja! - jb!) || ((ia ?? -1) - (ib ?? -1));
}

/** Tasks named by `ids`: a job id names all its array elements, a task id names itself. */
export function resolveTasks(qdir: string, ids: readonly string[] | undefined): string[] {
  const all = listTasks(qdir);
  if (!ids) return all;
  const want = new Set(ids);
  return all.filter((t) => want.has(t) || want.has(t.split('_')[0]!));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function taskStatus(qdir: string, task: string): TaskStatus | undefined {
  const spec = readTask(qdir, task);
  if (!spec) return undefined;
  const exit = readExit(qdir, task);
  const name = spec.name;
  if (exit) {
    const state: TaskState = exit.reason === 'TIMEOUT' ? 'TIMEOUT'
      : exit.reason === 'CANCELLED' ? 'CANCELLED'
      : exit.code === 0 ? 'COMPLETED' : 'FAILED';
    return { task, state, exitCode: exit.code, name };
  }
  if (fs.existsSync(taskFile(qdir, task, 'pid'))) return { task, state: 'RUNNING', exitCode: null, name };
  if (fs.existsSync(taskFile(qdir, task, 'cancel'))) return { task, state: 'CANCELLED', exitCode: null, name };
  if (fs.existsSync(taskFile(qdir, task, 'hold'))) return { task, state: 'HELD', exitCode: null, name };
  return { task, state: 'PENDING', exitCode: null, name };
}

/**
 * Cancel tasks: a pending one is marked and never starts; a running one gets SIGTERM to its whole
 * process group now, and the dispatcher sends SIGKILL if it outlives the grace period and records
 * the exit as CANCELLED.
 */
export function cancel(qdir: string, ids: readonly string[]): string[] {
  const tasks = resolveTasks(qdir, ids);
  for (const task of tasks) {
    if (readExit(qdir, task)) continue;
    fs.writeFileSync(taskFile(qdir, task, 'cancel'), String(Date.now() / 1000));
    const pid = readPid(qdir, task);
    if (pid) signalGroup(pid.pid, 'SIGTERM');
  }
  return tasks;
}

/** Signal a whole process group (a task and everything it started). */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch { /* already gone */ }
}

export function hold(qdir: string, ids: readonly string[]): void {
  for (const task of resolveTasks(qdir, ids)) {
    if (!fs.existsSync(taskFile(qdir, task, 'claim'))) fs.writeFileSync(taskFile(qdir, task, 'hold'), '');
  }
}

export function release(qdir: string, ids: readonly string[]): void {
  for (const task of resolveTasks(qdir, ids)) fs.rmSync(taskFile(qdir, task, 'hold'), { force: true });
}

/** Job ids whose name is `name` (to re-find a job after a crash mid-submit). */
export function findByName(qdir: string, name: string): string[] {
  const jobs = new Set<string>();
  for (const task of listTasks(qdir)) {
    if (readTask(qdir, task)?.name === name) jobs.add(task.split('_')[0]!);
  }
  return [...jobs];
}
