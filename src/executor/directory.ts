// The executor's directory: `executor.json` (mode 0600) holds what a relaunch and the CLI need —
// the Redis URL with its generated password, the API token, the gateway's address — and the ids of
// the processes the running executor started, so that a relaunch after a crash can tell a live
// executor from a dead one and stop the workers the dead one left behind.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { XprError } from '../errors.js';

export const STATE_FILE = 'executor.json';

export interface ExecutorState {
  /** Redis URL with its password. */
  redisUrl: string;
  /** The redis-server was started for this directory (its data is in `<directory>/redis`). */
  redisOwned: boolean;
  token: string;
  /** Where the gateway listens (address as bound) and the URL clients use. */
  address: string;
  port: number;
  url: string;
  /** The URL for workers on other machines (pilot jobs). */
  remoteUrl?: string;
  /** The executor process, while it runs. */
  pid?: number;
  /** Local worker processes of the running executor. */
  workerPids?: number[];
}

export function statePath(directory: string): string {
  return path.join(directory, STATE_FILE);
}

/** The directory's state, or undefined for a new directory. A damaged file is an error naming it. */
export function readState(directory: string): ExecutorState | undefined {
  const file = statePath(directory);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: Partial<ExecutorState>;
  try {
    parsed = JSON.parse(text) as Partial<ExecutorState>;
  } catch {
    throw damaged(file, 'it is not JSON');
  }
  if (typeof parsed.redisUrl !== 'string' || typeof parsed.token !== 'string' || typeof parsed.url !== 'string') {
    throw damaged(file, 'redisUrl, token or url is missing');
  }
  return parsed as ExecutorState;
}

function damaged(file: string, why: string): XprError {
  return new XprError(`${file} cannot be read: ${why}`, {
    hint: 'It holds the Redis password and the token of this executor. Restore it, or launch on a new --directory.',
  });
}

/** Writes the state atomically, readable by its owner only. */
export function writeState(directory: string, state: ExecutorState): void {
  const file = statePath(directory);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

/** Makes the directory, readable by its owner only: it holds the Redis data and the secrets. */
export function makeDirectory(directory: string): void {
  const existed = fs.existsSync(directory);
  fs.mkdirSync(directory, { recursive: true, mode: 0o700 });
  if (!existed) fs.chmodSync(directory, 0o700);
  else if (!fs.statSync(directory).isDirectory()) {
    throw new XprError(`${directory} is not a directory`, { hint: 'Give --directory a directory (it is created when missing).' });
  }
}

/** A fresh secret for the token or the Redis password. */
export function secret(): string {
  return crypto.randomBytes(24).toString('base64url');
}
