// A job's record as it was created, kept in its stage dir (`_xpr_job.json`). The call file says what
// to run, but not the restart hash's parts nor the info only creation knew (the module, the output
// files to fetch back); with this file `xpr db_rebuild` records the job again exactly as it was made,
// so that a rerun of the script re-attaches to it.
import fs from 'node:fs';
import path from 'node:path';
import { JOB_FILE, type StagedJob } from '../runner/protocol.js';
import type { NewJob } from './jobstore.js';

/** Write the job file of a job about to be recorded (its stage dir exists). */
export function writeJobFile(job: NewJob): void {
  const staged: StagedJob = {
    version: 1, id: job.id, name: job.name, hash: job.hash, hashParts: job.hashParts ?? {}, info: job.info ?? {},
  };
  fs.writeFileSync(path.join(job.stageDir, JOB_FILE), JSON.stringify(staged));
}

/**
 * The job file of a stage dir; undefined when there is none (a dir staged before xpr wrote it) or
 * when it does not hold a job file's fields (then the dir's name is all there is to go by).
 */
export function readJobFile(stageDir: string): StagedJob | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(path.join(stageDir, JOB_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const j = parsed as Partial<StagedJob>;
  const strings = (o: unknown): o is Record<string, string> =>
    typeof o === 'object' && o !== null && !Array.isArray(o) && Object.values(o).every((v) => typeof v === 'string');
  if (j.version !== 1 || typeof j.id !== 'string' || typeof j.name !== 'string' || typeof j.hash !== 'string' ||
    !strings(j.hashParts) || typeof j.info !== 'object' || j.info === null || Array.isArray(j.info)) return undefined;
  return { version: 1, id: j.id, name: j.name, hash: j.hash, hashParts: j.hashParts, info: j.info };
}
