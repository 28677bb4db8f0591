// The job database, `_expyre/jobs.db`. The only importer of better-sqlite3.
//
// WAL mode and a busy timeout let a driver script, `xpr sync` and `xpr ls` use the file at once;
// every write is one IMMEDIATE transaction with parameterized SQL, and status changes are
// compare-and-set on the current status, so two processes racing on one job cannot both win.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { XprError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';
import { isJobStatus, type JobStatus } from './status.js';
import type { FailureReason, RemoteStatus } from '../schedulers/types.js';

export interface JobRecord {
  id: string;
  name: string;
  hash: string;
  /** Hashes of the parts of the call (code, args, inputs), to explain a restart miss. */
  hashParts: Record<string, string>;
  status: JobStatus;
  system: string | null;
  /** Local stage dir, `<project>/_expyre/run_<id>`. */
  stageDir: string;
  /** Job dir on the system (equal to stageDir for the built-in local system). */
  remoteDir: string | null;
  /** Unique scheduler job name, fixed when submission starts. */
  schedName: string | null;
  remoteId: string | null;
  remoteStatus: RemoteStatus | null;
  remoteReason: FailureReason | null;
  /** Time (s since epoch) a submission was started and not yet recorded; non-null after a crash mid-submit. */
  submitIntent: number | null;
  createdAt: number;
  updatedAt: number;
  /** Free-form JSON: resources, node choice, error summary. */
  info: Record<string, unknown>;
}

/** The columns of a job a listing needs, named as in JobRecord. */
export type JobSummary = Pick<JobRecord, 'id' | 'name' | 'status' | 'system' | 'remoteId' | 'remoteStatus' |
  'remoteReason' | 'schedName' | 'createdAt' | 'updatedAt'>;

const SUMMARY_COLUMNS = 'id, name, status, system, remote_id AS remoteId, remote_status AS remoteStatus, ' +
  'remote_reason AS remoteReason, sched_name AS schedName, created_at AS createdAt, updated_at AS updatedAt';

export type NewJob = Pick<JobRecord, 'id' | 'name' | 'hash' | 'stageDir'> &
  Partial<Pick<JobRecord, 'hashParts' | 'status' | 'info'>>;

export type JobPatch = Partial<Omit<JobRecord, 'id' | 'createdAt' | 'updatedAt'>>;

/** Filters as `xpr ls` takes them; regexps are anchored at both ends, lists are OR-ed. */
export interface JobFilter {
  id?: readonly string[];
  name?: readonly string[];
  status?: readonly JobStatus[];
  system?: readonly string[];
  hash?: string;
}

interface Row {
  id: string; name: string; hash: string; hash_parts: string; status: string; system: string | null;
  stage_dir: string; remote_dir: string | null; sched_name: string | null; remote_id: string | null;
  remote_status: string | null; remote_reason: string | null; submit_intent: number | null;
  created_at: number; updated_at: number; info: string;
}

const COLUMNS: Record<keyof JobPatch, keyof Row> = {
  name: 'name', hash: 'hash', hashParts: 'hash_parts', status: 'status', system: 'system',
  stageDir: 'stage_dir', remoteDir: 'remote_dir', schedName: 'sched_name', remoteId: 'remote_id',
  remoteStatus: 'remote_status', remoteReason: 'remote_reason', submitIntent: 'submit_intent', info: 'info',
};

/** Fields of a job record stored in a column of their own (not JSON). */
export type ScalarField = Exclude<keyof JobRecord, 'hashParts' | 'info'>;

const SCALAR_COLUMNS: Record<ScalarField, keyof Row> = {
  id: 'id', name: 'name', hash: 'hash', status: 'status', system: 'system', stageDir: 'stage_dir',
  remoteDir: 'remote_dir', schedName: 'sched_name', remoteId: 'remote_id', remoteStatus: 'remote_status',
  remoteReason: 'remote_reason', submitIntent: 'submit_intent', createdAt: 'created_at', updatedAt: 'updated_at',
};

const BUSY_TIMEOUT_MS = 30_000;

export class JobStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly regexCache = new Map<string, RegExp>();
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(dbPath: string, db: Database.Database) {
    this.path = dbPath;
    this.db = db;
  }

  /** Open (creating the file and its dir if needed) and migrate the database. */
  static open(dbPath: string, options: { readonly?: boolean } = {}): JobStore {
    let db: Database.Database;
    try {
      if (!options.readonly) fs.mkdirSync(path.dirname(dbPath), { recursive: true });
      db = new Database(dbPath, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
    } catch (err) {
      throw new XprError(`Cannot open job database ${dbPath}: ${(err as Error).message}`, {
        hint: 'Check that the directory exists and is writable, or point --dbfile / EXPYRE_ROOT elsewhere.',
        cause: err,
      });
    }
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (!options.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    }
    const store = new JobStore(dbPath, db);
    db.function('xpr_match', { deterministic: true }, (pattern: unknown, value: unknown) =>
      store.regex(String(pattern)).test(String(value)) ? 1 : 0);
    if (!options.readonly) store.migrate();
    return store;
  }

  private migrate(): void {
    const apply = this.db.transaction(() => {
      const version = this.db.pragma('user_version', { simple: true }) as number;
      if (version > MIGRATIONS.length) {
        throw new XprError(`Job database ${this.path} has schema version ${version}, newer than this xpr knows (${MIGRATIONS.length})`, {
          hint: 'Upgrade xpr, or use another EXPYRE_ROOT.',
        });
      }
      for (let v = version; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]!);
      if (version < MIGRATIONS.length) this.db.pragma(`user_version = ${MIGRATIONS.length}`);
    });
    apply.immediate();
  }

  /** Prepared statements are cached by their SQL: preparing costs more than running a small one. */
  private sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      // Filters with IN lists make many shapes; keep the cache from growing without bound.
      if (this.statements.size > 256) this.statements.clear();
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  private regex(pattern: string): RegExp {
    let re = this.regexCache.get(pattern);
    if (!re) {
      try {
        re = new RegExp(`^(?:${pattern})$`);
      } catch (err) {
        throw new XprError(`Invalid regular expression "${pattern}": ${(err as Error).message}`);
      }
      this.regexCache.set(pattern, re);
    }
    return re;
  }

  insert(job: NewJob): JobRecord {
    this.insertMany([job]);
    return this.get(job.id)!;
  }

  /** Record many jobs in one transaction (a 10,000-chunk run records in one go). */
  insertMany(jobs: readonly NewJob[]): void {
    const stmt = this.sql(
      `INSERT INTO jobs (id, name, hash, hash_parts, status, stage_dir, created_at, updated_at, info)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const now = Date.now() / 1000;
    this.db.transaction(() => {
      for (const j of jobs) {
        stmt.run(j.id, j.name, j.hash, JSON.stringify(j.hashParts ?? {}), j.status ?? 'created', j.stageDir,
          now, now, JSON.stringify(j.info ?? {}));
      }
    }).immediate();
  }

  get(id: string): JobRecord | undefined {
    const row = this.sql('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return row && toRecord(row);
  }

  /** The newest job with this hash whose status lets a new identical call re-attach to it. */
  findByHash(hash: string, statuses: readonly JobStatus[]): JobRecord | undefined {
    const row = this.sql(
      `SELECT * FROM jobs WHERE hash = ? AND status IN (${statuses.map(() => '?').join(',')})
       ORDER BY created_at DESC LIMIT 1`).get(hash, ...statuses) as Row | undefined;
    return row && toRecord(row);
  }

  /** For each hash, the newest job with it in one of `statuses` (one query per 500 hashes). */
  findByHashes(hashes: readonly string[], statuses: readonly JobStatus[]): Map<string, JobRecord> {
    const out = new Map<string, JobRecord>();
    const unique = [...new Set(hashes)];
    for (let i = 0; i < unique.length; i += 500) {
      const chunk = unique.slice(i, i + 500);
      const rows = this.sql(
        `SELECT * FROM jobs WHERE hash IN (${chunk.map(() => '?').join(',')})
         AND status IN (${statuses.map(() => '?').join(',')}) ORDER BY created_at, rowid`).all(...chunk, ...statuses) as Row[];
      for (const row of rows) out.set(row.hash, toRecord(row));
    }
    return out;
  }

  /** Jobs matching every given filter, oldest first. */
  list(filter: JobFilter = {}): JobRecord[] {
    const { sql, params } = whereClause(filter);
    const rows = this.sql(`SELECT * FROM jobs ${sql} ORDER BY created_at, rowid`).all(...params) as Row[];
    return rows.map(toRecord);
  }

  /**
   * Some scalar fields of matching jobs, oldest first, one array per job in the order of `fields`.
   * No JSON columns and no object per row: what `xpr ls` needs to list 100,000 jobs quickly.
   */
  listFields(filter: JobFilter, fields: readonly ScalarField[]): unknown[][] {
    const { sql, params } = whereClause(filter);
    const cols = fields.map((f) => SCALAR_COLUMNS[f]).join(', ');
    return this.db.prepare(`SELECT ${cols} FROM jobs ${sql} ORDER BY created_at, rowid`).raw().all(...params) as unknown[][];
  }

  /** Names of the systems that jobs were sent to, sorted. */
  systems(): string[] {
    return this.db.prepare('SELECT DISTINCT system FROM jobs WHERE system IS NOT NULL ORDER BY system').pluck().all() as string[];
  }

  /**
   * Like `list` without the JSON columns (hash parts, info): what a listing shows, at a fraction of
   * the cost over 100,000 jobs.
   */
  summaries(filter: JobFilter = {}): JobSummary[] {
    const { sql, params } = whereClause(filter);
    return this.sql(`SELECT ${SUMMARY_COLUMNS} FROM jobs ${sql} ORDER BY created_at, rowid`).all(...params) as JobSummary[];
  }

  count(filter: JobFilter = {}): number {
    const { sql, params } = whereClause(filter);
    return (this.sql(`SELECT count(*) AS n FROM jobs ${sql}`).get(...params) as { n: number }).n;
  }

  /**
   * Change fields of a job. With `ifStatus`, only when its current status is one of those
   * (compare-and-set); returns whether the row was changed.
   */
  update(id: string, patch: JobPatch, ifStatus?: readonly JobStatus[]): boolean {
    return this.updateMany([id], patch, ifStatus) === 1;
  }

  /** Same patch for many jobs in one transaction; returns how many rows changed. */
  updateMany(ids: readonly string[], patch: JobPatch, ifStatus?: readonly JobStatus[]): number {
    const keys = Object.keys(patch) as (keyof JobPatch)[];
    const sets = keys.map((k) => `${COLUMNS[k]} = ?`);
    sets.push('updated_at = ?');
    const values = keys.map((k) => toColumn(k, patch[k]));
    values.push(Date.now() / 1000);
    const cond = ifStatus ? ` AND status IN (${ifStatus.map(() => '?').join(',')})` : '';
    const stmt = this.sql(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ?${cond}`);
    let changed = 0;
    this.db.transaction(() => {
      for (const id of ids) changed += stmt.run(...values, id, ...(ifStatus ?? [])).changes;
    }).immediate();
    return changed;
  }

  /** Merge keys into a job's `info` JSON inside one transaction. */
  mergeInfo(id: string, extra: Record<string, unknown>): void {
    this.db.transaction(() => {
      const cur = this.get(id);
      if (!cur) return;
      this.sql('UPDATE jobs SET info = ?, updated_at = ? WHERE id = ?')
        .run(JSON.stringify({ ...cur.info, ...extra }), Date.now() / 1000, id);
    }).immediate();
  }

  delete(ids: readonly string[]): number {
    const stmt = this.sql('DELETE FROM jobs WHERE id = ?');
    let n = 0;
    this.db.transaction(() => { for (const id of ids) n += stmt.run(id).changes; }).immediate();
    return n;
  }

  /**
   * Clear what can keep the database stuck for others: fold the WAL back into the main file.
   * SQLite releases its own locks when a process dies, so this is all `xpr db_unlock` needs.
   */
  checkpoint(): { busy: boolean; walFrames: number } {
    const [r] = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number }[];
    return { busy: (r?.busy ?? 0) !== 0, walFrames: r?.log ?? 0 };
  }

  close(): void {
    this.db.close();
  }
}

function whereClause(filter: JobFilter): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const anyOf = (column: string, patterns: readonly string[] | undefined) => {
    if (!patterns?.length) return;
    parts.push(`(${patterns.map(() => `xpr_match(?, ${column})`).join(' OR ')})`);
    params.push(...patterns);
  };
  const inList = (column: string, values: readonly string[] | undefined) => {
    if (!values?.length) return;
    parts.push(`${column} IN (${values.map(() => '?').join(',')})`);
    params.push(...values);
  };
  anyOf('id', filter.id);
  anyOf('name', filter.name);
  inList('status', filter.status);
  inList('system', filter.system);
  if (filter.hash !== undefined) { parts.push('hash = ?'); params.push(filter.hash); }
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', params };
}

function toColumn(key: keyof JobPatch, value: unknown): unknown {
  if (key === 'hashParts' || key === 'info') return JSON.stringify(value ?? {});
  return value ?? null;
}

function toRecord(r: Row): JobRecord {
  if (!isJobStatus(r.status)) throw new XprError(`Job ${r.id} has an unknown status "${r.status}" in the database`);
  return {
    id: r.id, name: r.name, hash: r.hash, hashParts: JSON.parse(r.hash_parts) as Record<string, string>,
    status: r.status, system: r.system, stageDir: r.stage_dir, remoteDir: r.remote_dir,
    schedName: r.sched_name, remoteId: r.remote_id, remoteStatus: r.remote_status as RemoteStatus | null,
    remoteReason: r.remote_reason as FailureReason | null, submitIntent: r.submit_intent,
    createdAt: r.created_at, updatedAt: r.updated_at, info: JSON.parse(r.info) as Record<string, unknown>,
  };
}
