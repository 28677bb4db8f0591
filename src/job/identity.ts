// A job's identity: the restart hash of the call (code + arguments + input files) and the job id
// `<name>_<hash>_<8 random>`. The hash is kept in parts so a restart that misses can say which
// part changed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { XprError } from '../errors.js';
import { encode, type Json } from '../util/codec.js';

export interface HashInput {
  /** Hash of the function's bundled code. */
  codeHash: string;
  exportName: string;
  /** The arguments and options object as sent to the job (see encodeCall). */
  call: Pick<EncodedCall, 'args' | 'hashedKwargs'>;
  /** Absolute paths of input files or dirs. */
  inputFiles?: readonly string[];
}

export interface CallHash {
  hash: string;
  parts: { code: string; args: string; inputs: string };
}

/** A call's arguments as the codec encodes them: what the job receives, and what the hash sees. */
export interface EncodedCall {
  args: Json[];
  /** The options object as sent; undefined when the call has none. */
  kwargs: Json | undefined;
  /** The options object as the hash sees it: without the keys named in hashIgnore. */
  hashedKwargs: Json | undefined;
}

/**
 * Encode a call's arguments once, for the job and for the hash alike, so there is one identity
 * for a call: two calls share a hash exactly when the job would receive the same thing. Refuses,
 * naming the argument, what cannot be sent.
 */
export function encodeCall(
  args: readonly unknown[], kwargs: Record<string, unknown> | undefined, hashIgnore: readonly string[] = [],
): EncodedCall {
  const encodedKwargs = kwargs === undefined ? undefined : encode(kwargs, 'kwargs');
  const ignored = kwargs !== undefined && hashIgnore.some((k) => Object.hasOwn(kwargs, k));
  return {
    args: args.map((a, i) => encode(a, `args[${i}]`)),
    kwargs: encodedKwargs,
    // Encoded a second time only when a key is actually left out: most calls share one encoding.
    hashedKwargs: ignored ? encode(withoutKeys(kwargs, hashIgnore), 'kwargs') : encodedKwargs,
  };
}

/** A copy of `obj` (same prototype, so it encodes the same way) without `keys`. */
function withoutKeys(obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out = Object.create(Object.getPrototypeOf(obj) as object | null) as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    // Defined, not assigned, so an own `__proto__` key stays a key.
    if (!keys.includes(k)) Object.defineProperty(out, k, { value: obj[k], enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * JSON text of encoded data with every object's keys in sorted order: objects built with their
 * keys set in another order hash alike. Arrays, and the entries of Maps and Sets (arrays once
 * encoded), keep their order, which the function sees.
 */
export function canonicalJson(data: Json): string {
  if (data === null || typeof data !== 'object') return JSON.stringify(data);
  if (Array.isArray(data)) {
    let text = '[';
    for (let i = 0; i < data.length; i++) text += (i ? ',' : '') + canonicalJson(data[i]!);
    return text + ']';
  }
  const keys = Object.keys(data).sort();
  let text = '{';
  for (let i = 0; i < keys.length; i++) text += (i ? ',' : '') + JSON.stringify(keys[i]) + ':' + canonicalJson(data[keys[i]!]!);
  return text + '}';
}

const b64url = (h: crypto.Hash): string => h.digest('base64url');

/** The restart hash of a call. */
export function callHash(input: HashInput): CallHash {
  const { args, hashedKwargs } = input.call;
  // A call without options differs from one with `{}`: the function gets one argument fewer.
  const sent: Json = hashedKwargs === undefined ? { args } : { args, kwargs: hashedKwargs };
  const parts = {
    code: `${input.codeHash}:${input.exportName}`,
    args: crypto.createHash('sha256').update(canonicalJson(sent)).digest('base64'),
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
