// `xpr logs <id>`: what a job printed and what it ran — the job script's stdout and stderr, the
// function's stdout and stderr, and the rendered job script. A job still running on a system that
// does not share this machine's files is read there (one command per file over its connection); a
// finished one from its stage dir, where sync brought the files back.
import fs from 'node:fs';
import path from 'node:path';
import { XprError } from '../../errors.js';
import { FN_STDERR, FN_STDOUT, JOB_STDERR, JOB_STDOUT, SUBMIT_DIR } from '../../runner/protocol.js';
import type { JobRecord, JobStore } from '../../store/jobstore.js';
import type { Transport } from '../../transport/types.js';
import { shQuote, shWord } from '../../util/shell.js';
import { escapeRegex, hasDatabase, openSystem, withProject, type CommandContext } from '../common.js';
import { problemOf, type Problem } from '../exit.js';
import { paint, type FormatOptions } from '../format.js';

export const LOG_NAMES = ['job.stdout', 'job.stderr', 'fn.stdout', 'fn.stderr', 'script'] as const;
export type LogName = (typeof LOG_NAMES)[number];

export interface LogsOptions extends CommandContext {
  /** Job id, or its start as `xpr ls` shows it (`name_abcdefghi...`) if that picks out one job. */
  id: string;
  /** Only these logs (default: all). */
  files?: readonly string[];
  /** Only the last N lines of each. */
  tail?: number;
}

export interface LogSection {
  name: LogName;
  /** Where it was read: a local path, or `<system>:<path>`. */
  path: string;
  /** Null when the file does not exist (yet). */
  text: string | null;
  /** Lines left out at the start (--tail). */
  omitted: number;
}

export interface LogsResult {
  id: string;
  name: string;
  status: string;
  system: string | null;
  /** Where the logs were read: the stage dir, or the job dir on the system while it runs there. */
  source: 'local' | 'remote';
  sections: LogSection[];
  problems: Problem[];
}

const FILES: Record<Exclude<LogName, 'script'>, string> = {
  'job.stdout': JOB_STDOUT, 'job.stderr': JOB_STDERR, 'fn.stdout': FN_STDOUT, 'fn.stderr': FN_STDERR,
};

export async function logs(opts: LogsOptions): Promise<LogsResult> {
  const wanted = pickNames(opts.files);
  return withProject(opts, async (project) => {
    if (!hasDatabase(project)) throw new XprError(`No job ${opts.id}: there is no job database at ${project.paths.dbPath}`);
    const job = findJob(project.store, opts.id);
    const result: LogsResult = {
      id: job.id, name: job.name, status: job.status, system: job.system, source: 'local', sections: [], problems: [],
    };
    let remote: { transport: Transport; dir: string; system: string } | undefined;
    const runsElsewhere = job.remoteDir && job.remoteDir !== job.stageDir && job.system;
    if (runsElsewhere && (job.status === 'submitted' || job.status === 'started')) {
      try {
        const system = openSystem(project, job.system!);
        if (!system.inPlace) remote = { transport: system.transport, dir: job.remoteDir!, system: job.system! };
      } catch (err) {
        // Still show what is here; the exit code says the system was not reached.
        result.problems.push(problemOf(err, job.system!));
      }
    }
    if (remote) result.source = 'remote';
    if (!remote && wanted.some((n) => n !== 'script') && !fs.existsSync(job.stageDir)) throw stageDirGone(job);
    for (const name of wanted) {
      const rel = name === 'script' ? undefined : FILES[name];
      let file: string;
      let text: string | null;
      if (name === 'script') {
        // The script is written locally before submission, so it is always read here.
        file = path.join(path.dirname(job.stageDir), SUBMIT_DIR, `${job.schedName ?? '(not submitted)'}.sh`);
        text = job.schedName ? readLocal(file) : null;
      } else if (remote) {
        file = path.posix.join(remote.dir, rel!);
        text = await readRemote(remote.transport, file);
        file = `${remote.system}:${file}`;
      } else {
        file = path.join(job.stageDir, rel!);
        text = readLocal(file);
      }
      result.sections.push({ name, path: file, ...tailOf(text, opts.tail) });
    }
    return result;
  }, { readonly: true });
}

function pickNames(files: readonly string[] | undefined): LogName[] {
  if (!files?.length) return [...LOG_NAMES];
  const names = files.flatMap((f) => f.split(',')).map((f) => f.trim()).filter(Boolean);
  for (const n of names) {
    if (!(LOG_NAMES as readonly string[]).includes(n)) throw new XprError(`Unknown log "${n}" (known: ${LOG_NAMES.join(', ')})`);
  }
  return names as LogName[];
}

/** The job with this id, or the one job whose id starts with it (a trailing `...` from `ls` is dropped). */
export function findJob(store: JobStore, given: string): JobRecord {
  const exact = store.get(given);
  if (exact) return exact;
  const prefix = given.replace(/(\.\.\.|…)$/, '');
  const found = prefix ? store.list({ id: [`${escapeRegex(prefix)}.*`] }) : [];
  if (found.length === 1) return found[0]!;
  if (found.length === 0) throw new XprError(`No job with id ${given} in ${store.path}`, { hint: 'See the ids with: xpr ls -l' });
  throw new XprError(`${found.length} jobs have ids starting with ${prefix}:\n${found.slice(0, 10).map((j) => `  ${j.id}`).join('\n')}`, {
    hint: 'Give more of the id (xpr ls -l shows whole ids).',
  });
}

/** Logs read here live in the stage dir: without it there is nothing to show, and "not yet" would mislead. */
function stageDirGone(job: JobRecord): XprError {
  const filter = shWord(escapeRegex(job.id));
  return new XprError(`The stage dir of job ${job.id} (${job.status}) is gone: ${job.stageDir}`, {
    hint: `Its logs went with it. A job that had succeeded is resubmitted by a rerun of its call; any job can be ` +
      `forgotten with xpr rm -i ${filter}, after which its call runs afresh.`,
  });
}

function readLocal(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

async function readRemote(transport: Transport, file: string): Promise<string | null> {
  const r = await transport.exec(`test -f ${shQuote(file)} && cat -- ${shQuote(file)}`);
  return r.code === 0 ? r.stdout : null;
}

function tailOf(text: string | null, n: number | undefined): { text: string | null; omitted: number } {
  if (text === null || n === undefined) return { text, omitted: 0 };
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  if (lines.length <= n) return { text, omitted: 0 };
  return { text: `${lines.slice(lines.length - n).join('\n')}\n`, omitted: lines.length - n };
}

export function renderLogs(r: LogsResult, fmt: FormatOptions): string {
  const out: string[] = [`Job ${r.id} (${r.status}${r.system ? ` on ${r.system}` : ''})` +
    (r.source === 'remote' ? ', read on its system while it runs' : '')];
  for (const s of r.sections) {
    out.push(paint(`==> ${s.name}: ${s.path} <==`, 'bold', fmt));
    if (s.text === null) out.push(paint('(no such file yet)', 'dim', fmt));
    else if (s.text === '') out.push(paint('(empty)', 'dim', fmt));
    else out.push((s.omitted ? paint(`(… ${s.omitted} earlier lines)`, 'dim', fmt) + '\n' : '') + s.text.replace(/\n$/, ''));
  }
  for (const p of r.problems) out.push(paint(`Could not read on ${p.system ?? '?'}: ${p.message}`, 'red', fmt));
  return out.join('\n');
}
