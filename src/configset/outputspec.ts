// OutputSpec: where the results of an autoparallelized op go, placed by the location of the input
// each came from. Results may arrive in any order; files are written in input order all the same.
//
// Files are written under a temporary name in the same directory and renamed on close(), so a killed
// run never leaves an output that looks complete, and isDone() (all outputs exist) means a finished
// earlier run. An input whose result is null still consumes its location, so every later result
// lands in the right file (wfl shifts them into the previous file's neighbour when a chunk ends empty).
//
// checkWritable() finds, before any work, the outputs that cannot be written; a write that fails
// later throws an OutputWriteError naming the file and the cause, so a caller can keep the results.
// Temporary files of killed writers are removed the next time the same output is written.

import { randomBytes } from 'node:crypto';
import {
  accessSync, closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync,
  type Stats,
} from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { asEntry, userEntryPoints } from '../boundary.js';
import { XprError } from '../errors.js';
import { crashPoint } from '../util/crash-point.js';
import { ConfigSet } from './configset.js';
import { entryText, formatOf, type FileFormat } from './formats.js';
import { removeDeadTemps, tempNameFor } from './tempfiles.js';
import {
  compareLocs, formatLoc, isImmediateSuccessor, isLoc, LocCompactor, locToMarker, type Loc, type Nested,
} from './loc.js';

/**
 * Where outputs go:
 * - nothing: kept in memory;
 * - a string: one file for all outputs (nesting kept with `_ConfigSet_loc` markers where needed);
 * - an array: one file per input file (or per top-level group of in-memory inputs), by index;
 * - an object: input file name → output file name;
 * - a function `(inputFile, index) => outputFile`.
 * Objects and functions need the input files: call `bind(inputs)` before anything else.
 */
export type OutputFiles =
  | string
  | readonly string[]
  | Readonly<Record<string, string>>
  | ((inputFile: string, index: number) => string);

export interface OutputSpecOptions {
  /** Directory prepended to relative output file names (wfl's `file_root`). */
  fileRoot?: string;
  /**
   * Replace existing outputs (default false). When false and every output exists, the spec is done
   * (`isDone()`); when only some exist, storing is refused rather than clobbering them.
   */
  overwrite?: boolean;
  /** File format for every output, instead of telling it from the extension. */
  format?: FileFormat;
}

/** What an op gave for one input: one item, several (kept as a group at that location), or nothing. */
export type StoredResult<T> = T | readonly T[] | null | undefined;

interface Target {
  path: string;
  format: FileFormat;
  tmp: string;
  fd: number | undefined;
  /** Last input location written, relative to this file. */
  cursor: Loc | undefined;
  /** Results that arrived before an earlier input's, by relative location. */
  pending: Map<string, Prepared>;
  maxDepth: number;
  compactor: LocCompactor;
}

/** A result checked and formatted (without a location marker) when stored. */
interface Prepared {
  loc: Loc;
  result: unknown;
  texts: string[];
}

type GroupNode = { kids: Map<number, GroupNode | ItemNode> };
type ItemNode = { item: unknown };

function isGroup(n: GroupNode | ItemNode): n is GroupNode {
  return 'kids' in n;
}

/** An output file that cannot be written: found before the work (checkWritable) or while writing. */
export class OutputWriteError extends XprError {
  /** The first output file that cannot be written. */
  readonly path: string;
  /** The file system's error code (ENOSPC, EACCES, ...) when a write failed. */
  readonly code: string | undefined;

  constructor(message: string, options: { path: string; code?: string; hint?: string; cause?: unknown }) {
    super(message, options);
    this.path = options.path;
    this.code = options.code;
  }

  /** The same error with another hint: the caller knows what became of the results. */
  withHint(hint: string): OutputWriteError {
    const err = new OutputWriteError(this.message, { path: this.path, hint, cause: this.cause, ...(this.code ? { code: this.code } : {}) });
    if (this.stack) err.stack = this.stack.replace(this.describe(), err.describe());
    return err;
  }
}

/** What a failed write tells a user, with the code to search for. */
const FS_REASONS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'the operation is not permitted',
  ENOTDIR: 'a dir on its path is a file',
  EISDIR: 'it is a directory',
  EIO: 'an input/output error on the device',
  EFBIG: 'the file is too large for the file system',
};

/** Codes of failures that may come from the path rather than the device. */
const PATH_CODES = new Set(['EEXIST', 'ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'EROFS']);

/**
 * Why writing `path` failed, for a reader. A path problem (a file where a dir should be, a read-only
 * mount) is told by looking at the path, since the code alone misleads (mkdir under a file says
 * EEXIST; a recursive mkdir on a read-only mount says ENOENT); otherwise "<reason> (<code>)".
 */
export function describeWriteFailure(path: string, e: unknown): string {
  if (!isFsError(e)) return e instanceof Error ? e.message : String(e);
  const found = PATH_CODES.has(e.code) ? whyUnwritable(path)?.reason : undefined;
  return found ?? `${FS_REASONS[e.code] ?? e.message} (${e.code})`;
}

function isFsError(e: unknown): e is NodeJS.ErrnoException & { code: string } {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && 'syscall' in e;
}

/** Runs a file system step of writing `path`; its failure becomes an OutputWriteError naming the file. */
function writing<R>(path: string, step: () => R): R {
  try {
    return step();
  } catch (e) {
    if (!isFsError(e)) throw e;
    throw new OutputWriteError(`Cannot write the output file ${resolve(path)}: ${describeWriteFailure(path, e)}`, {
      // No `cause`: printed with its stack, it would bury the reason, which the message already gives.
      path, code: e.code,
      hint: 'Nothing was written there (the partial file was removed). Make room, or fix the permissions, and write again.',
    });
  }
}

function statOf(path: string): Stats | NodeJS.ErrnoException {
  try {
    return statSync(path);
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
}

type Unwritable = { path: string; reason: string; kind: 'dir' | 'file-parent' | 'no-write' };

/**
 * Why `path` cannot be written, looking only: it is a dir, or the nearest existing dir above it
 * (where missing dirs would be created) is a file or cannot be written by this process.
 */
function whyUnwritable(path: string): Unwritable | undefined {
  const abs = resolve(path);
  const own = statOf(abs);
  if (!(own instanceof Error) && own.isDirectory()) return { path: abs, reason: 'it is a directory', kind: 'dir' };
  for (let dir = dirname(abs); ; dir = dirname(dir)) {
    const st = statOf(dir);
    if (st instanceof Error) {
      // Missing (ENOENT), or below a file (ENOTDIR): look further up, where mkdir would start.
      if ((st.code === 'ENOENT' || st.code === 'ENOTDIR') && dirname(dir) !== dir) continue;
      return { path: abs, reason: `cannot reach ${dir} (${st.code ?? st.message})`, kind: 'no-write' };
    }
    if (!st.isDirectory()) return { path: abs, reason: `${dir} is a file, not a directory`, kind: 'file-parent' };
    try {
      // W: create the temporary file; X: reach it.
      accessSync(dir, constants.W_OK | constants.X_OK);
      return undefined;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const reason = code === 'EROFS' ? `${dir} is on a read-only file system` : `no permission to write in ${dir} (${code})`;
      return { path: abs, reason, kind: 'no-write' };
    }
  }
}

const UNWRITABLE_HINTS: Record<Unwritable['kind'], string> = {
  dir: 'Name a file for each output (e.g. <dir>/out.jsonl), or move the directory away.',
  'file-parent': 'Move that file away, or choose another output path.',
  'no-write': 'Write the outputs to a dir you may write to, or fix its permissions or mount.',
};

function unwritableError(problems: readonly Unwritable[]): OutputWriteError {
  const [first] = problems as [Unwritable];
  const message = problems.length === 1
    ? `Cannot write the output file ${first.path}: ${first.reason}`
    : `Cannot write ${problems.length} output files:\n${problems.map((p) => `  ${p.path}: ${p.reason}`).join('\n')}`;
  const hint = [...new Set(problems.map((p) => UNWRITABLE_HINTS[p.kind]))].join(' ');
  return new OutputWriteError(message, { path: first.path, hint });
}

/**
 * Collects results by input location and writes them (or keeps them in memory) in input order.
 *
 * ```ts
 * const inputs = new ConfigSet('in/*.xyz');
 * const outputs = new OutputSpec((f) => f.replace(/^in\//, 'out/')).bind(inputs);
 * if (!outputs.isDone()) {
 *   for await (const { item, loc } of inputs) outputs.store(compute(item), loc);
 *   outputs.close();
 * }
 * const results = outputs.toConfigSet();
 * ```
 */
export class OutputSpec<T = unknown> {
  readonly overwrite: boolean;
  private readonly spec: OutputFiles | undefined;
  private readonly options: OutputSpecOptions;
  /** Final output paths; undefined while an object/function spec is unbound. */
  private paths: string[] | undefined;
  /** 'whole': one file takes full locations; 'byTop': the first index picks the file. */
  private routing: 'memory' | 'whole' | 'byTop';
  private targets: Target[] | undefined;
  private readonly root: GroupNode = { kids: new Map() };
  private readonly seen = new Set<string>();
  private checkedExisting = false;
  private state: 'open' | 'closed' | 'aborted' = 'open';

  constructor(files?: OutputFiles, options: OutputSpecOptions = {}) {
    this.spec = files;
    this.options = options;
    this.overwrite = options.overwrite ?? false;
    // A wrong file spec is reported at the user's `new OutputSpec(...)` (see boundary.ts).
    this.routing = asEntry(new.target, () => this.route(files));
  }

  /** How results go to files, from the spec given; sets and checks the output paths it names. */
  private route(files: OutputFiles | undefined): 'memory' | 'whole' | 'byTop' {
    let routing: 'memory' | 'whole' | 'byTop';
    if (files === undefined || files === null) {
      routing = 'memory';
    } else if (typeof files === 'string') {
      routing = 'whole';
      this.paths = [this.rooted(files)];
    } else if (Array.isArray(files)) {
      if (files.length === 0) throw new XprError('OutputSpec got an empty list of files', { hint: 'Pass no files to keep outputs in memory.' });
      routing = 'byTop';
      this.paths = files.map((f: unknown) => this.rooted(this.checkName(f)));
    } else if (typeof files === 'function' || typeof files === 'object') {
      routing = 'byTop';
    } else {
      throw new XprError(`OutputSpec files must be a string, an array, an object or a function, got ${typeof files}`);
    }
    if (this.paths) {
      this.checkDistinct(this.paths);
      for (const p of this.paths) formatOf(p, this.options.format);
    }
    return routing;
  }

  /** 'memory', 'file' (one output file) or 'perInput' (one output file per input file or group). */
  get mode(): 'memory' | 'file' | 'perInput' {
    return this.routing === 'memory' ? 'memory' : this.routing === 'whole' ? 'file' : 'perInput';
  }

  /** True after close(). */
  get closed(): boolean {
    return this.state === 'closed';
  }

  /**
   * Ties per-input outputs to the inputs' files: resolves object/function specs and checks that an
   * array has one name per input file. Call before isDone()/store(); returns this.
   */
  bind(inputs: ConfigSet<unknown>): this {
    if (this.seen.size > 0 || this.state !== 'open') throw new XprError('OutputSpec.bind() must come before store() and close()');
    if (this.routing !== 'byTop') return this;
    const inFiles = inputs.files;
    const spec = this.spec;
    if (typeof spec === 'function' || (spec !== undefined && typeof spec === 'object' && !Array.isArray(spec))) {
      if (inFiles.length === 0) {
        throw new XprError('OutputSpec maps input file names to outputs, but the inputs are in memory', {
          hint: 'Give one output file name, a list of names (one per top-level group), or no files (memory).',
        });
      }
      this.paths = inFiles.map((f, i) => this.rooted(this.checkName(this.mapName(f, i))));
      this.checkDistinct(this.paths);
      for (const p of this.paths) formatOf(p, this.options.format);
    }
    const paths = this.paths as string[];
    if (inputs.kind === 'file' && paths.length === 1) {
      // One input file: its locations are [i], so the single output file takes them whole.
      this.routing = 'whole';
    } else if (inputs.kind !== 'items' && paths.length !== inFiles.length) {
      throw new XprError(`OutputSpec has ${paths.length} output file(s) for ${inFiles.length} input file(s)`, {
        hint: `Inputs: ${inFiles.slice(0, 5).join(', ')}${inFiles.length > 5 ? ', ...' : ''}`,
      });
    }
    return this;
  }

  /** Final output file paths (empty in memory). */
  get outputFiles(): string[] {
    if (this.routing === 'memory') return [];
    return [...this.requirePaths()];
  }

  /**
   * True when all outputs already exist and overwrite is false: an earlier run finished, so the
   * work can be skipped and toConfigSet() read. Always false in memory.
   */
  isDone(): boolean {
    if (this.routing === 'memory' || this.overwrite) return false;
    // A dir where an output should be is no finished output (checkWritable says what is wrong).
    return this.requirePaths().every((p) => {
      const st = statOf(p);
      return !(st instanceof Error) && !st.isDirectory();
    });
  }

  /**
   * Checks, before any work, that close() can write every output: no output path is a directory,
   * and the nearest existing dir above each (where missing dirs are created once results come) is a
   * dir this process may write to; and, unless overwrite is set, that no earlier partial outputs are
   * in the way. Throws an OutputWriteError naming every output that cannot be written and why.
   * Only looks: creates nothing.
   */
  checkWritable(): void {
    if (this.routing === 'memory') return;
    const problems = this.requirePaths().map(whyUnwritable).filter((p): p is Unwritable => p !== undefined);
    if (problems.length > 0) throw unwritableError(problems);
    this.checkExisting();
  }

  /**
   * Removes the temporary files of these outputs left by killed writers: only files written on this
   * host by a process that is gone. Done before the first write; returns the paths removed.
   */
  removeStaleTemps(): string[] {
    if (this.routing === 'memory' || this.paths === undefined) return [];
    return this.paths.flatMap((p) => removeDeadTemps(p).map((name) => join(dirname(p), name)));
  }

  /**
   * Stores the result for the input at `loc` (from ConfigSet iteration). Call it once for every
   * input, also when the result is null/undefined (nothing for that input): the location is consumed
   * either way. An array is several results, kept as a group at that location. Any order is fine.
   */
  store(result: StoredResult<T>, loc: Loc): void {
    if (this.state !== 'open') throw new XprError(`OutputSpec.store() after ${this.state === 'closed' ? 'close()' : 'abort()'}`);
    if (!isLoc(loc)) throw new XprError(`OutputSpec.store(): bad location ${JSON.stringify(loc)}`, { hint: 'Pass the loc that ConfigSet iteration gave with the input.' });
    const key = formatLoc(loc);
    if (this.seen.has(key)) throw new XprError(`OutputSpec.store(): the result for ${key} was stored twice`);
    if (this.routing === 'memory') {
      this.storeInMemory(result, loc);
      this.seen.add(key);
      return;
    }
    this.checkExisting();
    const targets = this.openTargets();
    let index = 0;
    let rel: Loc = loc;
    if (this.routing === 'byTop') {
      index = loc[0] as number;
      rel = loc.slice(1);
      if (rel.length === 0) {
        throw new XprError(`OutputSpec writes one file per input file or group, but input ${key} is not in a group`, {
          hint: 'Give a single output file name for flat inputs; for one input file, call outputs.bind(inputs) first.',
        });
      }
    }
    const target = targets[index];
    if (target === undefined) {
      throw new XprError(`OutputSpec has ${targets.length} output file(s); input ${key} needs file #${index + 1}`, {
        hint: 'Give one output file per input file (or per top-level group).',
      });
    }
    // Format now: a result that cannot be written fails here, naming its input, before any state
    // changes; the text is reused when the item needs no location marker.
    const texts = asItems(result).map((item) => entryText(item, target.format, undefined, `result for ${key}`));
    const prepared: Prepared = { loc: rel, result, texts };
    this.seen.add(key);
    target.maxDepth = Math.max(target.maxDepth, rel.length);
    if (!isImmediateSuccessor(target.cursor, rel)) {
      target.pending.set(formatLoc(rel), prepared);
      return;
    }
    try {
      this.writeResult(target, prepared, loc);
      this.drain(target, loc.slice(0, loc.length - rel.length));
    } catch (e) {
      // A half-written result cannot be taken back: drop this output rather than leave it wrong.
      this.abort();
      throw e;
    }
  }

  /** Writes what is left, in input order, and renames the files into place. Idempotent. */
  close(): void {
    if (this.state === 'closed') return;
    if (this.state === 'aborted') throw new XprError('OutputSpec.close() after abort()');
    if (this.routing !== 'memory') {
      this.checkExisting();
      try {
        for (const target of this.openTargets()) this.finishTarget(target);
      } catch (e) {
        this.abort();
        throw e;
      }
    }
    this.state = 'closed';
  }

  /**
   * Drops partial outputs (temporary files); the final files are left as they were. Never throws:
   * it runs while another error is on its way, and that error is the one to report (a temporary
   * file it cannot remove is removed by the next run).
   */
  abort(): void {
    if (this.state === 'closed') return;
    this.state = 'aborted';
    for (const t of this.targets ?? []) {
      if (t.fd !== undefined) {
        try {
          closeSync(t.fd);
        } catch {
          // already closed
        }
        t.fd = undefined;
      }
      try {
        rmSync(t.tmp, { force: true });
      } catch {
        // e.g. ENOTDIR: the temporary file was never made
      }
    }
  }

  /**
   * The outputs as a ConfigSet with the inputs' grouping: nested arrays in memory, one file, or one
   * file per input file. Available after close(), or when isDone().
   */
  toConfigSet(): ConfigSet<T> {
    if (this.state !== 'closed' && !this.isDone()) {
      throw new XprError('OutputSpec.toConfigSet() before close()', { hint: 'Call close() once every result is stored.' });
    }
    if (this.routing === 'memory') return new ConfigSet<T>(toNested(this.root) as Nested<T>);
    const paths = this.requirePaths();
    const opts = this.options.format === undefined ? {} : { format: this.options.format };
    if (this.routing === 'whole') return new ConfigSet<T>({ file: paths[0] as string }, opts);
    return new ConfigSet<T>({ files: paths, glob: false }, opts);
  }

  toString(): string {
    if (this.routing === 'memory') return 'OutputSpec(memory)';
    return this.paths ? `OutputSpec(${this.paths.join(', ')})` : 'OutputSpec(per input file, unbound)';
  }

  // ---- internals ---------------------------------------------------------------------------------

  private rooted(path: string): string {
    const root = this.options.fileRoot;
    return root === undefined || isAbsolute(path) ? path : join(root, path);
  }

  private checkName(name: unknown): string {
    if (typeof name !== 'string' || name === '') throw new XprError(`OutputSpec file names must be non-empty strings, got ${JSON.stringify(name)}`);
    return name;
  }

  private mapName(input: string, index: number): unknown {
    const spec = this.spec;
    if (typeof spec === 'function') return spec(input, index);
    const map = spec as Readonly<Record<string, string>>;
    const wanted = resolve(input);
    for (const [from, to] of Object.entries(map)) {
      if (resolve(this.options.fileRoot ?? '.', from) === wanted || resolve(from) === wanted) return to;
    }
    throw new XprError(`OutputSpec has no output file for input ${input}`, { hint: `It maps: ${Object.keys(map).join(', ')}` });
  }

  private checkDistinct(paths: readonly string[]): void {
    const seen = new Set<string>();
    for (const p of paths) {
      const r = resolve(p);
      if (seen.has(r)) throw new XprError(`OutputSpec writes two outputs to the same file ${p}`);
      seen.add(r);
    }
  }

  private requirePaths(): string[] {
    if (this.paths === undefined) {
      throw new XprError('OutputSpec maps input files to outputs but is not bound to the inputs', {
        hint: 'Call outputs.bind(inputs) first.',
      });
    }
    return this.paths;
  }

  /** Refuses to clobber existing outputs unless overwrite is set; checked once, before writing. */
  private checkExisting(): void {
    if (this.checkedExisting || this.overwrite) return;
    const existing = this.requirePaths().filter((p) => existsSync(p));
    if (existing.length > 0) {
      const all = existing.length === this.requirePaths().length;
      throw new XprError(`Output file(s) already exist: ${existing.join(', ')}`, {
        hint: all
          ? 'The outputs are complete (isDone() is true): skip the work, or pass { overwrite: true } to redo it.'
          : 'Some outputs of an earlier run exist: delete them, or pass { overwrite: true }.',
      });
    }
    this.checkedExisting = true;
  }

  private openTargets(): Target[] {
    if (this.targets) return this.targets;
    this.removeStaleTemps();
    const tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
    this.targets = this.requirePaths().map((path) => ({
      path,
      format: formatOf(path, this.options.format),
      // A dot name in the same dir: rename is atomic there, and globs like *.xyz skip it.
      tmp: tempNameFor(path, tag),
      fd: undefined,
      cursor: undefined,
      pending: new Map(),
      maxDepth: 1,
      compactor: new LocCompactor(),
    }));
    return this.targets;
  }

  private storeInMemory(result: StoredResult<T>, loc: Loc): void {
    const parent = this.group(loc.slice(0, -1), loc);
    const last = loc[loc.length - 1] as number;
    if (result === null || result === undefined) return;
    if (Array.isArray(result)) {
      const g: GroupNode = { kids: new Map() };
      (result as readonly unknown[]).forEach((item, k) => g.kids.set(k, { item }));
      this.put(parent, last, g, loc);
    } else {
      this.put(parent, last, { item: result }, loc);
    }
  }

  /** The group node at `path`, created as needed. */
  private group(path: Loc, loc: Loc): GroupNode {
    let node = this.root;
    for (const i of path) {
      let next = node.kids.get(i);
      if (next === undefined) {
        next = { kids: new Map() };
        node.kids.set(i, next);
      }
      if (!isGroup(next)) throw new XprError(`OutputSpec.store(): location ${formatLoc(loc)} is inside the result for another input`);
      node = next;
    }
    return node;
  }

  private put(parent: GroupNode, index: number, node: GroupNode | ItemNode, loc: Loc): void {
    if (parent.kids.has(index)) throw new XprError(`OutputSpec.store(): location ${formatLoc(loc)} clashes with a group of other inputs`);
    parent.kids.set(index, node);
  }

  private writeResult(target: Target, prepared: Prepared, fullLoc: Loc): void {
    const { loc: rel, result, texts } = prepared;
    target.cursor = rel;
    if (result === null || result === undefined) return;
    if (Array.isArray(result)) result.forEach((item, k) => this.writeItem(target, [...rel, k], item, texts[k], fullLoc));
    else this.writeItem(target, rel, result, texts[0], fullLoc);
  }

  private writeItem(target: Target, key: Loc, item: unknown, plain: string | undefined, fullLoc: Loc): void {
    let pos: number[];
    try {
      pos = target.compactor.next(key);
    } catch (e) {
      throw new XprError(`OutputSpec.store(): ${e instanceof Error ? e.message : String(e)}`);
    }
    // Only nested positions need a marker; a flat file stays plain (and readable by anything).
    const marker = pos.length > 1 ? locToMarker(pos) : undefined;
    const text = marker === undefined && plain !== undefined
      ? plain
      : entryText(item, target.format, marker, `result for ${formatLoc(fullLoc)}`);
    if (target.fd === undefined) target.fd = this.openTmp(target);
    const fd = target.fd;
    writing(target.path, () => writeSync(fd, text));
    crashPoint('output-write');
  }

  private openTmp(target: Target): number {
    return writing(target.path, () => {
      mkdirSync(dirname(target.path), { recursive: true });
      return openSync(target.tmp, 'w');
    });
  }

  /** Writes buffered results that now follow the cursor directly. */
  private drain(target: Target, prefix: Loc): void {
    for (;;) {
      const next = this.nextPending(target);
      if (next === undefined) return;
      target.pending.delete(formatLoc(next.loc));
      this.writeResult(target, next, [...prefix, ...next.loc]);
    }
  }

  private nextPending(target: Target): Prepared | undefined {
    const cursor = target.cursor;
    if (target.pending.size === 0 || cursor === undefined) return undefined;
    const candidate = cursor.slice();
    candidate[candidate.length - 1] = (candidate[candidate.length - 1] as number) + 1;
    while (candidate.length <= target.maxDepth) {
      const hit = target.pending.get(formatLoc(candidate));
      if (hit) return hit;
      candidate.push(0);
    }
    return undefined;
  }

  private finishTarget(target: Target): void {
    const rest = [...target.pending.values()].sort((a, b) => compareLocs(a.loc, b.loc));
    target.pending.clear();
    const index = this.targets?.indexOf(target) ?? 0;
    const prefix = this.routing === 'byTop' ? [index] : [];
    for (const prepared of rest) this.writeResult(target, prepared, [...prefix, ...prepared.loc]);
    // An input with no results still gets its (empty) file, so output files line up with inputs.
    if (target.fd === undefined) target.fd = this.openTmp(target);
    const fd = target.fd;
    // Data the device could not take may show only now (delayed allocation, network file systems).
    writing(target.path, () => fsyncSync(fd));
    target.fd = undefined;
    writing(target.path, () => closeSync(fd));
    writing(target.path, () => renameSync(target.tmp, target.path));
  }
}

// A misuse is reported at the user's call (see boundary.ts).
userEntryPoints(OutputSpec.prototype, ['bind', 'isDone', 'store', 'close', 'toConfigSet']);

function asItems(result: unknown): unknown[] {
  if (result === null || result === undefined) return [];
  return Array.isArray(result) ? result : [result];
}

function toNested(node: GroupNode): Nested<unknown> {
  return [...node.kids.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([, n]) => (isGroup(n) ? toNested(n) : n.item));
}
