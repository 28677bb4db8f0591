// How long xpr waits for a remote command before it gives up. A dead connection is found by the
// keepalive (see keepalive.ts); these limits are for what keepalive cannot see: a host that still
// answers but whose command never ends (a hung file system under `tar`, a scheduler that does not
// reply). Giving up raises CommandTimeoutError, an UnreachableError: the engine then treats the
// outcome as unknown, as for a dropped connection, and never re-submits blindly.
import { UnreachableError, XprError } from '../errors.js';
import { sshCommand } from './known-hosts.js';

/** A status query (squeue, qstat…) answers in seconds; two minutes means the host or scheduler hangs. */
const STATUS_TIMEOUT_MS = 2 * 60_000;
/** A file transfer may run long, but not this long without moving a byte. */
const TRANSFER_STALL_MS = 10 * 60_000;
export const TIMEOUT_ENV = 'XPR_SSH_COMMAND_TIMEOUT';

export interface CommandTimeouts {
  /** Limit for one status query, from start to end (0: none). */
  statusMs: number;
  /** Limit for a transfer (stage, fetch) without any data moving (0: none). */
  transferStallMs: number;
}

/** The limits, both set by $XPR_SSH_COMMAND_TIMEOUT (seconds; 0 for none) when given. */
export function commandTimeouts(env: NodeJS.ProcessEnv = process.env): CommandTimeouts {
  const raw = env[TIMEOUT_ENV]?.trim();
  if (!raw) return { statusMs: STATUS_TIMEOUT_MS, transferStallMs: TRANSFER_STALL_MS };
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new XprError(`${TIMEOUT_ENV}="${raw}" is not a number of seconds`, {
      hint: `Set it to the seconds xpr waits for a remote command (0 for no limit), or unset it for the defaults (${STATUS_TIMEOUT_MS / 1000} s for a status query, ${TRANSFER_STALL_MS / 1000} s without progress for a transfer).`,
    });
  }
  return { statusMs: seconds * 1000, transferStallMs: seconds * 1000 };
}

/** xpr stopped waiting for a command; it may still be running on the host. */
export class CommandTimeoutError extends UnreachableError {
  /** `configFile`: the only ssh_config read (XPR_SSH_CONFIG), for the `ssh` command in the hint. */
  constructor(host: string, readonly command: string, readonly timeoutMs: number, stalled: boolean, configFile?: string) {
    const wait = stalled ? `moved no data for ${seconds(timeoutMs)}` : `did not finish within ${seconds(timeoutMs)}`;
    super(host, `A command on ${host} ${wait}, so xpr stopped waiting (it may still be running there): ${shorten(command)}`, {
      hint: `${host === 'localhost' ? 'Check that the file systems it uses respond. ' : `Check that the host and its file systems respond: ${sshCommand(host, configFile)} true. `}` +
        `If the command is only slow, allow it more time with ${TIMEOUT_ENV}=<seconds> (0 for no limit).`,
    });
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** A transfer's command lists every file: enough of it to recognise. */
function shorten(command: string): string {
  return command.length > 300 ? `${command.slice(0, 300)}…` : command;
}

/** What Watchdog.race rejects with once the watchdog has expired. */
export class GaveUp extends Error {
  constructor() {
    super('gave up waiting');
  }
}

/**
 * Gives up on an operation `ms` after it started, or (when `kick` is called on progress) after
 * the last progress. Without `ms` it never expires. `race` makes any wait end when it expires.
 */
export class Watchdog {
  private last = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private expired = false;
  private readonly onExpire = new Set<() => void>();

  constructor(readonly ms: number | undefined) {
    if (ms) this.arm(ms);
  }

  /** Progress was made: the limit counts from now. Cheap enough to call for every chunk. */
  readonly kick = (): void => {
    this.last = Date.now();
  };

  /** Call `f` on expiry (at once if expired already); returns a function that cancels it. */
  whenExpired(f: () => void): () => void {
    if (this.expired) {
      f();
      return () => undefined;
    }
    this.onExpire.add(f);
    return () => this.onExpire.delete(f);
  }

  /** Wait for `p`, or reject with GaveUp on expiry; a value that arrives too late goes to `undo`. */
  race<T>(p: Promise<T>, undo?: (late: T) => void): Promise<T> {
    if (!this.ms) return p;
    return new Promise<T>((resolve, reject) => {
      let lost = false;
      const cancel = this.whenExpired(() => {
        lost = true;
        reject(new GaveUp());
      });
      p.then((v) => {
        cancel();
        if (lost) undo?.(v);
        else resolve(v);
      }, (e: unknown) => {
        cancel();
        if (!lost) reject(e);
      });
    });
  }

  stop(): void {
    clearTimeout(this.timer);
    this.onExpire.clear();
  }

  private arm(delay: number): void {
    this.timer = setTimeout(() => {
      const idle = Date.now() - this.last;
      if (idle < this.ms!) return this.arm(this.ms! - idle);
      this.expired = true;
      for (const f of [...this.onExpire]) f();
      this.onExpire.clear();
    }, delay);
  }
}
