// A private Redis for one test file: Debian's redis-server as a child process on a free port of
// 127.0.0.1, with its data in a temp dir, an append-only file and a generated password, as the
// executor runs it. `kill()` and `restart()` let tests crash and bring back Redis with its data.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/executor/redis-server.js';

export const REDIS_SERVER = '/usr/bin/redis-server';

export interface TestRedis {
  /** `redis://:<password>@127.0.0.1:<port>`, for ioredis and BullMQ. */
  url: string;
  port: number;
  password: string;
  /** Data directory (append-only file). */
  dir: string;
  /** Stops the server (SIGTERM, waits for exit) and removes its directory. */
  stop(): Promise<void>;
  /** Stops the server if it runs, then starts it again on the same port with the same data. */
  restart(): Promise<void>;
  /** SIGKILLs the server, as a crash would; `restart()` brings it back. */
  kill(): void;
}

/** Why the Redis tests cannot run here, or undefined when they can. */
export function redisUnavailable(): string | undefined {
  try {
    fs.accessSync(REDIS_SERVER, fs.constants.X_OK);
    return undefined;
  } catch {
    return `${REDIS_SERVER} is not installed (Debian package redis-server)`;
  }
}

/**
 * True when `what` must be skipped because redis-server is missing; prints one line saying why.
 * In CI a missing redis-server fails the run instead: there it is part of the test machine.
 */
export function skipWithoutRedis(what: string): boolean {
  const reason = redisUnavailable();
  if (reason === undefined) return false;
  if (process.env.CI === 'true') throw new Error(`The executor tests must run in CI, but: ${reason}`);
  console.warn(`skipping ${what}: ${reason}`);
  return true;
}

/** A TCP port nobody listens on right now: the executor's own. */
export { freePort };

export async function startTestRedis(): Promise<TestRedis> {
  const reason = redisUnavailable();
  if (reason !== undefined) throw new Error(`Cannot start Redis for the tests: ${reason}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-test-redis-'));
  const port = await freePort();
  const password = randomBytes(18).toString('hex');
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    child = await spawnRedis(dir, port, password);
  };
  const stopChild = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGTERM');
    await exited;
  };

  await start();
  return {
    url: `redis://:${password}@127.0.0.1:${port}`,
    port,
    password,
    dir,
    async stop() {
      await stopChild();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await stopChild();
      await start();
    },
    kill() {
      child?.kill('SIGKILL');
    },
  };
}

/** Starts redis-server and resolves once it accepts connections; rejects with its log if it exits. */
function spawnRedis(dir: string, port: number, password: string): Promise<ChildProcess> {
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--appendonly', 'yes',
    // kill() stands for a crash: every acknowledged write must survive it, or restart tests flake.
    '--appendfsync', 'always',
    '--requirepass', password, '--save', '', '--logfile', '', '--daemonize', 'no',
  ];
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let log = '';
    let ready = false;
    const onData = (chunk: Buffer): void => {
      // Keep draining the pipes for the server's whole life (a full pipe would block it), but only
      // the start of the log is worth keeping for an error message.
      if (ready) return;
      log += chunk.toString();
      if (log.includes('Ready to accept connections')) {
        ready = true;
        log = '';
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) => reject(new Error(`${REDIS_SERVER} could not start: ${err.message}`)));
    child.once('exit', (code, signal) => {
      if (!ready) reject(new Error(`${REDIS_SERVER} exited (${signal ?? code}) before it was ready on port ${port}:\n${log}`));
    });
  });
}
