// How many cores a worker offers when told 'auto': the CPUs this process may actually use, not the
// machine's. A container or a batch job often sees every CPU of the node but may run on few: its
// affinity mask (what `os.availableParallelism()` reports) and its cgroup CPU quota (v2 `cpu.max`,
// v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`) each cap it. A stage told 16 cores while it may use
// 2 would start 16 threads that fight over 2 CPUs. Pure reading of files, no npm package: the
// remote worker uses this inside a batch job.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface CoreCount {
  cores: number;
  /** How the number was found, for the line each worker logs at start. */
  how: string;
}

export interface CoreProbe {
  /** CPUs in this process's affinity mask; default `os.availableParallelism()`. */
  affinity?: number;
  /** Root of the cgroup file systems; default `/sys/fs/cgroup`. */
  cgroupRoot?: string;
  /** Text of `/proc/self/cgroup`; default read from there. */
  procCgroup?: string;
}

/** The cores a worker offers: a number as given, 'auto' as this process may use. */
export function resolveCores(value: number | 'auto', probe: CoreProbe = {}): CoreCount {
  if (value !== 'auto') return { cores: value, how: 'as given' };
  return availableCores(probe);
}

/** The CPUs this process may use: its affinity, capped by the tightest cgroup CPU quota above it. */
export function availableCores(probe: CoreProbe = {}): CoreCount {
  const affinity = probe.affinity ?? os.availableParallelism();
  const quota = cgroupQuota(probe.cgroupRoot ?? '/sys/fs/cgroup', probe.procCgroup ?? readOr('/proc/self/cgroup', ''));
  if (quota === undefined || quota.cpus >= affinity) {
    return { cores: affinity, how: `affinity ${affinity} CPUs${quota ? `; ${quota.file} allows ${round(quota.cpus)}` : ''}` };
  }
  // A quota of 1.5 CPUs gives one full core and a half: offer the whole one, never 0.
  const cores = Math.max(1, Math.floor(quota.cpus));
  return { cores, how: `${quota.file} allows ${round(quota.cpus)} of ${affinity} CPUs in the affinity mask` };
}

interface Quota {
  cpus: number;
  file: string;
}

/**
 * The tightest CPU quota on this process's cgroup path: a limit set on a parent applies to every
 * group below it, so each level up to the root is read.
 */
export function cgroupQuota(root: string, procCgroup: string): Quota | undefined {
  let tightest: Quota | undefined;
  const consider = (q: Quota | undefined): void => {
    if (q && (!tightest || q.cpus < tightest.cpus)) tightest = q;
  };
  for (const line of procCgroup.split('\n')) {
    // `hierarchy-id:controllers:path`; v2 is `0::/path`, v1 names its controllers.
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, id, controllers, groupPath] = m as unknown as [string, string, string, string];
    if (id === '0' && controllers === '') {
      for (const dir of upwards(root, groupPath)) consider(readCpuMax(path.join(dir, 'cpu.max')));
    } else if (controllers.split(',').includes('cpu')) {
      for (const mount of v1Mounts(root, controllers)) {
        for (const dir of upwards(mount, groupPath)) consider(readCfsQuota(dir));
      }
    }
  }
  return tightest;
}

/** v2 `cpu.max`: `max 100000` (no limit) or `<quota> <period>` in microseconds. */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return undefined;
  const q = Number(quota);
  const p = Number(period ?? 100000);
  return q > 0 && p > 0 ? q / p : undefined;
}

function readCpuMax(file: string): Quota | undefined {
  const text = readOr(file, undefined);
  const cpus = text === undefined ? undefined : parseCpuMax(text);
  return cpus === undefined ? undefined : { cpus, file };
}

/** v1: `cpu.cfs_quota_us` is -1 for no limit. */
function readCfsQuota(dir: string): Quota | undefined {
  const file = path.join(dir, 'cpu.cfs_quota_us');
  const quota = Number(readOr(file, '-1').trim());
  const period = Number(readOr(path.join(dir, 'cpu.cfs_period_us'), '100000').trim());
  return quota > 0 && period > 0 ? { cpus: quota / period, file } : undefined;
}

/** Where a v1 hierarchy may be mounted: `cpu,cpuacct`, `cpu`, or as its controllers are listed. */
function v1Mounts(root: string, controllers: string): string[] {
  const names = [controllers, 'cpu,cpuacct', 'cpuacct,cpu', 'cpu'];
  return [...new Set(names)].map((n) => path.join(root, n)).filter((d) => fs.existsSync(d));
}

/** `base/a/b/c`, `base/a/b`, `base/a`, `base`: a cgroup and each of its parents. */
function upwards(base: string, groupPath: string): string[] {
  const parts = groupPath.split('/').filter((p) => p !== '' && p !== '..' && p !== '.');
  const dirs: string[] = [];
  for (let n = parts.length; n >= 0; n--) dirs.push(path.join(base, ...parts.slice(0, n)));
  return dirs;
}

function readOr<T extends string | undefined>(file: string, fallback: T): string | T {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

const round = (n: number): string => String(Math.round(n * 100) / 100);
