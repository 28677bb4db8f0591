// OutputSpec: where the results of an autoparallelized op go, placed by the location of the input
// each came from. Results may arrive in any order; files are written in input order all the same.
//
// Files are written under a temporary name in the same directory and renamed on close(), so a killed
// run never leaves an output that looks complete, and isDone() (all outputs exist) means a finished
// earlier run. An input whose result is null still consumes its location, so every later result
// lands in the right file (wfl shifts them into the previous file's neighbour when a chunk ends empty).

import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { XprError } from '../errors.js';
import { crashPoint } from '../util/crash-point.js';
import { ConfigSet } from './configset.js';
import { entryText, formatOf, type FileFormat } from './formats.js';
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
    if (files === undefined || files === null) {
      this.routing = 'memory';
    } else if (typeof files === 'string') {
      this.routing = 'whole';
      this.paths = [this.rooted(files)];
    } else if (Array.isArray(files)) {
      if (files.length === 0) throw new XprError('OutputSpec got an empty list of files', { hint: 'Pass no files to keep outputs in memory.' });
      this.routing = 'byTop';
      this.paths = files.map((f: unknown) => this.rooted(this.checkName(f)));
    } else if (typeof files === 'function' || typeof files === 'object') {
      this.routing = 'byTop';
    } else {
      throw new XprError(`OutputSpec files must be a string, an array, an object or a function, got ${typeof files}`);
    }
    if (this.paths) {
      this.checkDistinct(this.paths);
      for (const p of this.paths) formatOf(p, options.format);
    }
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
    return this.requirePaths().every((p) => existsSync(p));
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

  /** Drops partial outputs (temporary files); the final files are left as they were. */
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
      rmSync(t.tmp, { force: true });
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
    const tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
    this.targets = this.requirePaths().map((path) => ({
      path,
      format: formatOf(path, this.options.format),
      // A dot name in the same dir: rename is atomic there, and globs like *.xyz skip it.
      tmp: join(dirname(path), `.${basename(path)}.tmp-${tag}`),
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
    writeSync(target.fd, text);
    crashPoint('output-write');
  }

  private openTmp(target: Target): number {
    mkdirSync(dirname(target.path), { recursive: true });
    return openSync(target.tmp, 'w');
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
    fsyncSync(target.fd);
    closeSync(target.fd);
    target.fd = undefined;
    renameSync(target.tmp, target.path);
  }
}

function asItems(result: unknown): unknown[] {
  if (result === null || result === undefined) return [];
  return Array.isArray(result) ? result : [result];
}

function toNested(node: GroupNode): Nested<unknown> {
  return [...node.kids.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([, n]) => (isGroup(n) ? toNested(n) : n.item));
}
