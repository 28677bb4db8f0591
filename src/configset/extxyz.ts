// Extended XYZ frames as plain JSON-friendly objects, read and written without ASE.
//
// A frame is an atom-count line, a comment line of key=value pairs (Lattice, Properties, pbc and
// free per-frame info) and one line per atom whose columns Properties=name:type:count:... describes.
// The writer's output is canonical: reading it and writing again gives the same text; reading any
// valid file, writing it and reading again gives deep-equal frames.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { XprError } from '../errors.js';
import {
  formatInfoValue, formatKey, formatNumber, KeyValueSyntaxError, parseBoolToken, parseFloatToken,
  parseKeyValues, type ExtxyzScalar, type InfoValue, type KeyValue,
} from './extxyz-values.js';

export type { ExtxyzScalar, InfoValue } from './extxyz-values.js';

/** Per-atom column type as in Properties=: S string, I integer, R real, L logical. */
export type ColumnType = 'S' | 'I' | 'R' | 'L';

/** One atom's value in a column: a scalar for a 1-wide column, an array for a wider one. */
export type AtomValue = ExtxyzScalar | ExtxyzScalar[];

/**
 * One extended XYZ frame. Key order of `info` and `arrays` is the order of the file (except that
 * JavaScript puts integer-like keys such as "3" first in any object).
 */
export interface Frame {
  natoms: number;
  /** Cell vectors as rows (`Lattice=`), if the frame has one. */
  lattice?: number[][];
  /** Periodicity per cell vector (`pbc=`), if the frame states it. ASE's default is T with a lattice. */
  pbc?: boolean[];
  /** Per-frame values other than Lattice, Properties and pbc. */
  info: Record<string, InfoValue>;
  /** Per-atom columns in Properties order, each with `natoms` values. */
  arrays: Record<string, AtomValue[]>;
  /**
   * Column types as read (so an R column of whole numbers stays R). Optional when writing: a missing
   * or unfitting entry is inferred from the values.
   */
  types?: Record<string, ColumnType>;
}

/** Columns written as R even when every value is a whole number, because ASE reads them as floats. */
const REAL_COLUMNS = new Set(['pos', 'forces', 'force', 'velo', 'momenta', 'mass', 'masses', 'charges',
  'initial_charges', 'magmoms', 'initial_magmoms', 'local_energy', 'energies']);
/** Width of a column with no atoms, which the values cannot tell. */
const EMPTY_WIDTH: Record<string, number> = { pos: 3, forces: 3, force: 3, velo: 3, momenta: 3 };
const SPECIAL_KEYS = new Set(['Lattice', 'Properties', 'pbc']);
const DEFAULT_PROPERTIES = 'species:S:1:pos:R:3';

interface Column {
  name: string;
  type: ColumnType;
  width: number;
}

function where(file: string, line: number): string {
  return `${file}:${line}`;
}

function parseProperties(spec: unknown, at: string): Column[] {
  if (typeof spec !== 'string') throw new XprError(`${at}: Properties must be name:type:count:..., got ${JSON.stringify(spec)}`);
  const parts = spec.split(':');
  if (parts.length % 3 !== 0 || spec === '') {
    throw new XprError(`${at}: Properties=${spec} is not a list of name:type:count triplets`);
  }
  const columns: Column[] = [];
  for (let i = 0; i < parts.length; i += 3) {
    const [name = '', t = '', n = ''] = parts.slice(i, i + 3);
    const type = t.toUpperCase();
    if (name === '' || !/^[SIRL]$/.test(type) || !/^[1-9][0-9]*$/.test(n)) {
      throw new XprError(`${at}: bad Properties entry '${name}:${t}:${n}' (expected name:S|I|R|L:count)`);
    }
    if (columns.some((c) => c.name === name)) throw new XprError(`${at}: Properties names '${name}' twice`);
    columns.push({ name, type: type as ColumnType, width: Number(n) });
  }
  return columns;
}

function parseLattice(v: InfoValue, at: string): number[][] {
  const nums = (Array.isArray(v) ? v.flat() : [v]).filter((x): x is number => typeof x === 'number');
  const isMatrix = Array.isArray(v) && v.length === 3 && v.every((r) => Array.isArray(r) && r.length === 3);
  const flatLen = Array.isArray(v) && !v.some((r) => Array.isArray(r)) ? v.length : -1;
  if (nums.length === 9 && (isMatrix || flatLen === 9)) return [nums.slice(0, 3), nums.slice(3, 6), nums.slice(6, 9)];
  if (nums.length === 3 && flatLen === 3) {
    // Three numbers are the diagonal of an orthorhombic cell.
    const [a = 0, b = 0, c = 0] = nums;
    return [[a, 0, 0], [0, b, 0], [0, 0, c]];
  }
  throw new XprError(`${at}: Lattice must be 9 numbers or a 3x3 matrix, got ${JSON.stringify(v)}`);
}

function parsePbc(v: InfoValue, at: string): boolean[] {
  if (typeof v === 'boolean') return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every((b) => typeof b === 'boolean')) return v as boolean[];
  throw new XprError(`${at}: pbc must be three booleans such as "T T F", got ${JSON.stringify(v)}`);
}

interface Header {
  info: Record<string, InfoValue>;
  columns: Column[];
  lattice?: number[][];
  pbc?: boolean[];
}

function parseHeader(line: string, at: string): Header {
  if (line.trim() === '') return { info: {}, columns: parseProperties(DEFAULT_PROPERTIES, at) };
  let pairs: KeyValue[] | undefined;
  try {
    pairs = parseKeyValues(line);
  } catch (e) {
    if (!(e instanceof KeyValueSyntaxError)) throw e;
    // A plain XYZ file has free text here; only a line that claims to be extended XYZ is an error.
    if (/(^|\s)Properties\s*=/.test(line)) {
      throw new XprError(`${at}: ${e.message} (column ${e.column + 1})`, { hint: 'Check quotes and brackets on the comment line.' });
    }
  }
  // Without Properties the spec reads the line as plain XYZ's free comment; we keep key=value data
  // typed when the line is clearly that (a word list such as "made by hand" stays a comment).
  const isData = pairs !== undefined &&
    (pairs.some((p) => p.key === 'Properties') || pairs.every((p) => p.explicit));
  if (pairs === undefined || !isData) {
    return { info: { comment: line }, columns: parseProperties(DEFAULT_PROPERTIES, at) };
  }
  const header: Header = { info: {}, columns: [] };
  let props: unknown = DEFAULT_PROPERTIES;
  for (const { key, value } of pairs) {
    if (key === 'Properties') props = value;
    else if (key === 'Lattice') header.lattice = parseLattice(value, at);
    else if (key === 'pbc') header.pbc = parsePbc(value, at);
    else header.info[key] = value;
  }
  header.columns = parseProperties(props, at);
  return header;
}

function parseCell(text: string, type: ColumnType): ExtxyzScalar | undefined {
  switch (type) {
    case 'S':
      return text;
    case 'I':
      return /^[+-]?[0-9]+$/.test(text) ? Number(text) : undefined;
    case 'R':
      return parseFloatToken(text);
    case 'L':
      return parseBoolToken(text);
  }
}

const TYPE_NAMES: Record<ColumnType, string> = { S: 'string', I: 'integer', R: 'real', L: 'logical' };

/**
 * Incremental reader: feed lines one by one (lazy reading of big files), get each frame as it
 * completes. Errors name `file:line`.
 */
export class ExtxyzParser {
  private state: 'count' | 'comment' | 'atoms' = 'count';
  private natoms = 0;
  private startLine = 0;
  private header: Header | undefined;
  private cols: AtomValue[][] = [];
  private seen = 0;

  constructor(private readonly file = '<string>') {}

  /** Feeds one line (without its end-of-line); returns the frame this line completes, if any. */
  push(rawLine: string, lineNo: number): Frame | undefined {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const at = where(this.file, lineNo);
    if (this.state === 'count') {
      if (line.trim() === '') return undefined;
      const m = /^\s*([0-9]+)\s*$/.exec(line);
      if (!m) throw new XprError(`${at}: expected the number of atoms of a frame, got '${line.slice(0, 40)}'`);
      this.natoms = Number(m[1]);
      this.startLine = lineNo;
      this.state = 'comment';
      return undefined;
    }
    if (this.state === 'comment') {
      this.header = parseHeader(line, at);
      this.cols = this.header.columns.map(() => []);
      this.seen = 0;
      this.state = 'atoms';
      return this.natoms === 0 ? this.finish() : undefined;
    }
    this.atomLine(line, at);
    return this.seen === this.natoms ? this.finish() : undefined;
  }

  /** Call after the last line: throws if a frame was cut short. */
  end(lastLine: number): void {
    if (this.state === 'count') return;
    const got = this.state === 'comment' ? 'no comment line' : `${this.seen} atom line(s)`;
    throw new XprError(`${where(this.file, lastLine)}: file ends inside the frame that starts at line ${this.startLine}: ` +
      `expected ${this.natoms} atom line(s), got ${got}`, { hint: 'The file is truncated, or the atom count is wrong.' });
  }

  private atomLine(line: string, at: string): void {
    const header = this.header as Header;
    const words = line.trim().split(/\s+/).filter((w) => w !== '');
    const expected = header.columns.reduce((n, c) => n + c.width, 0);
    if (words.length !== expected) {
      throw new XprError(`${at}: atom line has ${words.length} column(s), Properties describes ${expected}`);
    }
    let w = 0;
    header.columns.forEach((col, ci) => {
      const cells: ExtxyzScalar[] = [];
      for (let k = 0; k < col.width; k++, w++) {
        const text = words[w] as string;
        const v = parseCell(text, col.type);
        if (v === undefined) throw new XprError(`${at}: column ${w + 1} (${col.name}) is '${text}', not ${TYPE_NAMES[col.type]}`);
        cells.push(v);
      }
      (this.cols[ci] as AtomValue[]).push(col.width === 1 ? (cells[0] as ExtxyzScalar) : cells);
    });
    this.seen++;
  }

  private finish(): Frame {
    const header = this.header as Header;
    const frame: Frame = { natoms: this.natoms, info: header.info, arrays: {}, types: {} };
    if (header.lattice) frame.lattice = header.lattice;
    if (header.pbc) frame.pbc = header.pbc;
    header.columns.forEach((col, ci) => {
      frame.arrays[col.name] = this.cols[ci] as AtomValue[];
      (frame.types as Record<string, ColumnType>)[col.name] = col.type;
    });
    this.state = 'count';
    this.header = undefined;
    this.cols = [];
    return frame;
  }
}

/** Parses the text of an extended XYZ file into frames; `file` names it in errors. */
export function parseExtxyz(text: string, file = '<string>'): Frame[] {
  const parser = new ExtxyzParser(file);
  const frames: Frame[] = [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    const f = parser.push(line, i + 1);
    if (f) frames.push(f);
  });
  parser.end(lines.length);
  return frames;
}

/** Reads frames from a file lazily, one at a time. */
export async function* readExtxyzFile(path: string): AsyncGenerator<Frame> {
  const parser = new ExtxyzParser(path);
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const line of rl) {
      n++;
      const f = parser.push(line, n);
      if (f) yield f;
    }
  } finally {
    rl.close();
  }
  parser.end(n);
}

// ---- writing -----------------------------------------------------------------------------------

function frameError(message: string): XprError {
  return new XprError(`Cannot write extended XYZ: ${message}`, {
    hint: 'Extended XYZ holds numbers, strings, booleans and 1-D/2-D arrays of them; use JSON Lines (.jsonl) for other data.',
  });
}

/** Type and width of a column from its values, honouring `hint` when the values fit it. */
function columnOf(name: string, values: readonly unknown[], hint: ColumnType | undefined): Column {
  let width = -1;
  let kind: 'number' | 'string' | 'boolean' | undefined;
  let allInts = true;
  for (const v of values) {
    const cells = Array.isArray(v) ? v : [v];
    const w = Array.isArray(v) ? v.length : 1;
    if (width === -1) width = w;
    else if (w !== width) throw frameError(`column '${name}' has values of different widths (${width} and ${w})`);
    if (w === 0) throw frameError(`column '${name}' has an empty value`);
    for (const c of cells) {
      const t = typeof c;
      if (t !== 'number' && t !== 'string' && t !== 'boolean') throw frameError(`column '${name}' holds a value of type ${c === null ? 'null' : t}`);
      if (kind !== undefined && t !== kind) throw frameError(`column '${name}' mixes ${kind}s and ${t}s`);
      kind = t as 'number' | 'string' | 'boolean';
      if (t === 'number' && !Number.isSafeInteger(c)) allInts = false;
      if (t === 'string' && (c === '' || /\s/.test(c as string))) {
        throw frameError(`column '${name}' holds ${JSON.stringify(c)}; per-atom strings must be non-empty and without whitespace`);
      }
    }
  }
  if (width === -1) return { name, type: hint ?? (name === 'species' ? 'S' : 'R'), width: EMPTY_WIDTH[name] ?? 1 };
  let type: ColumnType;
  if (kind === 'string') type = 'S';
  else if (kind === 'boolean') type = 'L';
  else if (hint === 'R' || !allInts) type = 'R';
  else if (hint === 'I') type = 'I';
  else type = REAL_COLUMNS.has(name) ? 'R' : 'I';
  return { name, type, width };
}

function formatCell(v: ExtxyzScalar): string {
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'boolean') return v ? 'T' : 'F';
  return v;
}

function checkFrameShape(frame: Frame): void {
  if (frame === null || typeof frame !== 'object') throw frameError(`expected a frame object, got ${frame === null ? 'null' : typeof frame}`);
  if (!Number.isSafeInteger(frame.natoms) || frame.natoms < 0) throw frameError(`natoms must be a whole number >= 0, got ${String(frame.natoms)}`);
  if (frame.info === null || typeof frame.info !== 'object' || Array.isArray(frame.info)) throw frameError('info must be an object');
  if (frame.arrays === null || typeof frame.arrays !== 'object' || Array.isArray(frame.arrays)) throw frameError('arrays must be an object');
}

function latticeText(lattice: unknown): string {
  const ok = Array.isArray(lattice) && lattice.length === 3 &&
    lattice.every((r) => Array.isArray(r) && r.length === 3 && r.every((x) => typeof x === 'number'));
  if (!ok) throw frameError(`lattice must be a 3x3 array of numbers, got ${JSON.stringify(lattice)}`);
  return '"' + (lattice as number[][]).flat().map(formatNumber).join(' ') + '"';
}

function pbcText(pbc: unknown): string {
  if (!Array.isArray(pbc) || pbc.length !== 3 || !pbc.every((b) => typeof b === 'boolean')) {
    throw frameError(`pbc must be three booleans, got ${JSON.stringify(pbc)}`);
  }
  return '"' + pbc.map((b) => (b ? 'T' : 'F')).join(' ') + '"';
}

/** The text of one frame, ending in a newline. Throws XprError for values extxyz cannot hold. */
export function formatFrame(frame: Frame): string {
  checkFrameShape(frame);
  const names = Object.keys(frame.arrays);
  const columns: Column[] = [];
  for (const name of names) {
    if (!/^[^\s:=",\\]+$/.test(name)) throw frameError(`column name ${JSON.stringify(name)} cannot appear in Properties`);
    const values = frame.arrays[name];
    if (!Array.isArray(values)) throw frameError(`column '${name}' is not an array`);
    if (values.length !== frame.natoms) throw frameError(`column '${name}' has ${values.length} values for ${frame.natoms} atoms`);
    columns.push(columnOf(name, values, frame.types?.[name]));
  }
  if (columns.length === 0) {
    if (frame.natoms > 0) throw frameError('a frame with atoms needs at least one column (e.g. species and pos)');
    columns.push(...parseProperties(DEFAULT_PROPERTIES, 'default'));
  }

  const fields: string[] = [];
  if (frame.lattice !== undefined) fields.push(`Lattice=${latticeText(frame.lattice)}`);
  fields.push('Properties=' + columns.map((c) => `${c.name}:${c.type}:${c.width}`).join(':'));
  for (const [key, v] of Object.entries(frame.info)) {
    if (v === undefined) continue;
    if (SPECIAL_KEYS.has(key)) throw frameError(`info key '${key}' clashes with the frame's own ${key}; use frame.${key === 'Lattice' ? 'lattice' : key === 'pbc' ? 'pbc' : 'arrays'}`);
    if (key === '' || /[\r\n]/.test(key)) throw frameError(`info key ${JSON.stringify(key)} is not allowed`);
    const out = formatInfoValue(v);
    if ('error' in out) throw frameError(`info key '${key}' ${out.error}`);
    fields.push(`${formatKey(key)}=${out.text}`);
  }
  if (frame.pbc !== undefined) fields.push(`pbc=${pbcText(frame.pbc)}`);

  const lines = [String(frame.natoms), fields.join(' ')];
  if (frame.natoms > 0) lines.push(...atomLines(frame, columns));
  return lines.join('\n') + '\n';
}

/** Per-atom lines with each column padded to its widest cell: numbers right, strings left. */
function atomLines(frame: Frame, columns: readonly Column[]): string[] {
  const cells: string[][] = [];
  const left: boolean[] = [];
  for (const col of columns) {
    const values = frame.arrays[col.name] as AtomValue[];
    for (let k = 0; k < col.width; k++) {
      cells.push(values.map((v) => formatCell(col.width === 1 && !Array.isArray(v) ? v : (v as ExtxyzScalar[])[k] as ExtxyzScalar)));
      left.push(col.type === 'S' || col.type === 'L');
    }
  }
  const widths = cells.map((c) => c.reduce((w, s) => Math.max(w, s.length), 0));
  const out: string[] = [];
  for (let a = 0; a < frame.natoms; a++) {
    const row = cells.map((c, j) => {
      const s = c[a] as string;
      const w = widths[j] as number;
      return left[j] ? s.padEnd(w) : s.padStart(w);
    });
    out.push(row.join(' ').trimEnd());
  }
  return out;
}

/** The text of several frames. */
export function formatExtxyz(frames: Iterable<Frame>): string {
  let out = '';
  for (const f of frames) out += formatFrame(f);
  return out;
}

/** True if `x` has the shape of a Frame (natoms, info and arrays); values are checked when written. */
export function isFrame(x: unknown): x is Frame {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return false;
  const f = x as Record<string, unknown>;
  return typeof f.natoms === 'number' && typeof f.info === 'object' && f.info !== null &&
    typeof f.arrays === 'object' && f.arrays !== null;
}
