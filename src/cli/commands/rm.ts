// `xpr rm`: forget jobs. With -c (as ExPyRe's `rm -c`) running jobs are cancelled and the local and
// remote job dirs wiped. Without -c the records go but the dirs stay, and they are listed so that
// nothing is left behind unseen; jobs still submitted or started are refused, since forgetting
// them would leave work running on a cluster that no xpr command can see any more.
import fs from 'node:fs';
import type { Transport } from '../../transport/types.js';
import { shQuote, shWord } from '../../util/shell.js';
import { XprError } from '../../errors.js';
import type { JobRecord } from '../../store/jobstore.js';
import { confirmed, groupBy, openSystem, withProject } from '../common.js';
import { problemOf, type Problem } from '../exit.js';
import { listSome, plural, type FormatOptions } from '../format.js';
import { selectedJobs, type ConfirmedSelectOptions } from '../selected-jobs.js';

export interface RmOptions extends ConfirmedSelectOptions {
  /** Cancel running jobs and delete the local and remote job dirs (`-c`). */
  clean?: boolean;
}

export interface KeptDir {
  id: string;
  /** Local stage dir, when it still exists. */
  local?: string;
  /** Job dir on its system, when it has one apart from the stage dir. */
  remote?: string;
  system?: string;
}

export interface RmResult {
  dbPath: string;
  matched: number;
  /** The user said no. */
  declined: boolean;
  removed: string[];
  /** Ongoing jobs cancelled first (`-c`). */
  cancelled: string[];
  /** Dirs left on disk (without `-c`); their jobs are no longer in the database. */
  kept: KeptDir[];
  /** Jobs not removed because their system could not be reached (`-c`). */
  problems: Problem[];
}

const ONGOING = new Set(['submitted', 'started']);

export async function rm(opts: RmOptions): Promise<RmResult> {
  return withProject(opts, async (project) => {
    const jobs = selectedJobs(project, opts, 'rm');
    const result: RmResult = {
      dbPath: project.paths.dbPath, matched: jobs?.length ?? 0, declined: false, removed: [], cancelled: [], kept: [], problems: [],
    };
    if (!jobs || jobs.length === 0) return result;
    const store = project.store;

    const running = jobs.filter((j) => ONGOING.has(j.status));
    if (!opts.clean && running.length > 0) {
      throw new XprError(`${plural(running.length, 'selected job is', 'selected jobs are')} still submitted or started:\n` +
        listSome(running.map((j) => `${j.id} (${j.status} on ${j.system ?? '?'})`)), {
        hint: 'Removing them would leave them running unseen. Use xpr rm -c to cancel and wipe them, or xpr cancel first ' +
          '(xpr fail_job if their system is gone for good).',
      });
    }
    const what = opts.clean ? 'Cancel (if running) and delete, with their local and remote dirs,' : 'Delete from the database';
    const question = `${what} ${plural(jobs.length, 'job')}?\n${listSome(jobs.map((j) => `${j.id} (${j.status})`))}`;
    if (!(await confirmed(question, opts))) return { ...result, declined: true };

    if (!opts.clean) {
      store.delete(jobs.map((j) => j.id));
      result.removed = jobs.map((j) => j.id);
      result.kept = jobs.map(keptDirs).filter((k) => k.local !== undefined || k.remote !== undefined);
      return result;
    }

    // -c: per system, cancel what runs and remove the remote dirs; a system that cannot be reached
    // keeps its jobs (records and dirs) so that a later `rm -c` can finish the work.
    const removable: JobRecord[] = [];
    for (const [sysName, group] of groupBy(jobs, (j) => j.system ?? '')) {
      if (sysName === '') { removable.push(...group); continue; }
      try {
        const system = openSystem(project, sysName);
        const ids = group.filter((j) => ONGOING.has(j.status) && j.remoteId).map((j) => j.remoteId!);
        await system.cancel(ids);
        result.cancelled.push(...group.filter((j) => ONGOING.has(j.status) && j.remoteId).map((j) => j.id));
        if (!system.inPlace) await removeDirs(system.transport, group.flatMap((j) => (j.remoteDir ? [j.remoteDir] : [])));
        removable.push(...group);
      } catch (err) {
        result.problems.push(problemOf(err, sysName));
      }
    }
    for (const j of removable) fs.rmSync(j.stageDir, { recursive: true, force: true });
    store.delete(removable.map((j) => j.id));
    result.removed = removable.map((j) => j.id);
    return result;
  });
}

/** Remove dirs on a system, many per command (one connection, few round trips). */
async function removeDirs(transport: Transport, dirs: readonly string[]): Promise<void> {
  for (let i = 0; i < dirs.length; i += 200) {
    const r = await transport.exec(`rm -rf -- ${dirs.slice(i, i + 200).map(shQuote).join(' ')}`);
    if (r.code !== 0) throw new XprError(`Removing job dirs on ${transport.host} failed: ${r.stderr.trim()}`);
  }
}

function keptDirs(j: JobRecord): KeptDir {
  const out: KeptDir = { id: j.id };
  if (fs.existsSync(j.stageDir)) out.local = j.stageDir;
  // In place (the built-in local system) the remote dir is the stage dir; `clean` removed the remote one.
  if (j.remoteDir && j.remoteDir !== j.stageDir && j.status !== 'cleaned') {
    out.remote = j.remoteDir;
    if (j.system) out.system = j.system;
  }
  return out;
}

export function renderRm(r: RmResult, _fmt: FormatOptions): string {
  if (r.matched === 0) return `No matching jobs in JobsDB at ${r.dbPath}`;
  if (r.declined) return 'Nothing deleted.';
  const lines = [`Deleted ${plural(r.removed.length, 'job')} from ${r.dbPath}.`];
  if (r.cancelled.length) lines.push(`Cancelled ${plural(r.cancelled.length, 'running job')} first.`);
  if (r.kept.length) {
    const local = r.kept.flatMap((k) => (k.local ? [k.local] : []));
    const remote = r.kept.flatMap((k) => (k.remote ? [`${k.system ?? '?'}:${k.remote}`] : []));
    lines.push(`Their job dirs were kept (use xpr rm -c to delete dirs along with jobs); no job refers to them any more:`);
    if (local.length) lines.push(listSome(local, 20));
    if (local.length && local.length <= 20) lines.push(`  delete with: rm -rf ${local.map(shWord).join(' ')}`);
    if (remote.length) lines.push('  on their systems:', listSome(remote, 20, '    '));
  }
  for (const p of r.problems) lines.push(`Kept the jobs on ${p.system ?? '?'}: ${p.message}`);
  return lines.join('\n');
}
