// `xpr watch`: a live view of the selected jobs — counts by status and the state of each job still
// going — refreshed every few seconds. Each refresh is one `refreshJobs` over the ongoing jobs (one
// status query per system); nothing is queried when nothing is ongoing, the next refresh waits a
// full interval after the previous one ended, and the interval cannot go below one second.
//
// Refreshing records what the systems say, so watch writes the database when it can. Where it cannot
// (a read-only project) it reads it read-only, afresh each time, and shows the states as recorded by
// whoever runs the jobs, without asking the systems.
import { refreshJobs } from '../../job/engine.js';
import { JobStore, type JobRecord } from '../../store/jobstore.js';
import { canWrite } from '../../store/read-only.js';
import { JOB_STATUSES, type JobStatus } from '../../store/status.js';
import {
  groupBy, hasDatabase, knownSystems, openSystem, selection, withProject, type CommandContext, type SelectOptions,
} from '../common.js';
import { UsageError, problemOf, type Problem } from '../exit.js';
import { formatTime, paint, statusColour, table, type FormatOptions } from '../format.js';
import { shortId } from './ls.js';

export const WATCH_DEFAULT_INTERVAL = 5;
export const WATCH_MIN_INTERVAL = 1;

export interface WatchOptions extends CommandContext, SelectOptions {
  /** Seconds between refreshes (default 5, at least 1). */
  interval?: number;
  /** One refresh, then return. */
  once?: boolean;
  /** Return once no selected job is submitted or started. */
  untilDone?: boolean;
  /** Called with every snapshot (the CLI draws it). */
  onSnapshot?: (s: WatchSnapshot) => void;
  /** Stops watching (Ctrl-C); the last snapshot is returned. */
  signal?: AbortSignal;
  /** Clock for tests. */
  now?: () => number;
}

export interface WatchJob {
  id: string;
  name: string;
  status: JobStatus;
  system: string | null;
  remoteStatus: string | null;
  remoteReason: string | null;
}

export interface WatchSnapshot {
  /** Seconds since the epoch. */
  at: number;
  interval: number;
  total: number;
  counts: Partial<Record<JobStatus, number>>;
  /** Jobs still going, and those that ended while watching (most recent first). */
  jobs: WatchJob[];
  /** Jobs whose status changed in this refresh. */
  changed: number;
  /** The database is read-only to this process: states as recorded, systems not asked. */
  readOnly: boolean;
  problems: Problem[];
}

const ONGOING: readonly JobStatus[] = ['created', 'submitted', 'started'];

export async function watch(opts: WatchOptions = {}): Promise<WatchSnapshot> {
  const interval = opts.interval ?? WATCH_DEFAULT_INTERVAL;
  if (!Number.isFinite(interval) || interval < WATCH_MIN_INTERVAL) {
    throw new UsageError(`--interval must be at least ${WATCH_MIN_INTERVAL} s (got ${interval})`, {
      hint: 'Each refresh queries every system with ongoing jobs once; more often than that only loads the scheduler.',
    });
  }
  const now = opts.now ?? (() => Date.now() / 1000);
  return withProject(opts, async (project) => {
    const ended = new Map<string, WatchJob>();
    let last: WatchSnapshot | undefined;
    selection(opts, () => []); // a typo in a filter is an error at once, not after the first refresh
    const readOnly = !canWrite(project.paths.dbPath);
    for (;;) {
      const snap: WatchSnapshot = { at: now(), interval, total: 0, counts: {}, jobs: [], changed: 0, readOnly, problems: [] };
      // Read-only, each refresh reads the database afresh: an open read-only store may be a copy.
      const store = !hasDatabase(project) ? undefined : readOnly ? JobStore.open(project.paths.dbPath, { readonly: true }) : project.store;
      if (store) {
        try {
          const sel = selection(opts, () => knownSystems(project, store));
          const going = store.list({ ...sel.filter, status: onlyOngoing(sel.filter.status) });
          const live = readOnly ? [] : going.filter((j) => j.status !== 'created' && j.system);
          const after = new Map<string, JobRecord>();
          for (const [name, group] of groupBy(live, (j) => j.system!)) {
            try {
              openSystem(project, name);
              for (const r of await refreshJobs(project, group)) after.set(r.id, r);
            } catch (err) {
              snap.problems.push(problemOf(err, name));
            }
          }
          const stillGoing: WatchJob[] = [];
          for (const j of going) {
            const r = after.get(j.id) ?? j;
            if (r.status !== j.status) snap.changed++;
            if (ONGOING.includes(r.status)) stillGoing.push(view(r));
            else ended.set(r.id, view(r));
          }
          const counts = store.statusCounts(sel.filter);
          for (const s of JOB_STATUSES) {
            const n = counts[s] ?? 0;
            if (n) snap.counts[s] = n;
            snap.total += n;
          }
          snap.jobs = [...stillGoing, ...[...ended.values()].reverse()];
        } finally {
          if (readOnly) store.close();
        }
      }
      last = snap;
      opts.onSnapshot?.(snap);
      // Created jobs wait for a script to submit them; watching them would never end.
      const ongoing = (snap.counts.submitted ?? 0) + (snap.counts.started ?? 0);
      if (opts.once || opts.signal?.aborted || (opts.untilDone && ongoing === 0)) return last;
      if (!(await pause(interval * 1000, opts.signal))) return last;
    }
  });
}

function onlyOngoing(status: readonly JobStatus[] | undefined): JobStatus[] {
  return status ? ONGOING.filter((s) => status.includes(s)) : [...ONGOING];
}

function view(r: JobRecord): WatchJob {
  return { id: r.id, name: r.name, status: r.status, system: r.system, remoteStatus: r.remoteStatus, remoteReason: r.remoteReason };
}

/** Wait, or stop early when aborted; resolves whether the full time passed. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) { resolve(false); return; }
    const done = (full: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(full);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function countsText(s: WatchSnapshot, fmt: FormatOptions): string {
  const parts = JOB_STATUSES.filter((st) => s.counts[st]).map((st) => `${paint(st, statusColour(st), fmt)}=${s.counts[st]}`);
  return parts.length ? parts.join(' ') : 'no jobs';
}

/** One line per refresh, for logs and pipes. */
export function renderWatchLine(s: WatchSnapshot, fmt: FormatOptions): string {
  const problems = s.problems.map((p) => ` [${p.system ?? '?'}: ${p.unreachable ? 'unreachable' : 'error'}]`).join('');
  const readOnly = s.readOnly ? ' [read-only: as recorded]' : '';
  return `${formatTime(s.at, fmt)} ${countsText(s, fmt)}${s.changed ? ` (${s.changed} changed)` : ''}${readOnly}${problems}`;
}

/** The full screen for a terminal: counts, then one row per job, cut to `rows` lines. */
export function renderWatchScreen(s: WatchSnapshot, fmt: FormatOptions, rows = 40): string {
  const head = [
    `xpr watch: every ${s.interval} s, last at ${formatTime(s.at, fmt)} (Ctrl-C to stop)`,
    `${s.total} jobs: ${countsText(s, fmt)}`,
    ...(s.readOnly ? [paint('The job database is read-only here: states as recorded, systems not asked.', 'yellow', fmt)] : []),
    ...s.problems.map((p) => paint(`${p.system ?? '?'}: ${p.message.split('\n')[0]}`, 'red', fmt)),
    '',
  ];
  const room = Math.max(3, rows - head.length - 2);
  const shown = s.jobs.slice(0, room);
  const body = shown.length
    ? table(
      [{ header: 'id' }, { header: 'status', colour: statusColour }, { header: 'system' }, { header: 'remote stat' }],
      shown.map((j) => [shortId(j), j.status, j.system ?? '-',
        j.remoteStatus ? `${j.remoteStatus}${j.remoteReason ? `(${j.remoteReason})` : ''}` : '-']),
      fmt)
    : 'Nothing going on.';
  const more = s.jobs.length > shown.length ? `\n… and ${s.jobs.length - shown.length} more` : '';
  return `${head.join('\n')}\n${body}${more}`;
}

export function renderWatch(s: WatchSnapshot, fmt: FormatOptions): string {
  return fmt.tty ? renderWatchScreen(s, fmt) : renderWatchLine(s, fmt);
}
