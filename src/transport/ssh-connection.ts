// One SSH connection to one endpoint (ssh2): logging in (host key check, then the Authenticator),
// reconnecting after a drop, finding a dead or hung server with keepalives, and running commands
// on channels capped below sshd's MaxSessions. A command that must not run twice (a submission) is
// never re-run blindly. Errors from ssh2 and the network become UnreachableError,
// OutcomeUnknownError or CommandTimeoutError here, with the host named and a command to check it.
// Which connections exist is the registry's business (ssh-registry.ts), not this module's.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { Client as SshClient, ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { UnreachableError, XprError } from '../errors.js';
import { bashForAnyShell } from '../util/shell.js';
import {
  checkHostKey, hostKeyError, knownHostsLine, knownHostsName, parseKnownHosts, preferredKeyTypes, sshCommand, type KnownHostEntry,
} from './known-hosts.js';
import { Keepalive, SERVER_ALIVE_COUNT_MAX, SERVER_ALIVE_INTERVAL_MS } from './keepalive.js';
import { Limiter } from './limiter.js';
import { OutcomeUnknownError } from './outcome.js';
import { Authenticator } from './ssh-auth.js';
import type { SshTarget } from './ssh-target.js';
import { CommandTimeoutError, GaveUp, Watchdog } from './timeouts.js';
import type { ExecResult } from './types.js';

const { Client } = ssh2;

/** Channels open at once per connection; OpenSSH's MaxSessions default is 10. */
export const MAX_CHANNELS = 8;
/** Waits before each connection attempt: 5 tries over about 9 s, enough for an sshd restart. */
const CONNECT_DELAYS_MS = [0, 500, 1000, 2500, 5000];
/** Runs of one operation across dropped connections. */
const MAX_OP_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 20_000;
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa',
];

let opened = 0;

/** SSH connections (including jump hosts) this process has logged in over; for tests and benchmarks. */
export function connectionsOpened(): number {
  return opened;
}

/**
 * Where a connection gets the (shared) connection to its jump host, and says that it has closed.
 * The registry implements it and hands it in, so that the registry imports this module and not
 * the other way round.
 */
export interface ConnectionPool {
  acquire(target: SshTarget): SshConnection;
  closed(conn: SshConnection): void;
}

/** The connection went away; `started` says whether the command may have reached the server. */
class ConnectionLost extends Error {
  constructor(readonly started: boolean, cause?: unknown) {
    super('SSH connection lost', { cause });
  }
}

/** One command to run on a channel, and how long to wait for it. */
export interface ChannelRun {
  /** As the caller wrote it (bash); what errors show. */
  command: string;
  /** Whether it may run again after a dropped connection (see ExecOptions.idempotent). */
  idempotent: boolean;
  /** Give up this long after the start, or with `stall` after the last progress; none if unset. */
  timeoutMs?: number | undefined;
  stall?: boolean;
}

/** Uses the channel; calls `progress` whenever data moves (for a stall timeout). */
export type ChannelUser<T> = (ch: ClientChannel, lost: () => boolean, progress: () => void) => Promise<T>;

export class SshConnection {
  refs = 0;
  readonly limiter = new Limiter(MAX_CHANNELS);
  private client: SshClient | undefined;
  private connecting: Promise<SshClient> | undefined;
  private jump: SshConnection | undefined;
  private closed = false;
  /** Our own TCP socket to the host (none when reached through a jump host's channel). */
  private tcp: net.Socket | undefined;
  /** Operations under way on this connection, and connections that reach their host through it. */
  private busy = 0;
  private dependents = 0;
  private holdingJump = false;

  constructor(readonly target: SshTarget, private readonly pool: ConnectionPool) {}

  /**
   * An idle connection must not keep a finished script's process alive, and a busy one must: the
   * socket is referenced only while an operation (or a connection through this one) is under way.
   * That is also why keepalive is TCP's (kernel timers) rather than ssh2's (a referenced interval).
   */
  private updateHold(): void {
    const held = this.busy + this.dependents > 0;
    if (held) this.tcp?.ref();
    else this.tcp?.unref();
    if (this.jump && held !== this.holdingJump) {
      this.holdingJump = held;
      this.jump.hold(held ? 1 : -1);
    }
  }

  /** A connection through this one (ProxyJump) is busy (+1) or idle again (-1). */
  hold(delta: number): void {
    this.dependents += delta;
    this.updateHold();
  }

  /**
   * Open a channel running `run.command` and hand it to `use`, reconnecting and retrying as
   * allowed; throws CommandTimeoutError once `run.timeoutMs` has passed, whatever it was waiting for.
   */
  async withChannel<T>(run: ChannelRun, use: ChannelUser<T>): Promise<T> {
    const watch = new Watchdog(run.timeoutMs);
    try {
      return await this.attempts(run, use, watch);
    } catch (e) {
      if (e instanceof GaveUp) {
        throw new CommandTimeoutError(this.target.label, run.command, run.timeoutMs ?? 0, run.stall ?? false, this.target.configFile);
      }
      throw e;
    } finally {
      watch.stop();
    }
  }

  private async attempts<T>(run: ChannelRun, use: ChannelUser<T>, watch: Watchdog): Promise<T> {
    let last: ConnectionLost | undefined;
    for (let attempt = 1; attempt <= MAX_OP_ATTEMPTS; attempt++) {
      try {
        return await this.attempt(run, use, watch);
      } catch (e) {
        if (!(e instanceof ConnectionLost)) throw e;
        if (e.started && !run.idempotent) throw new OutcomeUnknownError(this.target.label, run.command, e);
        last = e;
      }
      await watch.race(sleep(250 * attempt));
    }
    throw new UnreachableError(this.target.label, `The connection to ${this.target.label} dropped ${MAX_OP_ATTEMPTS} times while running: ${run.command}`, {
      hint: `Check the network and the host with: ${sshCommand(this.target.label, this.target.configFile)}`,
      cause: last,
    });
  }

  /**
   * One run of `use` on a new channel. The process is held while the caller waits (not longer: a
   * command given up on may run on); the channel slot until the channel closes, since it stands for
   * a session on the server.
   */
  private async attempt<T>(run: ChannelRun, use: ChannelUser<T>, watch: Watchdog): Promise<T> {
    const slot = await watch.race(this.limiter.acquire(), (late) => late());
    this.busy++;
    this.updateHold();
    let ch: ClientChannel | undefined;
    try {
      const client = await watch.race(this.ready());
      const lost = () => this.client !== client;
      try {
        ch = await watch.race(openExec(client, bashForAnyShell(run.command), lost), (late) => late.close());
        ch.once('close', slot);
        return await watch.race(use(ch, lost, watch.kick));
      } catch (e) {
        if (e instanceof ConnectionLost) this.drop(client);
        // ssh2 can send a signal only before stdin is closed, and sshd keeps a session open until
        // its command ends; so xpr stops waiting and hangs up, and the command may run on.
        if (e instanceof GaveUp) ch?.close();
        throw e;
      }
    } finally {
      if (!ch) slot();
      this.busy--;
      this.updateHold();
    }
  }

  /** The logged-in client, connecting (with retries) when there is none. */
  ready(): Promise<SshClient> {
    if (this.closed) return Promise.reject(new XprError(`The SSH connection to ${this.target.label} was closed`));
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connectWithRetry().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Forget a client whose connection is gone (its close event may still be on its way). */
  drop(client: SshClient): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.destroy();
  }

  /** One user fewer; the last one closes the connection. */
  async release(): Promise<void> {
    if (--this.refs <= 0) await this.shutdown();
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pool.closed(this);
    const client = this.client;
    this.client = undefined;
    if (client) await endClient(client);
    await this.jump?.release();
  }

  private async connectWithRetry(): Promise<SshClient> {
    let last: unknown;
    for (const delay of CONNECT_DELAYS_MS) {
      // Nobody waits any more (they all gave up): stop, rather than keep the process alive.
      if (delay && this.busy + this.dependents === 0) break;
      if (delay) await sleep(delay);
      if (this.closed) break;
      try {
        const client = await this.connectOnce();
        if (this.closed) {
          client.end();
          break;
        }
        this.client = client;
        return client;
      } catch (e) {
        if (!isTransient(e)) throw this.unreachable(e);
        last = e;
      }
    }
    if (this.closed) throw new XprError(`The SSH connection to ${this.target.label} was closed`);
    throw this.unreachable(last, CONNECT_DELAYS_MS.length);
  }

  private async connectOnce(): Promise<SshClient> {
    const { settings: s, jump, label } = this.target;
    let sock: ClientChannel | net.Socket;
    if (!jump) {
      const tcp = net.connect({ host: s.hostName, port: s.port });
      tcp.setKeepAlive(true, s.serverAliveIntervalMs ?? SERVER_ALIVE_INTERVAL_MS);
      tcp.setNoDelay(true);
      sock = tcp;
    } else {
      this.jump ??= this.pool.acquire(jump);
      this.updateHold();
      const jc = await this.jump.ready();
      try {
        sock = await forwardOut(jc, s.hostName, s.port);
      } catch (e) {
        if (!(e instanceof Error && 'reason' in e)) this.jump.drop(jc);
        throw e;
      }
    }
    const knownFiles = [...s.userKnownHostsFiles, ...s.globalKnownHostsFiles];
    const known = readKnownHosts(knownFiles);
    const khName = s.hostKeyAlias ?? knownHostsName(s.hostName, s.port);
    const preferred = preferredKeyTypes(known, khName).filter((a): a is ServerHostKeyAlgorithm =>
      (HOST_KEY_ALGORITHMS as string[]).includes(a));
    const auth = new Authenticator(this.target);
    let keyProblem: UnreachableError | undefined;

    const hostVerifier = (key: Buffer): boolean => {
      const verdict = checkHostKey(known, khName, key);
      if (verdict.status === 'ok') return true;
      if (verdict.status === 'unknown' && s.strictHostKeyChecking === 'accept-new') {
        appendKnownHost(s.userKnownHostsFiles[0], khName, key);
        return true;
      }
      if (verdict.status === 'unknown' && s.strictHostKeyChecking === 'no') return true;
      keyProblem = hostKeyError(verdict, key, {
        host: label, hostName: s.hostName, port: s.port, files: knownFiles, configFile: this.target.configFile,
      });
      return false;
    };

    const config: ConnectConfig = {
      host: s.hostName,
      port: s.port,
      username: s.user,
      // Our own keepalive instead (see watchAlive): ssh2's keeps an interval timer referenced.
      keepaliveInterval: 0,
      readyTimeout: s.connectTimeoutMs ?? READY_TIMEOUT_MS,
      hostVerifier,
      algorithms: { serverHostKey: [...preferred, ...HOST_KEY_ALGORITHMS.filter((a) => !preferred.includes(a))] },
      authHandler: auth.handler,
      sock,
      ...(process.env['XPR_SSH_DEBUG'] ? { debug: (m: string) => process.stderr.write(`[ssh ${label}] ${m}\n`) } : {}),
    };

    return new Promise<SshClient>((resolve, reject) => {
      const client = new Client();
      let settled = false;
      client.on('ready', () => {
        settled = true;
        opened++;
        this.tcp = sock instanceof net.Socket ? sock : undefined;
        this.updateHold();
        this.watchAlive(client, sock);
        resolve(client);
      });
      client.on('error', (err: Error) => {
        // After login, errors (keepalive timeout, reset) are followed by 'close', handled there.
        if (settled) return;
        settled = true;
        reject(keyProblem ?? auth.failure(err) ?? err);
        client.destroy();
      });
      client.on('close', () => {
        if (this.client === client) this.client = undefined;
        if (settled) return;
        settled = true;
        reject(keyProblem ?? new ConnectionLost(false));
      });
      client.connect(config);
    });
  }

  /**
   * Drop the connection once the server has sent nothing for ServerAliveInterval ×
   * ServerAliveCountMax (default 15 s × 3), pinging it meanwhile: a stopped or hung sshd still
   * acknowledges TCP, so neither TCP keepalive nor a waiting command would ever notice.
   */
  private watchAlive(client: SshClient, sock: ClientChannel | net.Socket): void {
    const ping = protocolPing(client);
    if (!ping) {
      debugLog(this.target.label, 'this ssh2 cannot send keepalives: a hung server is found by command timeouts only');
      return;
    }
    const s = this.target.settings;
    const keepalive = new Keepalive(s.serverAliveIntervalMs ?? SERVER_ALIVE_INTERVAL_MS,
      s.serverAliveCountMax ?? SERVER_ALIVE_COUNT_MAX, ping, (silentMs) => {
        debugLog(this.target.label, `no answer from the server for ${silentMs} ms: connection taken as lost`);
        this.drop(client);
        sock.destroy(); // ssh2's destroy() leaves a socket alone that it no longer sees as writable
      });
    sock.on('data', keepalive.heard);
    client.once('close', () => keepalive.stop());
  }

  private unreachable(e: unknown, tries?: number): UnreachableError {
    if (e instanceof UnreachableError) return e;
    const { label, settings: s } = this.target;
    const where = `${s.user}@${s.hostName}:${s.port}${this.target.jump ? ` via ${this.target.jump.label}` : ''}`;
    const msg = e instanceof Error ? e.message : String(e);
    const code = e instanceof Error ? (e as NodeJS.ErrnoException).code : undefined;
    if (code === 'ENOTFOUND') {
      return new UnreachableError(label, `Cannot resolve the host name ${s.hostName} of ${label}`, {
        hint: 'Check "host" in config.json, or HostName in ~/.ssh/config.', cause: e,
      });
    }
    return new UnreachableError(label, `Cannot connect to ${label} (${where}): ${msg}${tries ? ` (tried ${tries} times)` : ''}`, {
      hint: `Check that the host is up and that this works: ${sshCommand(label, this.target.configFile)} true`, cause: e,
    });
  }
}

// ---- channels ----

/** Open an exec channel. Errors say whether the command may have reached the server. */
function openExec(client: SshClient, command: string, lost: () => boolean): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    try {
      client.exec(command, (err, ch) => {
        if (!err) return resolve(ch);
        // A refused channel never ran anything; so is one that never opened because the
        // connection went. Once the exec request may have been sent, the outcome is unknown.
        if (typeof (err as { reason?: unknown }).reason === 'number') return reject(new ConnectionLost(false, err));
        if (lost()) return reject(new ConnectionLost(true, err));
        reject(new XprError(`Could not run a command over SSH: ${err.message}`, { cause: err }));
      });
    } catch (e) {
      reject(new ConnectionLost(false, e)); // "Not connected": nothing was sent
    }
  });
}

/**
 * Collect stderr (and stdout unless the caller reads it) until the channel closes. A close with
 * no exit status on a connection that went away means the command's fate is unknown.
 */
export function awaitExit(ch: ClientChannel, lost: () => boolean, opts: { collectStdout: boolean }): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let code: number | null | undefined;
    if (opts.collectStdout) ch.on('data', (b: Buffer) => out.push(b));
    ch.stderr.on('data', (b: Buffer) => err.push(b));
    ch.on('error', () => { /* surfaces as a close without exit status */ });
    const result = (): ExecResult =>
      ({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: code ?? null });
    // The exit status comes with 'close' (ssh2 passes it as node's child processes do), not from
    // 'exit': a quick command's status can arrive in the same read as the exec reply, so 'exit'
    // fires before anyone listens, while 'close' waits until the output has been read.
    ch.on('close', (status?: number | null) => {
      code = status;
      if (code === undefined && lost()) return reject(new ConnectionLost(true));
      resolve(result());
    });
  });
}

/**
 * A function that sends OpenSSH's keepalive (global request `keepalive@openssh.com`, want-reply)
 * over `client`, or undefined if this ssh2 has none. ssh2 has no public way to do it without its
 * own referenced timer, so this uses its protocol object. ssh2 drops the server's answer
 * (REQUEST_FAILURE) since no request callback waits for it, which holds as long as xpr makes no
 * global requests of its own (no forwardIn); the answer's bytes are what Keepalive listens for.
 */
function protocolPing(client: SshClient): (() => void) | undefined {
  const proto = (client as unknown as { _protocol?: { ping?: () => void } })._protocol;
  if (typeof proto?.ping !== 'function') return undefined;
  return () => {
    try {
      proto.ping!();
    } catch {
      // the connection is going away; its close is handled elsewhere
    }
  };
}

function debugLog(label: string, message: string): void {
  if (process.env['XPR_SSH_DEBUG']) process.stderr.write(`[ssh ${label}] ${message}\n`);
}

function forwardOut(client: SshClient, host: string, port: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    try {
      client.forwardOut('127.0.0.1', 0, host, port, (err, ch) => (err ? reject(err) : resolve(ch)));
    } catch (e) {
      reject(e);
    }
  });
}

function endClient(client: SshClient): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.destroy();
      resolve();
    }, 2000);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    client.end();
  });
}

// ---- helpers ----

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'EAI_AGAIN']);
const OPEN_CONNECT_FAILED = 2; // SSH_OPEN_CONNECT_FAILED: the jump host could not reach the target (yet)

/** Errors worth another try after a pause: the network or a restarting sshd, not keys or config. */
function isTransient(e: unknown): boolean {
  if (e instanceof ConnectionLost) return true;
  if (!(e instanceof Error) || e instanceof XprError) return false;
  const code = (e as NodeJS.ErrnoException).code;
  if (code !== undefined && TRANSIENT_CODES.has(code)) return true;
  const { level, reason } = e as { level?: string; reason?: unknown };
  if (level === 'client-timeout' || reason === OPEN_CONNECT_FAILED) return true;
  return /Connection lost before handshake|No response from server|Not connected|Keepalive timeout/.test(e.message);
}

function readKnownHosts(files: readonly string[]): KnownHostEntry[] {
  return files.flatMap((f) => {
    try {
      return parseKnownHosts(fs.readFileSync(f, 'utf8'), f);
    } catch {
      return [];
    }
  });
}

/** StrictHostKeyChecking=accept-new: record a first-seen key as ssh does. */
function appendKnownHost(file: string | undefined, name: string, key: Buffer): void {
  if (!file) return;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.appendFileSync(file, `${knownHostsLine(name, key)}\n`, { mode: 0o600 });
  } catch {
    // accepted for this run even if it cannot be recorded, as ssh does
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
