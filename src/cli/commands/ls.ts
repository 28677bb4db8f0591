// `xpr ls`: the jobs in the database that match the filters, oldest first. Reads only the columns it
// shows (no JSON columns) so that 100,000 jobs list in well under a second; never creates a database.
import type { ScalarField } from '../../store/jobstore.js';
import { JOB_STATUSES, type JobStatus } from '../../store/status.js';
import type { FailureReason, RemoteStatus } from '../../schedulers/types.js';
import { hasDatabase, knownSystems, selection, withProject, type CommandContext, type SelectOptions } from '../common.js';
import { formatTime, isoTime, plural, statusColour, table, type Column, type FormatOptions } from '../format.js';

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
  /** Seconds since the epoch. */
  createdAt: number;
  /** Last change of the record (status, remote status). */
  updatedAt: number;
  stageDir: string;
}

export interface LsResult {
  dbPath: string;
  long: boolean;
  jobs: JobRow[];
}

const FIELDS = [
  'id', 'name', 'status', 'system', 'remoteId', 'remoteStatus', 'remoteReason', 'createdAt', 'updatedAt', 'stageDir',
] as const satisfies readonly ScalarField[];

export async function ls(opts: LsOptions = {}): Promise<LsResult> {
  return withProject(opts, (project) => {
    const dbPath = project.paths.dbPath;
    const long = opts.long ?? false;
    if (!hasDatabase(project)) return { dbPath, long, jobs: [] };
    const store = project.store;
    const { filter } = selection(opts, () => knownSystems(project, store));
    const rows = store.listFields(filter, FIELDS);
    const jobs = new Array<JobRow>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      jobs[i] = {
        id: r[0] as string, name: r[1] as string, status: r[2] as JobStatus, system: r[3] as string | null,
        remoteId: r[4] as string | null, remoteStatus: r[5] as RemoteStatus | null,
        remoteReason: r[6] as FailureReason | null, createdAt: r[7] as number, updatedAt: r[8] as number,
        stageDir: r[9] as string,
      };
    }
    return { dbPath, long, jobs };
  });
}

const statusCol = (header: string): Column => ({ header, colour: statusColour });
const remoteCol: Column = { header: 'remote stat', colour: (t) => (t.includes('(') ? 'red' : undefined) };

export function renderLs(result: LsResult, fmt: FormatOptions): string {
  if (result.jobs.length === 0) return `No matching jobs in JobsDB at ${result.dbPath}`;
  const columns: Column[] = result.long
    ? [{ header: 'name' }, { header: 'id' }, { header: 'created' }, statusCol('status'), { header: 'since' },
      { header: 'remote_id@sys' }, remoteCol, { header: 'stage dir' }]
    : [{ header: 'id' }, statusCol('status'), { header: 'since' }, { header: 'remote_id@sys' }, remoteCol];
  const rows = result.jobs.map((j) => {
    const remote = `${j.remoteId ?? '-'}@${j.system ?? '-'}`;
    const rstat = j.remoteStatus ? (j.remoteReason ? `${j.remoteStatus}(${j.remoteReason})` : j.remoteStatus) : '-';
    const since = formatTime(j.updatedAt, fmt);
    return result.long
      ? [j.name, j.id, formatTime(j.createdAt, fmt), j.status, since, remote, rstat, j.stageDir]
      : [shortId(j), j.status, since, remote, rstat];
  });
  return `${table(columns, rows, fmt)}\n${summary(result.jobs)}`;
}

/** As ExPyRe shows ids: the name and the start of the hash, enough to tell jobs apart. */
export function shortId(j: Pick<JobRow, 'id' | 'name'>): string {
  const n = j.name.length + 10;
  return j.id.length > n + 3 ? `${j.id.slice(0, n)}...` : j.id;
}

function summary(jobs: readonly JobRow[]): string {
  const counts = new Map<string, number>();
  for (const j of jobs) counts.set(j.status, (counts.get(j.status) ?? 0) + 1);
  const parts = JOB_STATUSES.filter((s) => counts.has(s)).map((s) => `${counts.get(s)} ${s}`);
  return `${plural(jobs.length, 'job')}: ${parts.join(', ')}`;
}

/** The JSON form: times as ISO 8601 strings. */
export function lsJson(result: LsResult): unknown {
  return {
    db: result.dbPath,
    jobs: result.jobs.map((j) => ({ ...j, createdAt: isoTime(j.createdAt), updatedAt: isoTime(j.updatedAt) })),
  };
}
