// SshTransport: commands and files over xpr's built-in SSH client. Each transport uses the one
// connection per host that the whole process shares (ssh-registry.ts); the connection
// (ssh-connection.ts) logs in (ssh-auth.ts), reconnects and caps channels. Every command runs
// under bash whatever the login shell. Only ssh-connection.ts and ssh-auth.ts import ssh2.
import { UnreachableError, XprError } from '../errors.js';
import { shQuote } from '../util/shell.js';
import { sshCommand } from './known-hosts.js';
import { downloadCommand, existingNames, receiveTar, sendTar, uploadCommand } from './remote-tar.js';
import { awaitExit, type SshConnection } from './ssh-connection.js';
import { acquireConnection } from './ssh-registry.js';
import { resolveTarget, type SshOptions } from './ssh-target.js';
import type { ExecOptions, ExecResult, TransferOptions, Transport } from './types.js';

export type { SshOptions } from './ssh-target.js';
export { MAX_CHANNELS } from './ssh-connection.js';
export { closeAllSshConnections, connectionsOpened } from './ssh-registry.js';

export class SshTransport implements Transport {
  readonly host: string;
  private conn: SshConnection | undefined;

  /** Resolves `host` through ssh_config now; connects on first use. */
  constructor(host: string, options: SshOptions = {}) {
    this.host = host;
    const target = resolveTarget(host, options);
    if (target.settings.proxyCommand) {
      throw new UnreachableError(host, `${host} is reached through a ProxyCommand, which xpr's built-in SSH does not run`, {
        hint: 'Set XPR_SSH=system to use the ssh program for this host (or use ProxyJump instead).',
      });
    }
    this.conn = acquireConnection(target);
  }

  /** Most channels this transport's connection has had open at once. */
  get peakChannels(): number {
    return this.connection().limiter.peak;
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const full = options.cwd ? `cd ${shQuote(options.cwd)} && ${command}` : command;
    const run = { command: full, idempotent: options.idempotent ?? true, timeoutMs: options.timeoutMs };
    return this.connection().withChannel(run, (ch, lost) => {
      const done = awaitExit(ch, lost, { collectStdout: true });
      ch.end(options.input ?? '');
      return done;
    });
  }

  async upload(localDir: string, names: readonly string[], remoteDir: string, options: TransferOptions = {}): Promise<void> {
    const present = existingNames(localDir, names);
    if (present.length === 0) {
      this.check(await this.exec(`mkdir -p -- ${shQuote(remoteDir)}`, { timeoutMs: options.stallTimeoutMs }), `Creating ${remoteDir}`);
      return;
    }
    const run = { command: uploadCommand(remoteDir), idempotent: true, timeoutMs: options.stallTimeoutMs, stall: true };
    const r = await this.connection().withChannel(run, async (ch, lost, progress) => {
      const done = awaitExit(ch, lost, { collectStdout: true });
      const sent = sendTar(localDir, present, ch, progress);
      sent.catch(() => ch.close()); // a local read error: stop the remote tar instead of leaving it waiting
      return settleBoth(done, sent);
    });
    this.check(r, `Uploading ${present.length} file(s) from ${localDir} to ${remoteDir}`);
  }

  async download(remoteDir: string, names: readonly string[], localDir: string, options: TransferOptions = {}): Promise<void> {
    if (names.length === 0) return;
    const run = { command: downloadCommand(remoteDir, names), idempotent: true, timeoutMs: options.stallTimeoutMs, stall: true };
    const r = await this.connection().withChannel(run, async (ch, lost, progress) => {
      const done = awaitExit(ch, lost, { collectStdout: false });
      ch.end();
      const received = receiveTar(ch, localDir);
      ch.on('data', progress); // after receiveTar's own listener, so it sees every chunk too
      return settleBoth(done, received);
    });
    this.check(r, `Downloading from ${remoteDir} to ${localDir}`);
  }

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    await conn?.release();
  }

  private connection(): SshConnection {
    if (!this.conn) throw new XprError(`The SSH transport to ${this.host} was closed and cannot be used again`);
    return this.conn;
  }

  private check(r: ExecResult, what: string): void {
    if (r.code === 0) return;
    throw new XprError(`${what} on ${this.host} failed (exit ${r.code ?? 'signal'}): ${r.stderr.trim()}`, {
      hint: `Check the remote dir and free space with: ${sshCommand(this.host, this.conn?.target.configFile)}`,
    });
  }
}

/** Wait for both; the channel's outcome wins (a dropped connection must surface as such). */
async function settleBoth(done: Promise<ExecResult>, other: Promise<void>): Promise<ExecResult> {
  const [d, o] = await Promise.allSettled([done, other]);
  if (d.status === 'rejected') throw d.reason;
  if (o.status === 'rejected') throw o.reason;
  return d.value;
}
