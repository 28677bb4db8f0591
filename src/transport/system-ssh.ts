// The fallback transport: the system's `ssh` program (or whatever `remsh_cmd` names), as ExPyRe
// runs it, but with OpenSSH connection sharing so a run still logs in once per host: the first
// command starts a master connection that later ones multiplex over (ControlMaster/ControlPersist).
// Used when the config sets remsh_cmd to something other than plain `ssh`, when XPR_SSH=system, or
// for hosts behind a ProxyCommand. Files move as tar streams over the command's stdin/stdout.
// Commands run under bash whatever the login shell; the master gets the same keepalive and connect
// limit as the built-in client unless ssh_config sets its own.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnreachableError, XprError } from '../errors.js';
import { bashForAnyShell, shQuote, shWord } from '../util/shell.js';
import { SERVER_ALIVE_INTERVAL_MS } from './keepalive.js';
import { Limiter } from './limiter.js';
import { sshCommand } from './known-hosts.js';
import { OutcomeUnknownError } from './outcome.js';
import { downloadCommand, existingNames, receiveTar, sendTar, uploadCommand } from './remote-tar.js';
import { splitArgs } from './ssh-config.js';
import { resolveTarget } from './ssh-target.js';
import { CommandTimeoutError, GaveUp, Watchdog } from './timeouts.js';
import type { ExecOptions, ExecResult, TransferOptions, Transport } from './types.js';

export interface SystemSshOptions {
  /** The remote shell command, e.g. `ssh` or `ssh -p 2222` (ExPyRe's remsh_cmd). */
  remshCmd?: string;
  /** ssh_config file to pass as `-F` (default $XPR_SSH_CONFIG). */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
}

const MAX_SESSIONS = 8; // sessions multiplexed over one master count against sshd's MaxSessions
const MAX_ATTEMPTS = 3;
/** ssh waits for a banner for ever by default: a stopped sshd would hang the first command. */
const CONNECT_TIMEOUT_S = 20;
/** Asking the master to exit is local; if even that hangs, leave it to ControlPersist. */
const CLOSE_TIMEOUT_MS = 10_000;
/** ssh's own failures before any command ran: safe to try again after a pause. */
const NOT_CONNECTED = /ssh: connect to host|Connection refused|Connection timed out|kex_exchange_identification|Connection closed by .* port \d+|Connection reset by .* port \d+|No route to host|control socket .*(No such file|Connection refused)/i;
/** ssh's failures that retrying cannot fix. */
const REFUSED = /Permission denied|Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|Could not resolve hostname|No .* host key is known/i;
/** The connection broke while the command ran. */
const DROPPED = /closed by remote host|Broken pipe|client_loop|Connection reset|mux_client|Connection to .* closed/i;

interface Shared {
  refs: number;
  limiter: Limiter;
  /** Until one command got through, commands go one at a time so that only one becomes the master. */
  first: Limiter;
  warm: boolean;
}
const shared = new Map<string, Shared>();

export class SystemSshTransport implements Transport {
  readonly host: string;
  private readonly argv: string[];
  private readonly key: string;
  private readonly configFile: string | undefined;
  private closed = false;

  constructor(host: string, options: SystemSshOptions = {}) {
    this.host = host;
    const env = options.env ?? process.env;
    const words = splitArgs(options.remshCmd ?? 'ssh');
    if (words.length === 0) throw new XprError(`remsh_cmd for ${host} is empty`, { hint: 'Set it to "ssh" or remove it.' });
    const configFile = options.configFile ?? (env['XPR_SSH_CONFIG'] || undefined);
    this.configFile = configFile;
    const dir = controlDir();
    this.argv = [
      ...words,
      ...(configFile ? ['-F', configFile] : []),
      '-o', 'ControlMaster=auto', '-o', `ControlPath=${path.join(dir, '%C')}`, '-o', 'ControlPersist=60',
      ...hangDefaults(host, words, configFile, env),
    ];
    this.key = `${this.argv.join(' ')} ${host}`;
    const entry = shared.get(this.key) ?? { refs: 0, limiter: new Limiter(MAX_SESSIONS), first: new Limiter(1), warm: false };
    entry.refs++;
    shared.set(this.key, entry);
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const full = options.cwd ? `cd ${shQuote(options.cwd)} && ${command}` : command;
    return this.run(full, options.idempotent ?? true, { input: options.input, timeoutMs: options.timeoutMs });
  }

  async upload(localDir: string, names: readonly string[], remoteDir: string, options: TransferOptions = {}): Promise<void> {
    const present = existingNames(localDir, names);
    const timeoutMs = options.stallTimeoutMs;
    const r = present.length === 0
      ? await this.run(`mkdir -p -- ${shQuote(remoteDir)}`, true, { timeoutMs })
      : await this.run(uploadCommand(remoteDir), true,
        { timeoutMs, stall: true, feed: (stdin, progress) => sendTar(localDir, present, stdin, progress) });
    this.check(r, `Uploading to ${remoteDir}`);
  }

  async download(remoteDir: string, names: readonly string[], localDir: string, options: TransferOptions = {}): Promise<void> {
    if (names.length === 0) return;
    const r = await this.run(downloadCommand(remoteDir, names), true,
      { timeoutMs: options.stallTimeoutMs, stall: true, drain: (stdout) => receiveTar(stdout, localDir) });
    this.check(r, `Downloading from ${remoteDir}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const entry = shared.get(this.key);
    if (entry && --entry.refs > 0) return;
    shared.delete(this.key);
    // Stop the master now rather than leave it for ControlPersist; an error means none was running.
    const watch = new Watchdog(CLOSE_TIMEOUT_MS);
    await spawnSsh(this.argv[0]!, [...this.argv.slice(1), '-O', 'exit', this.host], {}, watch).catch(() => undefined);
    watch.stop();
  }

  /** Run `command`, retrying as allowed; CommandTimeoutError once `io.timeoutMs` has passed. */
  private async run(command: string, idempotent: boolean, io: RunIo): Promise<ExecResult> {
    if (this.closed) throw new XprError(`The SSH transport to ${this.host} was closed and cannot be used again`);
    const watch = new Watchdog(io.timeoutMs);
    try {
      return await this.attempts(command, idempotent, io, watch);
    } catch (e) {
      if (e instanceof GaveUp) throw new CommandTimeoutError(this.host, command, io.timeoutMs ?? 0, io.stall ?? false, this.configFile);
      throw e;
    } finally {
      watch.stop();
    }
  }

  private async attempts(command: string, idempotent: boolean, io: RunIo, watch: Watchdog): Promise<ExecResult> {
    const entry = shared.get(this.key)!;
    const once = () => spawnSsh(this.argv[0]!, [...this.argv.slice(1), this.host, bashForAnyShell(command)], io, watch);
    for (let attempt = 1; ; attempt++) {
      const r = await this.runShared(entry, once);
      if (r.code !== 255) return r;
      const err = r.stderr;
      if (REFUSED.test(err)) {
        throw new UnreachableError(this.host, `${this.argv[0]} could not log in to ${this.host}: ${lastLine(err)}`, {
          hint: `See the full message with: ${this.argv.map(shWord).join(' ')} ${shWord(this.host)} true`,
        });
      }
      const neverRan = NOT_CONNECTED.test(err);
      if (!neverRan && !DROPPED.test(err)) return r; // the remote command itself exited 255
      if (!neverRan && !idempotent) throw new OutcomeUnknownError(this.host, command);
      if (attempt >= MAX_ATTEMPTS) {
        throw new UnreachableError(this.host, `Cannot reach ${this.host} with ${this.argv[0]}: ${lastLine(err)}`, {
          hint: `Check that this works: ${this.argv.map(shWord).join(' ')} ${shWord(this.host)} true`,
        });
      }
      await watch.race(new Promise((res) => setTimeout(res, 500 * attempt * attempt)));
    }
  }

  /** Run holding a session slot; while no master is known to be up, one command at a time. */
  private async runShared(entry: Shared, once: () => Promise<ExecResult>): Promise<ExecResult> {
    if (entry.warm) return entry.limiter.run(once);
    const release = await entry.first.acquire();
    if (entry.warm) {
      release();
      return entry.limiter.run(once);
    }
    try {
      const r = await entry.limiter.run(once);
      if (r.code !== 255) entry.warm = true;
      return r;
    } finally {
      release();
    }
  }

  private check(r: ExecResult, what: string): void {
    if (r.code === 0) return;
    throw new XprError(`${what} on ${this.host} failed (exit ${r.code ?? 'signal'}): ${r.stderr.trim()}`, {
      hint: `Check the remote dir and free space with: ${sshCommand(this.host, this.configFile)}`,
    });
  }
}

interface RunIo {
  input?: string | Buffer | undefined;
  /** Give up this long after the start, or with `stall` after data last moved; none if unset. */
  timeoutMs?: number | undefined;
  stall?: boolean;
  /** Write the command's stdin (and end it), calling `progress` as it goes. */
  feed?: (stdin: NodeJS.WritableStream, progress: () => void) => Promise<void>;
  /** Read the command's stdout (instead of collecting it). */
  drain?: (stdout: NodeJS.ReadableStream) => Promise<void>;
}

/** Run ssh once; on `watch`'s expiry kill it (the remote command may run on) and reject with GaveUp. */
function spawnSsh(cmd: string, args: string[], io: RunIo, watch: Watchdog): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let ioError: unknown;
    let gaveUp = false;
    const cancelWatch = watch.whenExpired(() => {
      gaveUp = true;
      child.kill('SIGKILL');
    });
    const progress = io.stall ? watch.kick : () => undefined;
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => { /* the remote side may stop reading early; its exit code tells */ });
    const drained = io.drain ? io.drain(child.stdout) : undefined;
    if (!io.drain) child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stdout.on('data', progress);
    child.stderr.on('data', progress);
    const fed = io.feed ? io.feed(child.stdin, progress) : undefined;
    if (!io.feed) child.stdin.end(io.input ?? '');
    fed?.catch((e: unknown) => {
      ioError = e;
      child.kill();
    });
    child.on('error', (e) => reject(new XprError(`Cannot run ${cmd}: ${e.message}`, {
      hint: 'Install the OpenSSH client, or set remsh_cmd in config.json to the remote shell command.', cause: e,
    })));
    child.on('close', (code) => {
      cancelWatch();
      void Promise.allSettled([drained ?? Promise.resolve(), fed ?? Promise.resolve()]).then(([d]) => {
        if (gaveUp) return reject(new GaveUp());
        if (ioError) return reject(ioError);
        // A broken tar stream matters only when the command itself succeeded.
        if (d?.status === 'rejected' && code === 0) return reject(d.reason);
        resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code });
      });
    });
  });
}

/**
 * `-o` options that keep a stopped or hung server from hanging ssh for ever (it has no keepalive
 * and waits for a banner without limit by default), each only where neither remsh_cmd nor
 * ssh_config sets it: ssh takes the first value it sees, so ours would override the user's.
 */
function hangDefaults(host: string, words: readonly string[], configFile: string | undefined, env: NodeJS.ProcessEnv): string[] {
  let settings: { serverAliveIntervalMs: number | undefined; connectTimeoutMs: number | undefined };
  try {
    settings = resolveTarget(host, { ...(configFile ? { configFile } : {}), env }).settings;
  } catch {
    return []; // ssh reports a bad config itself
  }
  const given = (key: string) => words.some((w) => w.toLowerCase().includes(key.toLowerCase()));
  const out: string[] = [];
  if (settings.serverAliveIntervalMs === undefined && !given('ServerAliveInterval')) {
    out.push('-o', `ServerAliveInterval=${SERVER_ALIVE_INTERVAL_MS / 1000}`);
  }
  if (settings.connectTimeoutMs === undefined && !given('ConnectTimeout')) out.push('-o', `ConnectTimeout=${CONNECT_TIMEOUT_S}`);
  return out;
}

/** A private dir for control sockets (short, since socket paths are limited to ~100 bytes). */
function controlDir(): string {
  const dir = path.join(os.tmpdir(), `xpr-ssh-${process.getuid?.() ?? 'u'}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function lastLine(s: string): string {
  return s.trim().split('\n').filter(Boolean).pop() ?? '(no message)';
}
