// The executor's Redis: Debian's `redis-server` as a child process whose data lives in the
// executor's directory (append-only file on), or one that already answers at a given URL.
//
// The server runs in its own process group: Ctrl-C in the terminal signals the executor's group, and
// Redis must outlive the executor's drain (workers still report their last tasks). It is not killed
// when the executor dies either: a relaunch on the same directory finds it still answering at the
// URL stored there and goes on with it, and otherwise starts it again on the same data.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { XprError } from '../errors.js';
import { redactUrl } from './settings.js';

/** Where Debian installs it; `redis-server` on PATH otherwise. */
const DEBIAN_REDIS_SERVER = '/usr/bin/redis-server';

const START_TIMEOUT_MS = 15_000;

export type PingResult = 'ok' | 'auth' | 'down';

/**
 * Whether a Redis answers at `url`: 'ok' (it answers PING with these credentials), 'auth' (it
 * answers, but refuses the password), 'down' (nothing answers).
 */
export async function ping(url: string, timeoutMs = 2000): Promise<PingResult> {
  const client = new Redis(url, {
    lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => { /* reported through the result */ });
  try {
    await client.connect();
    await client.ping();
    return 'ok';
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return /NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(msg) ? 'auth' : 'down';
  } finally {
    client.disconnect();
  }
}

/** A redis-server this process started (or adopted from an earlier launch on the same directory). */
export interface RedisServer {
  url: string;
  port: number;
  /** The child, when this process started it; undefined for one adopted from an earlier launch. */
  child: ChildProcess | undefined;
  /** Asks it to save and stop (SHUTDOWN) and waits until it no longer answers. */
  stop(): Promise<void>;
}

export function redisServerBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (fs.existsSync(DEBIAN_REDIS_SERVER)) return DEBIAN_REDIS_SERVER;
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'redis-server');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch { /* keep looking */ }
  }
  throw new XprError('redis-server is not installed, and no Redis was given with --redis', {
    hint: 'Install it (Debian/Ubuntu: apt-get install redis-server), or pass --redis redis://:<password>@<host>:<port> ' +
      '(XPR_EXECUTOR_REDIS_URL) to use a Redis that runs elsewhere.',
  });
}

/** A TCP port on 127.0.0.1 nobody listens on right now (`preferred` when it is free). */
export async function freePort(preferred?: number): Promise<number> {
  const tryListen = (port: number): Promise<number | undefined> => new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const got = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => resolve(got));
    });
  });
  if (preferred !== undefined && preferred > 0) {
    const got = await tryListen(preferred);
    if (got !== undefined) return got;
  }
  const any = await tryListen(0);
  if (any === undefined) throw new XprError('Cannot find a free TCP port on 127.0.0.1 for redis-server');
  return any;
}

export interface StartRedisOptions {
  /** Its data dir (the append-only file and the log live here). */
  dir: string;
  password: string;
  /** Port to use when free (the one of an earlier launch), else any free one. */
  port?: number;
  env?: NodeJS.ProcessEnv;
}

/** Starts redis-server on 127.0.0.1 and resolves once it answers PING with the password. */
export async function startRedisServer(opts: StartRedisOptions): Promise<RedisServer> {
  const binary = redisServerBinary(opts.env);
  fs.mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const port = await freePort(opts.port);
  const logFile = path.join(opts.dir, 'redis.log');
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', opts.dir,
    // Every write reaches the append-only file before Redis answers it, so a crash of the server
    // process loses nothing acknowledged; fsync once a second bounds what a crash of the machine loses.
    '--appendonly', 'yes', '--appendfsync', 'everysec',
    '--save', '', '--daemonize', 'no', '--logfile', logFile,
    // BullMQ needs keys never evicted.
    '--maxmemory-policy', 'noeviction',
  ];
  // The password goes through stdin-less config: on the command line it would show in `ps`.
  const configFile = path.join(opts.dir, 'redis.conf');
  fs.writeFileSync(configFile, `requirepass ${opts.password}\n`, { mode: 0o600 });
  fs.chmodSync(configFile, 0o600);
  const child = spawn(binary, [configFile, ...args], { stdio: 'ignore', detached: true });
  child.unref();
  const url = `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}`;

  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(`could not be started: ${err.message}`));
    child.once('exit', (code, signal) => resolve(`exited (${signal ?? `code ${String(code)}`})`));
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  // Redis says it is ready only in its log; asking it is as direct and needs no log parsing.
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    if (await ping(url, 1000) === 'ok') break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw startFailed(binary, port, `did not answer within ${START_TIMEOUT_MS / 1000} s`, logFile);
    }
    const ended = await Promise.race([exited, sleep(delay).then(() => undefined)]);
    if (ended !== undefined) throw startFailed(binary, port, ended, logFile);
  }
  return { url, port, child, stop: () => shutdown(url, child) };
}

/** An already running redis-server of this directory, taken over by a new launch. */
export function adoptRedisServer(url: string): RedisServer {
  const port = Number(new URL(url).port);
  return { url, port, child: undefined, stop: () => shutdown(url, undefined) };
}

async function shutdown(url: string, child: ChildProcess | undefined): Promise<void> {
  if (child && (child.exitCode !== null || child.signalCode !== null)) return;
  const exited = child ? new Promise<void>((resolve) => child.once('exit', () => resolve())) : undefined;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  client.on('error', () => { /* gone already: nothing to stop */ });
  try {
    await client.connect();
    // SHUTDOWN rewrites nothing with AOF on: it flushes the file and exits; the connection drops.
    await client.call('SHUTDOWN').catch(() => undefined);
  } catch {
    // Not answering: nothing to stop.
  } finally {
    client.disconnect();
  }
  if (exited) await exited;
  else for (let i = 0; i < 100 && await ping(url, 500) !== 'down'; i++) await sleep(50);
}

function startFailed(binary: string, port: number, why: string, logFile: string): XprError {
  let tail = '';
  try {
    tail = fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-8).join('\n');
  } catch { /* no log yet */ }
  return new XprError(`${binary} on port ${port} ${why}${tail ? `:\n${tail}` : ''}`, {
    hint: `Its log is ${logFile}. Or give a Redis that runs elsewhere with --redis URL (XPR_EXECUTOR_REDIS_URL).`,
  });
}

/** What to say when the Redis a user named does not answer. */
export function redisUnreachable(url: string, source: string, result: PingResult): XprError {
  return result === 'auth'
    ? new XprError(`The Redis at ${redactUrl(url)} (${source}) refuses the password`, {
      hint: `Put its password in the URL: redis://:<password>@host:port.`,
    })
    : new XprError(`No Redis answers at ${redactUrl(url)} (${source})`, {
      hint: 'Start it, correct the URL, or leave it out to have the executor start its own redis-server in its directory.',
    });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
