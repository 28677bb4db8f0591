// ConfigSet: the inputs of an autoparallelized op. Items in memory (arrays nest into groups), one
// file, or several files (each file a group). Iteration yields every item with its location so the
// outputs can be put back in the same order and grouping, however the work is split up.

import { statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { asEntry, userEntryPoints } from '../boundary.js';
import { XprError } from '../errors.js';
import { formatOf, readFileEntries, type FileFormat } from './formats.js';
import { expandGlob, hasGlobMagic } from './glob.js';
import { LocCompactor, placeAt, type Loc, type Located, type Nested } from './loc.js';

export interface ConfigSetOptions {
  /** Directory prepended to relative file names (wfl's `file_root`). */
  fileRoot?: string;
  /** File format for every file, instead of telling it from the extension. */
  format?: FileFormat;
  /**
   * For in-memory items: whether arrays inside the array are groups (default true). Pass false when
   * the items themselves are arrays (e.g. vectors): then only the outer array is the list.
   */
  nested?: boolean;
}

/**
 * What a ConfigSet is built from:
 * - an array of items; arrays inside it are groups (`[[a, b], [c]]` keeps two groups);
 * - a string: one file, or a glob (`*`, `?`, `[..]`, `**`) meaning the files it matches;
 * - `{ files: [...] }`: several files or globs, each file one group, also when just one matches. (A
 *   plain array of strings is items, not file names: strings are valid items.) `glob: false` takes
 *   the names literally;
 * - `{ file }`: exactly one file, its name taken literally;
 * - another ConfigSet (same contents).
 */
export type ConfigSetSource<T> =
  | string
  | { file: string }
  | { files: string | readonly string[]; glob?: boolean }
  | readonly (T | Nested<T>)[]
  | ConfigSet<T>;

/** A file a ConfigSet reads. */
export interface InputFile {
  path: string;
  format: FileFormat;
}

type Source =
  | { kind: 'items'; items: readonly unknown[]; nested: boolean }
  | { kind: 'file'; file: InputFile }
  | { kind: 'files'; files: InputFile[] };

function rooted(path: string, fileRoot: string | undefined): string {
  return fileRoot === undefined || isAbsolute(path) ? path : join(fileRoot, path);
}

function requireFile(path: string): void {
  let ok = false;
  try {
    ok = statSync(path).isFile();
  } catch {
    ok = false;
  }
  if (!ok) throw new XprError(`Input file not found: ${path}`, { hint: 'Check the path (and fileRoot, if given).' });
}

function expandFiles(patterns: readonly string[], options: ConfigSetOptions, glob = true): InputFile[] {
  const files: InputFile[] = [];
  for (const p of patterns) {
    if (typeof p !== 'string') throw new XprError(`ConfigSet files must be strings, got ${typeof p}`);
    const path = rooted(p, options.fileRoot);
    let paths: string[];
    if (glob && hasGlobMagic(path)) {
      paths = expandGlob(path);
      if (paths.length === 0) throw new XprError(`Input glob ${path} matched no files`);
    } else {
      requireFile(path);
      paths = [path];
    }
    for (const f of paths) files.push({ path: f, format: formatOf(f, options.format) });
  }
  return files;
}

function copyTree(items: readonly unknown[], nested: boolean): Nested<unknown> {
  return items.map((x) => (nested && Array.isArray(x) ? copyTree(x, true) : x));
}

/** What a ConfigSet reads, from what it was made of; checks that the files exist. */
function sourceOf<T>(source: Exclude<ConfigSetSource<T>, ConfigSet<T>>, options: ConfigSetOptions): Source {
  if (typeof source === 'string') {
    const path = rooted(source, options.fileRoot);
    if (hasGlobMagic(path)) return { kind: 'files', files: expandFiles([source], options) };
    requireFile(path);
    return { kind: 'file', file: { path, format: formatOf(path, options.format) } };
  }
  if (Array.isArray(source)) return { kind: 'items', items: source, nested: options.nested ?? true };
  if (source !== null && typeof source === 'object' && 'files' in source) {
    const files = typeof source.files === 'string' ? [source.files] : source.files;
    return { kind: 'files', files: expandFiles(files, options, source.glob ?? true) };
  }
  if (source !== null && typeof source === 'object' && 'file' in source) {
    const [file] = expandFiles([source.file], options, false) as [InputFile];
    return { kind: 'file', file };
  }
  throw new XprError(`Cannot make a ConfigSet from ${source === null ? 'null' : typeof source}`, {
    hint: 'Pass an array of items, a file name or glob, or { files: [...] }.',
  });
}

/**
 * A set of items to process, with the grouping they came in.
 *
 * Iterate with `for await (const { item, loc } of cs)`: iteration is async for every source, because
 * files are read lazily, line by line. `loc` is the item's location: `[i]` in a flat array or a single
 * file, `[g, i]` for item i of group (or file) g, deeper for deeper nesting. Pass it to
 * `OutputSpec.store` with the item's result.
 */
export class ConfigSet<T = unknown> implements AsyncIterable<Located<T>> {
  private readonly source: Source;

  constructor(source: ConfigSetSource<T>, options: ConfigSetOptions = {}) {
    // A wrong file name is reported at the user's `new ConfigSet(...)` (see boundary.ts).
    this.source = source instanceof ConfigSet
      ? (source as ConfigSet<T>).source
      : asEntry(new.target, () => sourceOf(source, options));
  }

  /** A ConfigSet over several files (or globs), each file one group. */
  static fromFiles<T = unknown>(files: string | readonly string[], options: ConfigSetOptions = {}): ConfigSet<T> {
    return new ConfigSet<T>({ files }, options);
  }

  /** 'items' (in memory), 'file' (one file: locations `[i]`) or 'files' (locations `[file, i]`). */
  get kind(): Source['kind'] {
    return this.source.kind;
  }

  /** The files read, in group order (empty for in-memory items). */
  get inputFiles(): readonly InputFile[] {
    if (this.source.kind === 'file') return [this.source.file];
    if (this.source.kind === 'files') return this.source.files;
    return [];
  }

  /** The paths of the files read (empty for in-memory items). */
  get files(): string[] {
    return this.inputFiles.map((f) => f.path);
  }

  /** Every item with its location, in order. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Located<T>> {
    const src = this.source;
    if (src.kind === 'items') {
      yield* walkItems<T>(src.items, src.nested, []);
    } else if (src.kind === 'file') {
      yield* readFile<T>(src.file, []);
    } else {
      for (let f = 0; f < src.files.length; f++) yield* readFile<T>(src.files[f] as InputFile, [f]);
    }
  }

  /** All items, flattened, in order. */
  async toArray(): Promise<T[]> {
    const out: T[] = [];
    for await (const { item } of this) out.push(item);
    return out;
  }

  /** Number of items (reads the files). */
  async count(): Promise<number> {
    let n = 0;
    for await (const _ of this) n++;
    return n;
  }

  /**
   * The items with their grouping: nested arrays as given, one array per file for several files,
   * and for one file the nesting recorded in it (flat unless it holds `_ConfigSet_loc` markers).
   */
  async groups(): Promise<Nested<T>> {
    const src = this.source;
    if (src.kind === 'items') return copyTree(src.items, src.nested) as Nested<T>;
    const root: Nested<T> = src.kind === 'files' ? src.files.map(() => []) : [];
    for await (const { item, loc } of this) placeAt(root, loc, item);
    return root;
  }

  /** A short description for messages, e.g. `ConfigSet(2 files: a.xyz, b.xyz)`. */
  toString(): string {
    const src = this.source;
    if (src.kind === 'items') return `ConfigSet(${src.items.length} items in memory)`;
    if (src.kind === 'file') return `ConfigSet(${src.file.path})`;
    const names = src.files.slice(0, 3).map((f) => f.path).join(', ');
    return `ConfigSet(${src.files.length} files: ${names}${src.files.length > 3 ? ', ...' : ''})`;
  }
}

// A bad input file is reported at the user's call that reads it (see boundary.ts).
userEntryPoints(ConfigSet.prototype, ['toArray', 'count', 'groups']);

function* walkItems<T>(items: readonly unknown[], nested: boolean, prefix: number[]): Generator<Located<T>> {
  for (let i = 0; i < items.length; i++) {
    const x = items[i];
    const loc = [...prefix, i];
    if (nested && Array.isArray(x)) yield* walkItems<T>(x, true, loc);
    else yield { item: x as T, loc };
  }
}

async function* readFile<T>(file: InputFile, prefix: Loc): AsyncGenerator<Located<T>> {
  const compactor = new LocCompactor();
  let n = 0;
  for await (const { item, key } of readFileEntries(file.path, file.format)) {
    n++;
    // Items without a marker follow the previous one at the top level of the file.
    let pos: number[];
    try {
      pos = compactor.next(key ?? [compactor.lastTop + 1]);
    } catch (e) {
      throw new XprError(`${file.path}: item ${n}: ${e instanceof Error ? e.message : String(e)}`, {
        hint: 'The _ConfigSet_loc markers in this file are inconsistent; remove them to read it as a flat list.',
      });
    }
    yield { item: item as T, loc: [...prefix, ...pos] };
  }
}
