// `xpr ls`: the jobs in the database that match the filters, oldest first. Reads only the columns it
// shows (no JSON columns) so that 100,000 jobs list in well under a second. Opens the database
// read-only: never creates one, works on a read-only project and beside a process that writes.
import type { JobFilter, JobStore, ScalarField } from '../../store/jobstore.js';
import { JOB_STATUSES, type JobStatus } from '../../store/status.js';
import type { FailureReason, RemoteStatus } from '../../schedulers/types.js';
import { hasDatabase, knownSystems, selection, withView, type CommandContext, type SelectOptions } from '../common.js';
import { formatTime, isoTime, itemTable, localOffsetSteps, plural, statusColour, type FormatOptions, type ItemColumn } from '../format.js';
import { jobTableText, type TextColumn } from '../ls-text.js';

export interface LsOptions extends CommandContext, SelectOptions {
  /** Long form: name, full id, creation time and stage dir too (`-l`). */
  long?: boolean;
}

/** One job as `ls` shows it. */
export interface JobRow {
  id: string;
  name: string;
  status: JobStatus;
  system: string | null;
  remoteId: string | null;
  remoteStatus: RemoteStatus | null;
  remoteReason: FailureReason | null;
  /** Last change of the record (status, remote status), seconds since the epoch. */
  updatedAt: number;
  /** Long form only. */
  createdAt?: number;
  /** Long form only. */
  stageDir?: string;
}

export interface LsResult {
  dbPath: string;
  long: boolean;
  jobs: JobRow[];
}

// What each form reads: the short form leaves out the long strings it does not show.
const SHORT_FIELDS = [
  'id', 'name', 'status', 'system', 'remoteId', 'remoteStatus', 'remoteReason', 'updatedAt',
] as const satisfies readonly ScalarField[];
const LONG_FIELDS = [...SHORT_FIELDS, 'createdAt', 'stageDir'] as const satisfies readonly ScalarField[];

export async function ls(opts: LsOptions = {}): Promise<LsResult> {
  return withView(opts, (project) => {
    const dbPath = project.paths.dbPath;
    const long = opts.long ?? false;
    // Filters are checked (a typo in a status is an error) even when there is nothing to list.
    const { filter } = selection(opts, () => knownSystems(project, hasDatabase(project) ? project.store : undefined));
    if (!hasDatabase(project)) return { dbPath, long, jobs: [] };
    return { dbPath, long, jobs: jobRows(project.store, filter, long) };
  }, { readonly: true });
}

/** The jobs `ls` shows, as rows of the columns it reads. */
function jobRows(store: JobStore, filter: JobFilter, long: boolean): JobRow[] {
  const rows = store.listFields(filter, long ? LONG_FIELDS : SHORT_FIELDS);
  const jobs = new Array<JobRow>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const job: JobRow = {
      id: r[0] as string, name: r[1] as string, status: r[2] as JobStatus, system: r[3] as string | null,
      remoteId: r[4] as string | null, remoteStatus: r[5] as RemoteStatus | null,
      remoteReason: r[6] as FailureReason | null, updatedAt: r[7] as number,
    };
    if (long) {
      job.createdAt = r[8] as number;
      job.stageDir = r[9] as string;
    }
    jobs[i] = job;
  }
  return jobs;
}

const remoteColour = (t: string) => (t.includes('(') ? 'red' as const : undefined);

export function renderLs(result: LsResult, fmt: FormatOptions): string {
  if (result.jobs.length === 0) return `No matching jobs in JobsDB at ${result.dbPath}`;
  const time = timeFormatter(fmt);
  const remote = (j: JobRow) => `${j.remoteId ?? '-'}@${j.system ?? '-'}`;
  const rstat = (j: JobRow) => (j.remoteStatus ? (j.remoteReason ? `${j.remoteStatus}(${j.remoteReason})` : j.remoteStatus) : '-');
  const status: ItemColumn<JobRow> = { header: 'status', cell: (j) => j.status, colour: statusColour };
  const since: ItemColumn<JobRow> = { header: 'since', cell: (j) => time(j.updatedAt) };
  const tail: ItemColumn<JobRow>[] = [
    { header: 'remote_id@sys', cell: remote },
    { header: 'remote stat', cell: rstat, colour: remoteColour },
  ];
  const columns: ItemColumn<JobRow>[] = result.long
    ? [{ header: 'name', cell: (j) => j.name }, { header: 'id', cell: (j) => j.id },
      { header: 'created', cell: (j) => time(j.createdAt ?? 0) }, status, since, ...tail,
      { header: 'stage dir', cell: (j) => j.stageDir ?? '' }]
    : [{ header: 'id', cell: shortId }, status, since, ...tail];
  return `${itemTable(columns, result.jobs, fmt)}\n${summary(result.jobs)}`;
}

/**
 * `renderLs(await ls(opts), fmt)` for text without colour, built inside the database where it can
 * be (ls-text.ts): over 100,000 jobs that makes one string instead of a million values. Undefined
 * when colour is wanted (the caller then renders the data).
 */
export async function lsText(opts: LsOptions, fmt: FormatOptions): Promise<string | undefined> {
  if (fmt.color) return undefined;
  return withView(opts, (project) => {
    const { filter } = selection(opts, () => knownSystems(project, hasDatabase(project) ? project.store : undefined));
    const dbPath = project.paths.dbPath;
    if (!hasDatabase(project)) return `No matching jobs in JobsDB at ${dbPath}`;
    return listingText(project.store, dbPath, filter, opts.long ?? false, fmt);
  }, { readonly: true });
}

/** lsText's answer from an open store (`dbPath` names it in the answer when nothing matches). */
export function listingText(store: JobStore, dbPath: string, filter: JobFilter, long: boolean, fmt: FormatOptions): string {
  const counts = store.statusCounts(filter);
  if (Object.keys(counts).length === 0) return `No matching jobs in JobsDB at ${dbPath}`;
  const table = jobTableText(store, filter, textColumns(long, fmt));
  if (table === undefined) return renderLs({ dbPath, long, jobs: jobRows(store, filter, long) }, fmt);
  return `${table}\n${summaryOf(counts)}`;
}

/** The columns of renderLs, for ls-text.ts. */
function textColumns(long: boolean, fmt: FormatOptions): TextColumn[] {
  const zone = fmt.utc ? 0 : localOffsetSteps();
  const tail: TextColumn[] = [
    { header: 'status', field: 'status' },
    { header: 'since', field: 'updatedAt', timeOffset: zone },
    { header: 'remote_id@sys', field: 'remoteId', join: { with: '@', field: 'system' } },
    { header: 'remote stat', field: 'remoteStatus', paren: 'remoteReason' },
  ];
  return long
    ? [{ header: 'name', field: 'name' }, { header: 'id', field: 'id' }, { header: 'created', field: 'createdAt', timeOffset: zone },
      ...tail, { header: 'stage dir', field: 'stageDir' }]
    : [{ header: 'id', field: 'id', shortId: SHORT_ID_HASH }, ...tail];
}

/** formatTime with a one-entry cache: jobs recorded or updated together share their second. */
function timeFormatter(fmt: FormatOptions): (seconds: number) => string {
  let lastSecond = NaN;
  let lastText = '';
  return (seconds) => {
    const s = Math.floor(seconds);
    if (s !== lastSecond) {
      lastSecond = s;
      lastText = formatTime(s, fmt);
    }
    return lastText;
  };
}

/** How much of the hash a short id keeps. */
const SHORT_ID_HASH = 10;

/** As ExPyRe shows ids: the name and the start of the hash, enough to tell jobs apart. */
export function shortId(j: Pick<JobRow, 'id' | 'name'>): string {
  const n = j.name.length + SHORT_ID_HASH;
  return j.id.length > n + 3 ? `${j.id.slice(0, n)}...` : j.id;
}

function summary(jobs: readonly JobRow[]): string {
  const counts: Partial<Record<JobStatus, number>> = {};
  for (const j of jobs) counts[j.status] = (counts[j.status] ?? 0) + 1;
  return summaryOf(counts);
}

function summaryOf(counts: Partial<Record<JobStatus, number>>): string {
  const present = JOB_STATUSES.filter((s) => counts[s]);
  const total = present.reduce((n, s) => n + counts[s]!, 0);
  return `${plural(total, 'job')}: ${present.map((s) => `${counts[s]} ${s}`).join(', ')}`;
}

/** The JSON form: times as ISO 8601 strings. */
export function lsJson(result: LsResult): unknown {
  return {
    db: result.dbPath,
    jobs: result.jobs.map((j) => ({
      ...j, updatedAt: isoTime(j.updatedAt), ...(j.createdAt !== undefined ? { createdAt: isoTime(j.createdAt) } : {}),
    })),
  };
}
