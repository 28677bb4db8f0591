// The per-project dir under a system's rundir, named as ExPyRe names it
// (`<rundir>/<hostname>-<project path with / as _>`), so that two projects, or the same project on
// two machines, never share remote job dirs.
import path from 'node:path';
import { PROJECT_DIR_NAMES } from './discover.js';
import type { SystemConfig, XprConfig } from './schema.js';

/** Dir holding this project's job dirs on `system` (the stage dir itself when jobs run in place). */
export function projectRundir(
  system: SystemConfig,
  config: Pick<XprConfig, 'remote_rundir_submit_hostname'>,
  stageDir: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (system.runsInPlace) return stageDir;
  const base = system.rundir === '/' ? '' : system.rundir;
  return `${base}/${rundirExtra(config, stageDir, env)}`;
}

/**
 * ExPyRe's `rundir_extra`: host name ($HOSTNAME unless the config overrides it; unexported in many
 * shells, hence ExPyRe's fallback 'unknown_host') and the project path, both needed to find a job's
 * dir again from a later run.
 */
export function rundirExtra(
  config: Pick<XprConfig, 'remote_rundir_submit_hostname'>,
  stageDir: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const project = (PROJECT_DIR_NAMES as readonly string[]).includes(path.basename(stageDir)) ? path.dirname(stageDir) : stageDir;
  const host = config.remote_rundir_submit_hostname ?? env['HOSTNAME'] ?? 'unknown_host';
  return `${host}-${project.replace(/\//g, '_')}`;
}
