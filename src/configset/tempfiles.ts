// Temporary output files: `.<name>.tmp-<pid>-<random>-<host>` beside the file they will become. A
// process killed mid-write (SIGKILL, a node crash, a power cut) leaves one behind; the next run
// removes those whose writer is certainly gone: written on this host by a pid that is not alive.
// A live process's file is never touched, nor one written on another host that shares the dir.
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** This host, as it can stand in a file name. */
function hostTag(): string {
  return hostname().replace(/[^A-Za-z0-9.-]+/g, '_').slice(0, 64) || 'host';
}

/** A fresh temporary name for `path`, in the same dir (so the final rename is atomic). */
export function tempNameFor(path: string, tag = `${process.pid}-${randomBytes(3).toString('hex')}`): string {
  return join(dirname(path), `.${basename(path)}.tmp-${tag}-${hostTag()}`);
}

/** Pid and host of a temporary name for `path`; undefined for any other file. */
function parseTempName(path: string, name: string): { pid: number; host: string | undefined } | undefined {
  const prefix = `.${basename(path)}.tmp-`;
  if (!name.startsWith(prefix)) return undefined;
  // Names without a host come from xpr before hosts were recorded: they were written here.
  const m = /^(\d+)-[0-9a-f]+(?:-(.+))?$/.exec(name.slice(prefix.length));
  return m ? { pid: Number(m[1]), host: m[2] } : undefined;
}

/** True unless the process is certainly gone (EPERM: alive, owned by someone else). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes the temporary files for `path` left by dead processes of this host; returns their names.
 * Best effort: a dir that cannot be listed or a file that cannot be removed is left as it is.
 */
export function removeDeadTemps(path: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return [];
  }
  const here = hostTag();
  const removed: string[] = [];
  for (const name of names) {
    const t = parseTempName(path, name);
    if (!t || (t.host !== undefined && t.host !== here) || isAlive(t.pid)) continue;
    try {
      rmSync(join(dirname(path), name), { force: true });
      removed.push(name);
    } catch {
      // Not ours to fight over: the next run tries again.
    }
  }
  return removed;
}
