// A job's identity: the restart hash of the call (code + arguments + input files) and the job id
// `<name>_<hash>_<8 random>`. The hash is kept in parts so a restart that misses can say which
// part changed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import objectHash from 'object-hash';
import { XprError } from '../errors.js';

export interface HashInput {
  /** Hash of the function's bundled code. */
  codeHash: string;
  exportName: string;
  args: readonly unknown[];
  kwargs?: Record<string, unknown> | undefined;
  /** Keys of `kwargs` that do not change the result (verbosity, pool sizes). */
  hashIgnore?: readonly string[];
  /** Absolute paths of input files or dirs. */
  inputFiles?: readonly string[];
}

export interface CallHash {
  hash: string;
  parts: { code: string; args: string; inputs: string };
}

const b64url = (h: crypto.Hash): string => h.digest('base64url');

/** The restart hash of a call. */
export function callHash(input: HashInput): CallHash {
  const kwargs = input.kwargs && input.hashIgnore?.length
    ? Object.fromEntries(Object.entries(input.kwargs).filter(([k]) => !input.hashIgnore!.includes(k)))
    : input.kwargs;
  const parts = {
    code: `${input.codeHash}:${input.exportName}`,
    args: objectHash({ args: input.args, kwargs: kwargs ?? null }, { algorithm: 'sha256', encoding: 'base64' }),
    inputs: hashFiles(input.inputFiles ?? []),
  };
  const h = crypto.createHash('sha256');
  h.update(parts.code).update('\0').update(parts.args).update('\0').update(parts.inputs);
  return { hash: b64url(h), parts };
}

/** Names (as staged: the base name) and bytes of input files; dirs recursively in sorted order. */
function hashFiles(files: readonly string[]): string {
  const h = crypto.createHash('sha256');
  const visit = (abs: string, rel: string) => {
    const st = fs.statSync(abs);
    if (st.isDirectory()) {
      h.update(`d:${rel}\0`);
      for (const e of fs.readdirSync(abs).sort()) visit(path.join(abs, e), `${rel}/${e}`);
    } else {
      h.update(`f:${rel}:${st.size}\0`).update(fs.readFileSync(abs));
    }
  };
  for (const f of files) visit(f, path.basename(f));
  return b64url(h);
}

/** Which parts differ between two hashes' parts, for "why did this run again". */
export function hashDiff(a: Record<string, string>, b: Record<string, string>): string[] {
  return ['code', 'args', 'inputs'].filter((k) => a[k] !== b[k]);
}

/**
 * Job names may hold anything a file name can (spaces, quotes, `$`, `+`): every use is quoted.
 * Only `/`, NUL and line breaks are refused, since the name is part of a directory name.
 */
export function validateJobName(name: string): void {
  if (!name || name.length > 200 || /[/\0\n\r]/.test(name) || name === '.' || name === '..') {
    throw new XprError(`Invalid job name ${JSON.stringify(name)}`, {
      hint: 'Use 1-200 characters without "/", NUL or line breaks.',
    });
  }
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function randomWord(n: number): string {
  const bytes = crypto.randomBytes(n);
  return [...bytes].map((b) => ALPHABET[b % ALPHABET.length]).join('');
}

export function newJobId(name: string, hash: string): string {
  return `${name}_${hash}_${randomWord(8)}`;
}

/** A scheduler-safe, unique job name for the scheduler's queue ([A-Za-z0-9_.-], short). */
export function schedulerName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[._-]+/, '').slice(0, 24) || 'job';
  return `xpr_${safe}_${randomWord(10)}`;
}
