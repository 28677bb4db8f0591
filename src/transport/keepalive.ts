// Finding a dead or hung SSH server, as ssh's ServerAliveInterval/ServerAliveCountMax do. TCP
// keepalive cannot: a server whose sshd is stopped or stuck still acknowledges TCP. So after
// `intervalMs` without a byte from the server, the client asks it to answer (a global request with
// want-reply, which OpenSSH answers even when it does not know it), again every `intervalMs`, and
// once `intervalMs × countMax` has passed without a byte the connection is taken as lost.
//
// The timer is unref'd: an idle connection must not keep a finished script's process alive. While
// an operation is under way its socket is referenced (see SshConnection.updateHold in ssh-connection.ts), so
// the process lives and the checks run exactly when a hang would otherwise block a caller.

/** Defaults when ssh_config sets neither (OpenSSH's own defaults are "off" and 3). */
export const SERVER_ALIVE_INTERVAL_MS = 15_000;
export const SERVER_ALIVE_COUNT_MAX = 3;

export class Keepalive {
  private lastHeard = Date.now();
  private lastAsked = 0;
  private readonly budgetMs: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly intervalMs: number,
    countMax: number,
    /** Ask the server for an answer. */
    private readonly ask: () => void,
    /** Called once when the server has been silent for the whole budget. */
    private readonly dead: (silentMs: number) => void,
  ) {
    this.budgetMs = intervalMs * Math.max(1, countMax);
    // Checked a few times per interval so that a hang is found within the budget plus a quarter
    // interval, not a whole one.
    this.timer = setInterval(() => this.check(), Math.max(50, intervalMs / 4));
    this.timer.unref();
  }

  /** The server sent something: it is alive. Called for every chunk, so it only records the time. */
  readonly heard = (): void => {
    this.lastHeard = Date.now();
  };

  stop(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    const now = Date.now();
    const silent = now - this.lastHeard;
    if (silent >= this.budgetMs) {
      this.stop();
      this.dead(silent);
    } else if (silent >= this.intervalMs && now - this.lastAsked >= this.intervalMs) {
      this.lastAsked = now;
      this.ask();
    }
  }
}
