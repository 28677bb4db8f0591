// Pool workers must not outlive the process that started them: nobody is left to take their
// results, and on a cluster node they would hold the job's CPUs after the job is gone. A worker
// whose parent closed the channel ends itself, but a worker busy in a long synchronous op never
// sees that event. So each pool starts one `sh` that reads worker pids from a pipe held by the
// pool's process only; when that process ends, however it ends (SIGKILL included), the kernel
// closes the pipe, `read` sees end of file, and the shell ends the workers it still knows of.
// One small shell per pool costs far less than a watchdog thread in every worker.
// Pure (node builtins only): the job runner bundles it.
import { spawn, type ChildProcess } from 'node:child_process';

/** How long SIGTERM gets before SIGKILL (an op's own handler may tidy up in between). */
export const REAPER_TERM_GRACE_S = 1;

// `+PID` adds a worker, `-PID` forgets one that ended (so a recycled pid is never hit), `done` ends
// the reaper without killing anything. POSIX sh only: no sed, no arrays.
const SCRIPT = `
pids=' '
while IFS= read -r line; do
  case $line in
    done) exit 0 ;;
    +*) pids="$pids\${line#+} " ;;
    -*) p="\${line#-}"
        case $pids in *" $p "*) pids="\${pids%% $p *} \${pids#* $p }" ;; esac ;;
  esac
done
set -- $pids
[ $# -gt 0 ] || exit 0
kill -TERM "$@" 2>/dev/null
sleep ${REAPER_TERM_GRACE_S}
kill -KILL "$@" 2>/dev/null
exit 0
`;

export class Reaper {
  private readonly child: ChildProcess | undefined;

  constructor() {
    try {
      this.child = spawn('sh', ['-c', SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'] });
    } catch {
      this.child = undefined;
    }
    // Without sh the workers still end with a free event loop; the pool must not fail for it.
    this.child?.on('error', () => {});
    this.child?.stdin?.on('error', () => {});
    // Neither the shell nor its pipe may keep this process alive.
    this.child?.unref();
    (this.child?.stdin as { unref?: () => void } | null | undefined)?.unref?.();
  }

  add(pid: number | undefined): void {
    if (pid !== undefined) this.write(`+${pid}`);
  }

  forget(pid: number | undefined): void {
    if (pid !== undefined) this.write(`-${pid}`);
  }

  /** The pool closed normally: end the shell, killing nothing. */
  dismiss(): void {
    this.write('done');
    this.child?.stdin?.end();
  }

  private write(line: string): void {
    const stdin = this.child?.stdin;
    if (stdin && !stdin.destroyed && stdin.writable) stdin.write(`${line}\n`);
  }
}
