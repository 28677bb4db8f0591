// The per-project dir under a system's rundir, named as ExPyRe names it
// (`<rundir>/<hostname>-<project path with / as _>`), so that two projects, or the same project on
// two machines, never share remote job dirs.
import os from 'node:os';
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
 * ExPyRe's `rundir_extra`: host name and project path, so that two projects, or one project on two
 * machines, get different dirs. The host is the config's override, else $HOSTNAME, else the
 * machine's own name: many shells do not export HOSTNAME, and ExPyRe's fallback 'unknown_host'
 * would put every such machine's jobs in one dir. Jobs record the dir they were submitted to, so a
 * later run from another shell still finds them whatever this gives.
 */
export function rundirExtra(
  config: Pick<XprConfig, 'remote_rundir_submit_hostname'>,
  stageDir: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const project = (PROJECT_DIR_NAMES as readonly string[]).includes(path.basename(stageDir)) ? path.dirname(stageDir) : stageDir;
  const host = config.remote_rundir_submit_hostname ?? (env['HOSTNAME'] || machineName());
  return `${host}-${project.replace(/\//g, '_')}`;
}

function machineName(): string {
  try {
    return os.hostname() || 'unknown_host';
  } catch {
    return 'unknown_host';
  }
}
