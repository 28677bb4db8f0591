// `xpr db_rebuild`: make jobs.db again from the project's files after it was lost or damaged. Every
// job keeps its stage dir `run_<id>/`: its call, its job file (name, restart hash and its parts),
// its markers and its result. The job scripts in `_xpr_submit/` name the jobs each submission ran
// and the scheduler it went to. From these each job is recorded as far as the files tell:
//
//   a result (or an exit code without one)   succeeded / failed, as a sync would judge it
//   a submission its queue still knows        submitted (started, when its dir says so), with its remote id
//   a submission its queue was not asked      created, with the submission's name as an intent left by
//     about (unreachable) or does not know      a crash mid-submit: the next run of its script looks it up
//                                               by name on that system, or by its files, before it would
//                                               submit it again
//   nothing else                              created (never submitted)
//
// A submission's system is the one whose queue knows it, else the only configured system with its
// script's scheduler that could have it (`-S` names it). So a rerun of the script re-attaches to every
// job, as it would have before. The damaged file is kept beside the new one. Refused while another
// process has the database open, for a database that can still be read (it holds more than the files:
// `--force`), and when a submitted job's system cannot be told (nothing is written then).
import fs from 'node:fs';
import path from 'node:path';
import { getSystem } from '../../config/load.js';
import { projectRundir } from '../../config/rundir.js';
import { XprError } from '../../errors.js';
import { judge } from '../../job/engine.js';
import type { Project } from '../../job/project.js';
import { getScheduler } from '../../schedulers/registry.js';
import { DamagedDatabaseError, describeProcesses, otherProcessesUsing } from '../../store/db-errors.js';
import { JobStore, type JobRecord } from '../../store/jobstore.js';
import { canWrite } from '../../store/read-only.js';
import { replaceDatabase } from '../../store/replace.js';
import {
  readStageDir, readSubmitScripts, stageDirsIn, type ScriptedSubmission, type StagedFacts,
} from '../../store/stage-dirs.js';
import { JOB_STATUSES, type JobStatus } from '../../store/status.js';
import { openSystem, withProject, type CommandContext } from '../common.js';
import { problemOf, type Problem } from '../exit.js';
import { listSome, paint, plural, type FormatOptions } from '../format.js';

export interface DbRebuildOptions extends CommandContext {
  /**
   * The system every submitted job went to. By default each job's is told from its job script's
   * scheduler, and, when several systems use that scheduler, from the queue that knows the job.
   */
  system?: string;
  /** Rebuild even though jobs.db can be read: its records are replaced by what the files tell. */
  force?: boolean;
}

/** What was at the database's path before. */
export type DatabaseState =
  | { state: 'missing' }
  | { state: 'damaged'; problem: string }
  | { state: 'readable'; jobs: number };

export interface DbRebuildResult {
  dbPath: string;
  /** The dir whose run_<id> dirs were read. */
  stageRoot: string;
  before: DatabaseState;
  /** A new database was written (not when there was none and no job dir either). */
  written: boolean;
  /** The old database's files, renamed beside the new one. */
  keptAs: string[];
  /** Jobs recorded, by status. */
  byStatus: Partial<Record<JobStatus, number>>;
  recorded: number;
  /** Submitted jobs whose queue could not be asked or did not know them: the next run looks them up. */
  toLookUp: string[];
  /** Dirs staged without a job file (an older xpr): name and restart hash come from the dir name. */
  fromDirName: number;
  /** Dirs recorded under their own name as hash (a name of another shape): a rerun will not re-attach. */
  unmatched: string[];
  /** Dirs not recorded, and why. */
  unreadable: { dir: string; reason: string }[];
  problems: Problem[];
}

export async function dbRebuild(opts: DbRebuildOptions = {}): Promise<DbRebuildResult> {
  return withProject(opts, async (project) => {
    const dbPath = project.paths.dbPath;
    refuseWhileInUse(dbPath);
    const before = inspect(dbPath);
    if (before.state === 'readable' && before.jobs > 0 && !opts.force) {
      throw new XprError(`The job database ${dbPath} can be read (${plural(before.jobs, 'job')}): there is nothing to rebuild`, {
        hint: 'To replace its records with what the job dirs tell anyway (what only the database knows, such as ' +
          'processed statuses and resources, is lost; the file is kept beside it): xpr db_rebuild --force',
      });
    }
    if (opts.system !== undefined) getSystem(project.config, opts.system, project.paths);
    if (!canWrite(dbPath)) {
      throw new XprError(`Cannot rebuild the job database ${dbPath}: it is read-only to this process`, {
        hint: `xpr needs write permission on ${path.dirname(dbPath)} and the files in it, to write the new database beside the old one.`,
      });
    }
    const result: DbRebuildResult = {
      dbPath, stageRoot: project.stageRoot, before, written: false, keptAs: [], byStatus: {}, recorded: 0,
      toLookUp: [], fromDirName: 0, unmatched: [], unreadable: [], problems: [],
    };
    const staged: StagedFacts[] = [];
    for (const dir of stageDirsIn(project.stageRoot)) {
      const r = readStageDir(dir);
      if (r.ok) staged.push(r.facts);
      else result.unreadable.push({ dir: r.dir, reason: r.reason });
    }
    if (before.state === 'missing' && staged.length === 0) return result;
    staged.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));

    const jobs = await recordsOf(project, staged, opts.system, result);
    // The lookups take a while: a script started meanwhile must not have its database swapped under it.
    refuseWhileInUse(dbPath);
    result.keptAs = replaceDatabase(dbPath, jobs).keptAs;
    result.written = true;
    result.recorded = jobs.length;
    for (const j of jobs) result.byStatus[j.status] = (result.byStatus[j.status] ?? 0) + 1;
    result.fromDirName = staged.filter((s) => s.identity === 'dir name').length;
    result.unmatched = staged.filter((s) => s.identity === 'none').map((s) => s.stageDir);
    return result;
  });
}

function refuseWhileInUse(dbPath: string): void {
  const holders = otherProcessesUsing(dbPath);
  if (holders.length === 0) return;
  throw new XprError(`The job database ${dbPath} is in use by ${describeProcesses(holders)}`, {
    hint: 'Rebuilding replaces the file, which must not happen under a process still using it. Let that process end ' +
      `(or stop it: kill ${holders.join(' ')}), then run xpr db_rebuild again.`,
  });
}

/** Whether the database is there, and whether SQLite can read it through. */
function inspect(dbPath: string): DatabaseState {
  if (!fs.existsSync(dbPath)) return { state: 'missing' };
  let store: JobStore | undefined;
  try {
    store = JobStore.open(dbPath, { readonly: true });
    const problems = store.quickCheck();
    if (problems.length) return { state: 'damaged', problem: problems.slice(0, 3).join('; ') };
    return { state: 'readable', jobs: store.count() };
  } catch (err) {
    if (err instanceof DamagedDatabaseError) return { state: 'damaged', problem: (err.cause as Error | undefined)?.message ?? err.message };
    // A file SQLite reads but whose tables are not a job database's is no better than a damaged one.
    if (!(err instanceof XprError) && (err as { code?: unknown }).code === 'SQLITE_ERROR') {
      return { state: 'damaged', problem: (err as Error).message };
    }
    throw err;
  } finally {
    store?.close();
  }
}

/** The record of each staged job, as its files and (for jobs still queued) its queue tell. */
async function recordsOf(project: Project, staged: readonly StagedFacts[], system: string | undefined, result: DbRebuildResult): Promise<JobRecord[]> {
  const scripts = readSubmitScripts(project.stageRoot);
  const candidates = (s: ScriptedSubmission): string[] => system !== undefined ? [system]
    : Object.values(project.config.systems).filter((c) => getScheduler(c.scheduler).directivePrefix === s.directive).map((c) => c.name);
  // A queue is asked (once per submission) for jobs that have not ended by their files, and for the
  // system of those that have when their scheduler alone does not tell it.
  const toAsk = new Map<string, ScriptedSubmission>();
  const verdicts = new Map(staged.map((s) => [s.id, judge(s.stageDir)]));
  for (const s of staged) {
    const sub = scripts.get(s.id)?.submission;
    if (sub && (!verdicts.get(s.id) || candidates(sub).length > 1)) toAsk.set(sub.schedName, sub);
  }
  const answers = await lookUp(project, [...toAsk.values()], candidates, result.problems);
  const now = Date.now() / 1000;
  const undecided: { id: string; systems: string[] }[] = [];

  const jobs = staged.map((s) => {
    const record: JobRecord = {
      id: s.id, name: s.name, hash: s.hash, hashParts: s.hashParts, status: 'created', system: null, stageDir: s.stageDir,
      remoteDir: null, schedName: null, remoteId: null, remoteStatus: null, remoteReason: null, submitIntent: null,
      submitOwner: null, createdAt: s.createdAt, updatedAt: s.updatedAt, info: { ...s.info, recordedBy: 'xpr db_rebuild' },
    };
    const scripted = scripts.get(s.id);
    const verdict = verdicts.get(s.id);
    if (verdict) {
      record.status = verdict.status;
      record.remoteReason = 'reason' in verdict ? verdict.reason : null;
    }
    if (!scripted) return record;
    const { submission, index } = scripted;
    const names = candidates(submission);
    const where = answers.found.get(submission.schedName);
    const sys = where?.system ?? systemOf(names, answers.absentFrom.get(submission.schedName));
    record.schedName = submission.schedName;
    if (submission.jobIds.length > 1) record.info.arrayIndex = index;
    if (sys !== undefined) {
      record.system = sys;
      record.remoteDir = remoteDirOf(project, sys, s.id);
    }
    if (where) record.remoteId = submission.jobIds.length > 1 ? where.elementId(index) : where.remoteId;
    if (verdict) {
      record.remoteStatus = 'done';
    } else if (where) {
      record.status = s.started ? 'started' : 'submitted';
      record.remoteStatus = s.started ? 'running' : 'queued';
    } else if (sys === undefined) {
      undecided.push({ id: s.id, systems: names });
    } else {
      // As a crash between recording the intent and hearing back from the scheduler leaves it: the
      // next run looks the job up by this name on this system (and by its started marker) before
      // submitting it again.
      record.submitIntent = now;
      result.toLookUp.push(s.id);
    }
    return record;
  });
  if (undecided.length) throw undecidedSystems(undecided, result.problems);
  return jobs;
}

/**
 * The system a submission that no queue named went to: the only candidate, or the only one not known
 * to lack it (the others were asked and said no). Undefined when the files and queues cannot tell.
 */
function systemOf(candidates: readonly string[], absentFrom: ReadonlySet<string> | undefined): string | undefined {
  if (candidates.length === 1) return candidates[0];
  const maybe = candidates.filter((c) => !absentFrom?.has(c));
  return maybe.length === 1 ? maybe[0] : undefined;
}

/**
 * Submitted jobs whose system cannot be told: recording them without one would leave them for no
 * command to follow, and submitting them again could run them twice, so nothing is written.
 */
function undecidedSystems(undecided: readonly { id: string; systems: string[] }[], problems: readonly Problem[]): XprError {
  const systems = [...new Set(undecided.flatMap((u) => u.systems))];
  const why = systems.length === 0 ? 'no configured system uses the scheduler of their job scripts'
    : `no queue of ${systems.join(', ')} says which of them has them`;
  const asked = problems.length ? `\n${problems.map((p) => `  ${p.system ?? '?'}: ${p.message.split('\n')[0]}`).join('\n')}` : '';
  return new XprError(`Cannot tell which system ${plural(undecided.length, 'submitted job')} went to (${why}); nothing was written:\n` +
    `${listSome(undecided.map((u) => u.id))}${asked}`, {
    hint: systems.length ? `Name it: xpr db_rebuild -S <system> (one of ${systems.join(', ')}), or make the others reachable and run again.`
      : 'Define the system they went to in config.json again, or name one: xpr db_rebuild -S <system>.',
  });
}

interface Found {
  system: string;
  remoteId: string;
  elementId: (index: number) => string;
}

interface Answers {
  /** Submissions a queue knows, by scheduler name. */
  found: Map<string, Found>;
  /** The systems whose queue was asked for a submission and does not know it. */
  absentFrom: Map<string, Set<string>>;
}

/**
 * Ask the queues for each submission by its unique name: each candidate system in turn until one
 * knows it. A system that fails (not reached, or its lookup command failed) is asked nothing more;
 * it is reported once, and only if some submission it might have had was found nowhere else.
 */
async function lookUp(
  project: Project, submissions: readonly ScriptedSubmission[], candidates: (s: ScriptedSubmission) => string[], problems: Problem[],
): Promise<Answers> {
  const answers: Answers = { found: new Map(), absentFrom: new Map() };
  const failed = new Map<string, Problem>();
  const reported = new Set<string>();
  for (const sub of submissions) {
    const absent = new Set<string>();
    answers.absentFrom.set(sub.schedName, absent);
    for (const name of candidates(sub)) {
      if (failed.has(name)) continue;
      try {
        const system = openSystem(project, name);
        const remoteId = await system.findSubmitted(sub.schedName);
        if (remoteId === undefined) {
          absent.add(name);
          continue;
        }
        answers.found.set(sub.schedName, { system: name, remoteId, elementId: (i) => system.scheduler.arrayElementId(remoteId, i) });
        break;
      } catch (err) {
        if (!(err instanceof XprError)) throw err;
        failed.set(name, problemOf(err, name));
      }
    }
    if (answers.found.has(sub.schedName)) continue;
    for (const name of candidates(sub)) {
      const problem = failed.get(name);
      if (problem && !reported.has(name)) {
        reported.add(name);
        problems.push(problem);
      }
    }
  }
  return answers;
}

/** The dir a job submitted to `system` has there (for a system that runs jobs in place, its stage dir). */
function remoteDirOf(project: Project, system: string, id: string): string {
  const cfg = getSystem(project.config, system, project.paths);
  return path.posix.join(projectRundir(cfg, project.config, project.stageRoot), `run_${id}`);
}

export function renderDbRebuild(r: DbRebuildResult, fmt: FormatOptions): string {
  const out: string[] = [];
  const was = r.before.state === 'missing' ? `No job database was at ${r.dbPath}`
    : r.before.state === 'damaged' ? `The job database ${r.dbPath} was damaged (${r.before.problem})`
      : `The job database ${r.dbPath} held ${plural(r.before.jobs, 'job')}`;
  if (!r.written) {
    out.push(`${was}, and ${r.stageRoot} has no job dirs (run_<id>): nothing to rebuild, no database made.`);
  } else {
    const counts = JOB_STATUSES.filter((s) => r.byStatus[s]).map((s) => `${r.byStatus[s]} ${s}`).join(', ');
    out.push(`${was}.`, `Rebuilt it from the job dirs in ${r.stageRoot}: ${plural(r.recorded, 'job')}${counts ? ` (${counts})` : ''}.`);
    if (r.keptAs.length) out.push(`The old file${r.keptAs.length > 1 ? 's are' : ' is'} kept beside it: ${r.keptAs.map((f) => path.basename(f)).join(', ')}`);
  }
  if (r.toLookUp.length) {
    out.push(paint(`${plural(r.toLookUp.length, 'submitted job')} could not be found in a queue (shown as created): ` +
      'the next run of their script looks each up by name, and by its files, before it would submit it again.', 'yellow', fmt));
  }
  if (r.fromDirName) out.push(`${plural(r.fromDirName, 'dir')} staged by an older xpr: name and restart hash taken from the dir name.`);
  if (r.unmatched.length) {
    out.push(paint(`${plural(r.unmatched.length, 'dir')} with a name not of the form <name>_<hash>_<8 chars>, recorded with that ` +
      `name as hash (a rerun will not re-attach to them):\n${listSome(r.unmatched)}`, 'yellow', fmt));
  }
  if (r.unreadable.length) {
    out.push(paint(`Not recorded: ${plural(r.unreadable.length, 'dir')}:\n${listSome(r.unreadable.map((u) => `${u.dir}: ${u.reason}`))}`, 'yellow', fmt));
  }
  for (const p of r.problems) out.push(paint(`${p.system ?? '?'}: ${p.message}`, 'red', fmt));
  return out.join('\n');
}
