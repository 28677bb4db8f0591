// Versioned schema of jobs.db. Each entry moves the schema up one version (PRAGMA user_version);
// never edit a released entry, append a new one.

export const MIGRATIONS: readonly string[] = [
  // v1: the jobs table, with an index for every column that `xpr ls` filters or that restart looks up.
  `CREATE TABLE jobs (
     id            TEXT PRIMARY KEY,
     name          TEXT NOT NULL,
     hash          TEXT NOT NULL,
     hash_parts    TEXT NOT NULL DEFAULT '{}',
     status        TEXT NOT NULL,
     system        TEXT,
     stage_dir     TEXT NOT NULL,
     remote_dir    TEXT,
     sched_name    TEXT,
     remote_id     TEXT,
     remote_status TEXT,
     remote_reason TEXT,
     submit_intent REAL,
     created_at    REAL NOT NULL,
     updated_at    REAL NOT NULL,
     info          TEXT NOT NULL DEFAULT '{}'
   );
   CREATE INDEX jobs_name   ON jobs(name);
   CREATE INDEX jobs_status ON jobs(status);
   CREATE INDEX jobs_system ON jobs(system);
   CREATE INDEX jobs_hash   ON jobs(hash);`,
  // v2: who holds a job's submit intent (`<host>:<pid>`), so that another driver of the same script
  // can tell a submission in flight (wait for it) from one a crash cut short (find the job by name).
  `ALTER TABLE jobs ADD COLUMN submit_owner TEXT;`,
];
