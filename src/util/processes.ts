// Looking at other processes by pid (Linux /proc where it exists): whether one still runs, and
// its command line, so that a pid left in a file is not mistaken for a live process or reused one.
import fs from 'node:fs';

/** Whether a process with this id runs. A zombie (exited, not yet reaped by its parent) does not. */
export function alive(pid: number | undefined): boolean {
  if (pid === undefined || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces and parentheses.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    // Gone since the signal check, or no /proc here (then the signal check is all there is).
    return !fs.existsSync('/proc/self/stat');
  }
}

/** The command line of a process (Linux /proc), to tell one of ours from a reused pid. */
export function commandLine(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return undefined;
  }
}
