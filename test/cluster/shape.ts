// The test cluster in a user's shape: which accounts the SSH end-to-end tests log in as, and the
// project a driver runs in. A driver here is like a user's: its project dir is private (mode 0700,
// so the cluster account cannot read it), `$HOSTNAME` is not in its environment, and its config.json
// is the one ExPyRe's README shows (see cluster-config.ts). In CI every part must be there.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureSlurm } from './slurm.js';
import { clusterUsers, sshdAvailable, type ClusterUser } from './sshd.js';

/** Why the SSH + SLURM cluster in a user's shape cannot run here, or undefined when it can. */
export async function clusterShapeUnavailable(): Promise<string | undefined> {
  const users = clusterUsers();
  return sshdAvailable() ?? (await ensureSlurm()) ?? (typeof users === 'string' ? users : undefined);
}

/** Throws in CI (a missing component must fail the run there); elsewhere warns once that `what` is skipped. */
export function skipOrFail(what: string, reason: string | undefined): void {
  if (reason === undefined) return;
  if (process.env.CI === 'true') throw new Error(`The test cluster must run in CI, but: ${reason}`);
  console.warn(`skipping ${what}: ${reason}`);
}

/** The cluster account named `name` (its login shell is in its record). */
export function clusterUser(name: string): ClusterUser {
  const users = clusterUsers();
  const user = typeof users === 'string' ? undefined : users.find((u) => u.name === name);
  return user ?? { name, shell: '?', home: path.join('/home', name) };
}

/** A private project dir for a driver, and the driver's environment: no HOSTNAME, no inherited job settings. */
export function driverProject(prefix: string): { dir: string; root: string; env: NodeJS.ProcessEnv } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix)); // mode 0700
  const root = path.join(dir, '_expyre');
  fs.mkdirSync(root);
  const env: NodeJS.ProcessEnv = { ...process.env, EXPYRE_ROOT: root };
  for (const k of ['HOSTNAME', 'WFL_EXPYRE_INFO', 'WFL_NUM_PYTHON_SUBPROCESSES', 'XPR_NUM_SUBPROCESSES']) delete env[k];
  return { dir, root, env };
}

/** A path on the cluster account's side, as root sees it (the rundir is relative to its home). */
export function remotePath(user: ClusterUser, remote: string): string {
  return path.isAbsolute(remote) ? remote : path.join(user.home, remote);
}
