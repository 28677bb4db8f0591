// A throw-away project for CLI tests: its own _expyre dir, HOME and local queue, a context to pass
// to the command functions, and jobs recorded directly in the store at fixed times (fast and
// deterministic) or run for real where a command talks to a system.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { vi } from 'vitest';
import type { CommandContext } from '../../src/cli/common.js';
import { Job } from '../../src/job/job.js';
import { Project } from '../../src/job/project.js';
import { JobStore, type JobPatch, type NewJob } from '../../src/store/jobstore.js';
import { removeProjectDir } from '../helpers/localq.js';

export const OPS = path.resolve('test/fixtures/cli/ops.js');
export const ONE_CORE = { resources: { num_cores: 1, max_time: '5m' } };
/** 2024-03-01 12:00:00 UTC: recorded jobs get this time plus their index in minutes. */
export const T0 = Date.UTC(2024, 2, 1, 12, 0, 0);

export interface CliProject {
  dir: string;
  root: string;
  dbPath: string;
  ctx: Required<Pick<CommandContext, 'cwd' | 'env'>>;
  /** Replace the temp dir in text with <tmp>, for golden files. */
  scrub(text: string): string;
  cleanup(): Promise<void>;
}

export function cliProject(config?: unknown): CliProject {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-cli-')));
  const root = path.join(dir, '_expyre');
  fs.mkdirSync(root);
  if (config !== undefined) fs.writeFileSync(path.join(root, 'config.json'), JSON.stringify(config, null, 2));
  // The local queue's dispatcher reads XPR_LOCALQ_DIR from the submitting process's environment.
  process.env.XPR_LOCALQ_DIR = path.join(dir, 'localq');
  const env: NodeJS.ProcessEnv = { ...process.env, EXPYRE_ROOT: root, HOME: dir, HOSTNAME: 'testhost' };
  delete env.NO_COLOR;
  return {
    dir, root, dbPath: path.join(root, 'jobs.db'), ctx: { cwd: dir, env },
    scrub: (text) => text.split(dir).join('<tmp>'),
    async cleanup() {
      await removeProjectDir(dir);
    },
  };
}

/** A job record as tests describe it: a name and what changed after creation. */
export interface Seed {
  name: string;
  /** Defaults to a deterministic id `<name>_<43 chars>_<8 chars>` from the index. */
  id?: string;
  patch?: JobPatch;
  /** Make the stage dir on disk. */
  dir?: boolean;
}

/** Record jobs at fixed times (T0 + i minutes, updated one second later), in one store. */
export function seed(p: CliProject, seeds: readonly Seed[]): string[] {
  vi.useFakeTimers({ toFake: ['Date'] });
  try {
    const store = JobStore.open(p.dbPath);
    const ids: string[] = [];
    seeds.forEach((s, i) => {
      const id = s.id ?? `${s.name}_${String(i).padStart(43, 'H')}_abcdefg${i % 10}`;
      const stageDir = path.join(p.root, `run_${id}`);
      vi.setSystemTime(T0 + i * 60_000);
      const job: NewJob = { id, name: s.name, hash: `hash-${i}`, stageDir };
      store.insertMany([job]);
      vi.setSystemTime(T0 + i * 60_000 + 1000);
      if (s.patch) store.update(id, s.patch);
      if (s.dir) fs.mkdirSync(stageDir, { recursive: true });
      ids.push(id);
    });
    store.close();
    return ids;
  } finally {
    vi.useRealTimers();
  }
}

/** The store of the project, opened afresh (the commands open and close their own). */
export function openStore(p: CliProject): JobStore {
  return JobStore.open(p.dbPath);
}

/** Every recorded job as `name:status`, in creation order: what a command must leave as it found. */
export function jobRows(p: CliProject): string[] {
  const store = openStore(p);
  try {
    return store.list().map((j) => `${j.name}:${j.status}`);
  } finally {
    store.close();
  }
}

/** Open the project as a driver script would, to create and start real jobs. */
export function openProject(p: CliProject): Project {
  return Project.open({ cwd: p.dir, env: p.ctx.env, home: p.dir });
}

/** A real job of a function of test/fixtures/cli/ops.js, started on `system` unless that is null. */
export async function realJob(
  project: Project, name: string, fn: (...a: never[]) => unknown, args: unknown[], system: string | null = 'local',
): Promise<Job> {
  const job = await Job.create({ name, fn, module: OPS, args, project });
  if (system !== null) await job.start({ ...ONE_CORE, system });
  return job;
}

/** Poll until `check` holds (real jobs take a moment on a busy machine). */
export async function until<T>(what: string, fn: () => Promise<T>, check: (t: T) => boolean, seconds = 60): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const v = await fn();
    if (check(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
