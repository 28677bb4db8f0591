// The job database, `_expyre/jobs.db`. The only importer of better-sqlite3.
//
// WAL mode and a busy timeout let a driver script, `xpr sync` and `xpr ls` use the file at once;
// every write is one IMMEDIATE transaction with parameterized SQL, and status changes are
// compare-and-set on the current status, so two processes racing on one job cannot both win.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { XprError } from '../errors.js';
import { databaseError } from './db-errors.js';
import { MIGRATIONS } from './migrations.js';
import { openReadOnly } from './read-only.js';
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
  /** Process holding the submit intent, `<host>:<pid>`; null with no intent (or one recorded by an older xpr). */
  submitOwner: string | null;
  createdAt: number;
  updatedAt: number;
  /** Free-form JSON: resources, node choice, error summary. */
  info: Record<string, unknown>;
}

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
  submit_owner: string | null; created_at: number; updated_at: number; info: string;
}

const COLUMNS: Record<keyof JobPatch, keyof Row> = {
  name: 'name', hash: 'hash', hashParts: 'hash_parts', status: 'status', system: 'system',
  stageDir: 'stage_dir', remoteDir: 'remote_dir', schedName: 'sched_name', remoteId: 'remote_id',
  remoteStatus: 'remote_status', remoteReason: 'remote_reason', submitIntent: 'submit_intent',
  submitOwner: 'submit_owner', info: 'info',
};

/** Fields of a job record stored in a column of their own (not JSON). */
export type ScalarField = Exclude<keyof JobRecord, 'hashParts' | 'info'>;

const SCALAR_COLUMNS: Record<ScalarField, keyof Row> = {
  id: 'id', name: 'name', hash: 'hash', status: 'status', system: 'system', stageDir: 'stage_dir',
  remoteDir: 'remote_dir', schedName: 'sched_name', remoteId: 'remote_id', remoteStatus: 'remote_status',
  remoteReason: 'remote_reason', submitIntent: 'submit_intent', submitOwner: 'submit_owner',
  createdAt: 'created_at', updatedAt: 'updated_at',
};

/** The order of every listing: oldest first, jobs recorded in the same instant as they were recorded. */
export const OLDEST_FIRST = 'created_at, rowid';

/** How long a statement waits for another process's write to end (XPR_DB_BUSY_TIMEOUT, in ms). */
function busyTimeoutMs(): number {
  const set = Number(process.env['XPR_DB_BUSY_TIMEOUT']);
  return Number.isFinite(set) && set >= 0 ? set : 30_000;
}

/**
 * Put the database in WAL mode. A new file starts in rollback-journal mode. While another process
 * holds its write lock (two drivers started together on a fresh project: the other is switching
 * it too, or making the schema), SQLite fails the switch with SQLITE_BUSY at once instead of
 * calling the busy handler: this process holds a read lock by then, and waiting with it could
 * deadlock. So the switch is tried again here, for as long as any other statement would wait.
 */
function switchToWal(db: Database.Database, waitMs: number): void {
  const end = Date.now() + waitMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let delayMs = 2; ; delayMs = Math.min(delayMs * 2, 100)) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code !== 'SQLITE_BUSY' || Date.now() >= end) throw err;
      Atomics.wait(pause, 0, 0, delayMs);
    }
  }
}

/**
 * The store with every method's SQLite errors said in a user's terms (db-errors.ts): one wrapper
 * here instead of a try/catch in each method, so a method added later cannot forget it.
 */
function withDatabaseErrors(store: JobStore): JobStore {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      let guarded = wrapped.get(key);
      if (!guarded) {
        const method = value as (...args: unknown[]) => unknown;
        guarded = function guardedMethod(this: unknown, ...args: unknown[]): unknown {
          try {
            return method.apply(this, args);
          } catch (err) {
            throw databaseError(err, target.path);
          }
        };
        wrapped.set(key, guarded);
      }
      return guarded;
    },
  });
}

export class JobStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly regexCache = new Map<string, RegExp>();
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(dbPath: string, db: Database.Database) {
    this.path = dbPath;
    this.db = db;
  }

  /**
   * Stage dirs beside jobs.db are recorded relative to it, so that a project moved or copied as a
   * whole still finds its jobs' files (absolute ones, from a `local_stage_dir` elsewhere or an older
   * xpr, stay as they are).
   */
  private storedStageDir(stageDir: string): string {
    const rel = path.relative(path.dirname(this.path), stageDir);
    return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : stageDir;
  }

  private toRecord(row: Row): JobRecord {
    return toRecord(row, path.isAbsolute(row.stage_dir) ? row.stage_dir : path.join(path.dirname(this.path), row.stage_dir));
  }

  /**
   * Open (creating the file and its dir if needed) and migrate the database. Its SQLite errors
   * (locked, read-only, damaged, full) come out of every method as XprErrors naming the file.
   *
   * `readonly`: for commands that only read. The file must exist; nothing is created or written, not
   * even where this process could (read-only.ts says how), and an older schema is read as it is.
   * `busyTimeoutMs`: how long a statement waits for another process's write (default
   * XPR_DB_BUSY_TIMEOUT, else 30 s).
   */
  static open(dbPath: string, options: { readonly?: boolean; busyTimeoutMs?: number } = {}): JobStore {
    const readonly = options.readonly ?? false;
    let db: Database.Database;
    try {
      if (readonly) {
        db = openReadOnly(dbPath);
      } else {
        fs.mkdirSync(path.dirname(dbPath), { recursive: true });
        db = new Database(dbPath);
      }
    } catch (err) {
      const said = databaseError(err, dbPath);
      if (said !== err || err instanceof XprError) throw said;
      throw new XprError(`Cannot open job database ${dbPath}: ${(err as Error).message}`, {
        hint: readonly ? `Check that this process may read it (ls -l ${dbPath}), or point --dbfile / EXPYRE_ROOT elsewhere.`
          : 'Check that the directory exists and is writable, or point --dbfile / EXPYRE_ROOT elsewhere.',
        cause: err,
      });
    }
    try {
      const waitMs = options.busyTimeoutMs ?? busyTimeoutMs();
      db.pragma(`busy_timeout = ${waitMs}`);
      if (!readonly) {
        switchToWal(db, waitMs);
        db.pragma('synchronous = NORMAL');
      }
      let store = new JobStore(dbPath, db);
      if (!readonly) store.migrate();
      else if (store.schemaVersion() === 0 && store.isBlank()) {
        // A file with no schema yet holds no jobs; a reader must not make the schema in it, so an
        // empty database in memory answers for it.
        db.close();
        db = new Database(':memory:');
        store = new JobStore(dbPath, db);
        store.migrate();
      }
      store.defineFunctions();
      return withDatabaseErrors(store);
    } catch (err) {
      db.close();
      throw databaseError(err, dbPath);
    }
  }

  /** SQL functions the queries use: regexp filters, and stage dirs as paths a user can open. */
  private defineFunctions(): void {
    this.db.function('xpr_match', { deterministic: true }, (pattern: unknown, value: unknown) =>
      this.regex(String(pattern)).test(String(value)) ? 1 : 0);
    const base = path.dirname(this.path);
    this.db.function('xpr_stage_dir', { deterministic: true }, (stored: unknown) =>
      (typeof stored === 'string' && !path.isAbsolute(stored) ? path.join(base, stored) : stored));
  }

  /**
   * The SQL expression of a field with its value as a JobRecord holds it, for queries that name
   * fields (`aggregate`). A stage dir stored relative to jobs.db's dir comes out as the path a user
   * can open, as `path.join` makes it: by plain concatenation for the normalized paths the store
   * writes (a call into JavaScript for each of 100,000 rows would cost more than reading them),
   * through xpr_stage_dir for anything else (`.` or `..` segments, doubled or trailing slashes).
   */
  columnOf(field: ScalarField): string {
    if (field !== 'stageDir') return SCALAR_COLUMNS[field];
    if (path.sep !== '/') return 'xpr_stage_dir(stage_dir)';
    // path.join(base, 'x') without its 'x': '' for base '.', '/' for base '/'.
    const prefix = path.join(path.dirname(this.path), 'x').slice(0, -1).replaceAll("'", "''");
    const padded = "('/' || stage_dir || '/')";
    return `CASE WHEN substr(stage_dir, 1, 1) = '/' THEN stage_dir ` +
      `WHEN ${padded} GLOB '*/.*' OR ${padded} GLOB '*//*' THEN xpr_stage_dir(stage_dir) ELSE '${prefix}' || stage_dir END`;
  }

  /** The database has no tables at all (a new or emptied file). */
  private isBlank(): boolean {
    return this.db.prepare('SELECT count(*) FROM sqlite_master').pluck().get() === 0;
  }

  /**
   * Bring the schema up to date. Looked at with a read first: an up-to-date database is not written
   * (so opening it needs no write lock, and works while another process holds one).
   */
  private migrate(): void {
    if (this.schemaVersion() === MIGRATIONS.length) return;
    const apply = this.db.transaction(() => {
      const version = this.schemaVersion();
      for (let v = version; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]!);
      if (version < MIGRATIONS.length) this.db.pragma(`user_version = ${MIGRATIONS.length}`);
    });
    apply.immediate();
  }

  private schemaVersion(): number {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new XprError(`Job database ${this.path} has schema version ${version}, newer than this xpr knows (${MIGRATIONS.length})`, {
        hint: 'Upgrade xpr, or use another EXPYRE_ROOT.',
      });
    }
    return version;
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
        stmt.run(j.id, j.name, j.hash, JSON.stringify(j.hashParts ?? {}), j.status ?? 'created', this.storedStageDir(j.stageDir),
          now, now, JSON.stringify(j.info ?? {}));
      }
    }).immediate();
  }

  /**
   * Record jobs with every field as given, times included: `xpr db_rebuild` puts back what the stage
   * dirs tell, in the order they were made. One transaction.
   */
  restore(jobs: readonly JobRecord[]): void {
    const fields = Object.keys(SCALAR_COLUMNS) as ScalarField[];
    const columns = [...fields.map((f) => SCALAR_COLUMNS[f]), 'hash_parts', 'info'];
    const stmt = this.sql(`INSERT INTO jobs (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
    this.db.transaction(() => {
      for (const j of jobs) {
        const values = fields.map((f) => (f === 'stageDir' ? this.storedStageDir(j.stageDir) : j[f]));
        stmt.run(...values, JSON.stringify(j.hashParts), JSON.stringify(j.info));
      }
    }).immediate();
  }

  /** What SQLite's quick check finds wrong with the file; empty when it is sound. */
  quickCheck(): string[] {
    const lines = this.db.prepare('PRAGMA quick_check').pluck().all() as string[];
    return lines.length === 1 && lines[0] === 'ok' ? [] : lines;
  }

  get(id: string): JobRecord | undefined {
    const row = this.sql('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return row && this.toRecord(row);
  }

  /** For each hash, the newest job with it in one of `statuses` (one query per 500 hashes). */
  findByHashes(hashes: readonly string[], statuses: readonly JobStatus[]): Map<string, JobRecord> {
    const out = new Map<string, JobRecord>();
    const unique = [...new Set(hashes)];
    for (let i = 0; i < unique.length; i += 500) {
      const chunk = unique.slice(i, i + 500);
      const rows = this.sql(
        `SELECT * FROM jobs WHERE hash IN (${chunk.map(() => '?').join(',')})
         AND status IN (${statuses.map(() => '?').join(',')}) ORDER BY ${OLDEST_FIRST}`).all(...chunk, ...statuses) as Row[];
      for (const row of rows) out.set(row.hash, this.toRecord(row));
    }
    return out;
  }

  /** For each name, the newest job with it (one query per 500 names). */
  latestByNames(names: readonly string[]): Map<string, JobRecord> {
    const out = new Map<string, JobRecord>();
    for (let i = 0; i < names.length; i += 500) {
      const chunk = names.slice(i, i + 500);
      // Rows are appended as jobs are created, so the largest rowid of a name is its newest job.
      const rows = this.sql(`SELECT * FROM jobs WHERE rowid IN
        (SELECT max(rowid) FROM jobs WHERE name IN (${chunk.map(() => '?').join(',')}) GROUP BY name)`).all(...chunk) as Row[];
      for (const row of rows) out.set(row.name, this.toRecord(row));
    }
    return out;
  }

  /** Jobs matching every given filter, oldest first. */
  list(filter: JobFilter = {}): JobRecord[] {
    const { sql, params } = whereClause(filter);
    const rows = this.sql(`SELECT * FROM jobs ${sql} ORDER BY ${OLDEST_FIRST}`).all(...params) as Row[];
    return rows.map((r) => this.toRecord(r));
  }

  /**
   * Some scalar fields of matching jobs, oldest first, one array per job in the order of `fields`.
   * No JSON columns and no object per row: what `xpr ls` needs to list 100,000 jobs quickly.
   */
  listFields(filter: JobFilter, fields: readonly ScalarField[]): unknown[][] {
    const { sql, params } = whereClause(filter);
    const cols = fields.map((f) => this.columnOf(f)).join(', ');
    return this.db.prepare(`SELECT ${cols} FROM jobs ${sql} ORDER BY ${OLDEST_FIRST}`).raw().all(...params) as unknown[][];
  }

  /**
   * One row of SQL over the jobs matching `filter`, made of aggregates such as max() or
   * group_concat(): for a caller that reduces 100,000 jobs to a little data inside SQLite instead of
   * reading every row. `select` names fields through `columnOf` and orders by `OLDEST_FIRST`; its
   * parameters come before the filter's.
   */
  aggregate(filter: JobFilter, select: string, params: readonly unknown[] = []): unknown[] {
    const { sql, params: whereParams } = whereClause(filter);
    return this.sql(`SELECT ${select} FROM jobs ${sql}`).raw().get(...params, ...whereParams) as unknown[];
  }

  /** How many matching jobs are in each status (statuses with none left out). */
  statusCounts(filter: JobFilter = {}): Partial<Record<JobStatus, number>> {
    const { sql, params } = whereClause(filter);
    const rows = this.sql(`SELECT status, count(*) FROM jobs ${sql} GROUP BY status`).raw().all(...params) as [JobStatus, number][];
    return Object.fromEntries(rows);
  }

  /** Names of the systems that jobs were sent to, sorted. */
  systems(): string[] {
    return this.db.prepare('SELECT DISTINCT system FROM jobs WHERE system IS NOT NULL ORDER BY system').pluck().all() as string[];
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

  /**
   * Run `fn` as one IMMEDIATE transaction: from its first read to its last write no other process can
   * write, so a lookup and the insert that depends on it cannot be split by another driver's insert.
   * `fn` must be synchronous; the store's own writes inside it join the transaction.
   */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * Take jobs for a submission by `owner`: of `ids`, those still `created` with no submit intent get
   * the intent (now), the owner and `patchOf(id, k, n)` (k-th of the n taken), in one transaction.
   * Returns the ids taken, in order; the others are being submitted by someone else already.
   */
  claimForSubmit(ids: readonly string[], owner: string, patchOf: (id: string, k: number, n: number) => JobPatch): string[] {
    const isFree = this.sql("SELECT 1 FROM jobs WHERE id = ? AND status = 'created' AND submit_intent IS NULL").pluck();
    return this.transaction(() => {
      const free = ids.filter((id) => isFree.get(id) !== undefined);
      const now = Date.now() / 1000;
      free.forEach((id, k) => this.update(id, { ...patchOf(id, k, free.length), submitIntent: now, submitOwner: owner }));
      return free;
    });
  }

  /**
   * Renew the intent of jobs `owner` still holds (still `created`, intent still its own), just before
   * it runs the submit command. Returns the ids renewed: another process may have taken over an
   * intent it thought abandoned, and then must be left to it.
   */
  renewClaim(ids: readonly string[], owner: string): string[] {
    const stmt = this.sql("UPDATE jobs SET submit_intent = ?, updated_at = ? WHERE id = ? AND status = 'created' AND submit_owner = ?");
    return this.transaction(() => {
      const now = Date.now() / 1000;
      return ids.filter((id) => stmt.run(now, now, id, owner).changes === 1);
    });
  }

  /**
   * Drop the submit intent of `created` jobs whose intent is held by `owner` (null: an intent recorded
   * without one). Returns the ids released; the others changed hands or status meanwhile.
   */
  releaseIntents(ids: readonly string[], owner: string | null): string[] {
    const stmt = this.sql(`UPDATE jobs SET submit_intent = NULL, sched_name = NULL, submit_owner = NULL, updated_at = ?
      WHERE id = ? AND status = 'created' AND submit_owner IS ?`);
    return this.transaction(() => {
      const now = Date.now() / 1000;
      return ids.filter((id) => stmt.run(now, id, owner).changes === 1);
    });
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

function toRecord(r: Row, stageDir: string): JobRecord {
  if (!isJobStatus(r.status)) throw new XprError(`Job ${r.id} has an unknown status "${r.status}" in the database`);
  return {
    id: r.id, name: r.name, hash: r.hash, hashParts: JSON.parse(r.hash_parts) as Record<string, string>,
    status: r.status, system: r.system, stageDir, remoteDir: r.remote_dir,
    schedName: r.sched_name, remoteId: r.remote_id, remoteStatus: r.remote_status as RemoteStatus | null,
    remoteReason: r.remote_reason as FailureReason | null, submitIntent: r.submit_intent, submitOwner: r.submit_owner,
    createdAt: r.created_at, updatedAt: r.updated_at, info: JSON.parse(r.info) as Record<string, unknown>,
  };
}
