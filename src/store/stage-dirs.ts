// What a project's files say about its jobs, for rebuilding a lost or damaged jobs.db: each stage
// dir `run_<id>/` (its call, its job file, its markers and when they were written), and the job
// scripts in `_xpr_submit/`, which name the jobs each submission ran and the scheduler it went to.
import fs from 'node:fs';
import path from 'node:path';
import { CALL_FILE, EXIT_CODE_FILE, RESULT_FILE, STARTED_FILE, SUBMIT_DIR, type CallSpec } from '../runner/protocol.js';
import { readJobFile } from './job-file.js';

/** A stage dir read back: the fields of its record that the dir itself tells. */
export interface StagedFacts {
  id: string;
  stageDir: string;
  name: string;
  hash: string;
  hashParts: Record<string, string>;
  info: Record<string, unknown>;
  /**
   * Where name and hash came from: the job file, the dir name (a dir staged before xpr wrote job
   * files), or neither (a dir name of another shape: its name is taken as name and hash, as
   * `create_job --from-dir` does, so a rerun will not re-attach to it).
   */
  identity: 'job file' | 'dir name' | 'none';
  /** The job script got as far as starting (`_xpr_started`). */
  started: boolean;
  /** When the call was staged, and when the dir last changed state (seconds since the epoch). */
  createdAt: number;
  updatedAt: number;
}

export type StageDirReading = { ok: true; facts: StagedFacts } | { ok: false; dir: string; reason: string };

/** The `run_<id>` entries of the stage root, sorted. */
export function stageDirsIn(stageRoot: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(stageRoot);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.filter((n) => n.startsWith('run_')).sort().map((n) => path.join(stageRoot, n));
}

export function readStageDir(dir: string): StageDirReading {
  const fail = (reason: string): StageDirReading => ({ ok: false, dir, reason });
  let callTime: number;
  try {
    if (!fs.statSync(dir).isDirectory()) return fail('not a directory');
    callTime = fs.statSync(path.join(dir, CALL_FILE)).mtimeMs / 1000;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return fail(`it has no ${CALL_FILE} (not staged by xpr, or its call was cleaned away)`);
    return fail(`it cannot be read: ${(err as Error).message}`);
  }
  const id = path.basename(dir).slice('run_'.length);
  const staged = readJobFile(dir);
  const parsed = staged ? undefined : parseJobId(id);
  const facts: StagedFacts = {
    id, stageDir: dir,
    name: staged?.name ?? parsed?.name ?? id,
    hash: staged?.hash ?? parsed?.hash ?? id,
    hashParts: staged?.hashParts ?? {},
    info: staged?.info ?? infoFromCall(dir),
    identity: staged ? 'job file' : parsed ? 'dir name' : 'none',
    started: fs.existsSync(path.join(dir, STARTED_FILE)),
    createdAt: callTime,
    updatedAt: Math.max(callTime, ...[STARTED_FILE, RESULT_FILE, EXIT_CODE_FILE].map((f) => mtimeOf(path.join(dir, f)))),
  };
  return { ok: true, facts };
}

/**
 * `<name>_<43-char base64url hash>_<8 random>` (identity.ts `newJobId`) → name and hash; undefined
 * for an id of another shape.
 */
export function parseJobId(id: string): { name: string; hash: string } | undefined {
  const m = /^(.+)_([A-Za-z0-9_-]{43})_([A-Za-z0-9]{8})$/.exec(id);
  if (!m) return undefined;
  return { name: id.slice(0, -53), hash: id.slice(-52, -9) };
}

/** For a dir without a job file: the code file and export its call names, as create puts them in info. */
function infoFromCall(dir: string): Record<string, unknown> {
  try {
    const call = JSON.parse(fs.readFileSync(path.join(dir, CALL_FILE), 'utf8')) as Partial<CallSpec>;
    const code = call.code && 'file' in call.code ? path.basename(call.code.file) : undefined;
    return { ...(code ? { codeFile: code } : {}), ...(typeof call.export === 'string' ? { export: call.export } : {}) };
  } catch {
    return {};
  }
}

function mtimeOf(file: string): number {
  try {
    return fs.statSync(file).mtimeMs / 1000;
  } catch {
    return 0;
  }
}

/** A submission as its job script tells it. */
export interface ScriptedSubmission {
  /** The unique scheduler job name (the script is `_xpr_submit/<schedName>.sh`). */
  schedName: string;
  /** The scheduler's directive word of the script's header (`#SBATCH`, `#LOCALQ`, `#PBS`, `#$`). */
  directive: string;
  /** Job ids in array order (one: a plain job). */
  jobIds: string[];
  /** When the script was written (seconds since the epoch). */
  writtenAt: number;
}

/**
 * The job scripts of the project, and for each job id the newest submission that names it (a job
 * whose submission was refused is submitted again under a new name).
 */
export function readSubmitScripts(stageRoot: string): Map<string, { submission: ScriptedSubmission; index: number }> {
  const dir = path.join(stageRoot, SUBMIT_DIR);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.sh'));
  } catch {
    return new Map();
  }
  const submissions: ScriptedSubmission[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    try {
      const parsed = parseScript(fs.readFileSync(file, 'utf8'));
      if (parsed) submissions.push({ schedName: n.slice(0, -'.sh'.length), ...parsed, writtenAt: fs.statSync(file).mtimeMs / 1000 });
    } catch {
      // A script that cannot be read tells nothing; its jobs are judged by their own files.
    }
  }
  submissions.sort((a, b) => a.writtenAt - b.writtenAt);
  const byJob = new Map<string, { submission: ScriptedSubmission; index: number }>();
  for (const s of submissions) s.jobIds.forEach((id, index) => byJob.set(id, { submission: s, index }));
  return byJob;
}

/**
 * The scheduler directive and job dirs of a script rendered from templates/job.sh: the header's
 * first line is the scheduler's job-name directive, and the dirs are `job_dir='run_<id>'` or the
 * lines of `job_dirs=( … )`, each quoted as shQuote quotes.
 */
function parseScript(text: string): { directive: string; jobIds: string[] } | undefined {
  const lines = text.split('\n');
  const directive = /^(#\S+)\s/.exec(lines[1] ?? '')?.[1];
  if (!directive || directive.startsWith('#!')) return undefined;
  const dirs: string[] = [];
  const single = lines.find((l) => l.startsWith('job_dir=') && !l.includes('${'));
  if (single) {
    const d = unquote(single.slice('job_dir='.length));
    if (d) dirs.push(d);
  } else {
    const start = lines.indexOf('job_dirs=(');
    for (let i = start + 1; start >= 0 && i < lines.length && lines[i] !== ')'; i++) {
      const d = unquote(lines[i]!.trim());
      if (d) dirs.push(d);
    }
  }
  const jobIds = dirs.filter((d) => d.startsWith('run_')).map((d) => d.slice('run_'.length));
  return jobIds.length ? { directive, jobIds } : undefined;
}

/** A word as shQuote wrote it (`'…'`, a quote inside as `'\''`); undefined for anything else. */
function unquote(word: string): string | undefined {
  const m = /^'((?:[^']|'\\'')*)'$/.exec(word);
  return m ? m[1]!.replace(/'\\''/g, "'") : undefined;
}
