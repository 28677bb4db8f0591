// The value grammar of extended XYZ comment lines (https://github.com/libAtoms/extxyz, README):
// key=value pairs whose values are ints, floats, booleans, bare or quoted strings, old-style arrays
// in "..." or {...}, and new-style [..] / [[..], [..]] arrays. Parsing follows the spec's type order
// (int, float, bool, string); formatting picks the spelling that parses back to the same value.

/** A per-frame scalar. */
export type ExtxyzScalar = string | number | boolean;
/** A per-frame (info) value: scalar, 1-D or 2-D array. */
export type InfoValue = ExtxyzScalar | ExtxyzScalar[] | ExtxyzScalar[][];

/** A syntax error in a comment line; `column` is 0-based. */
export class KeyValueSyntaxError extends Error {
  constructor(message: string, readonly column: number) {
    super(message);
  }
}

const INT_RE = /^[+-]?(?:0|[1-9][0-9]*)$/;
const FLOAT_RE = /^[+-]?(?:(?:(?:0|[1-9][0-9]*)\.|\.)[0-9]*(?:[dDeE][+-]?[0-9]+)?|(?:0|[1-9][0-9]*)[dDeE][+-]?[0-9]+)$/;
// Python's float() accepts these and ASE writes them; the spec has no NaN, so we follow ASE.
const NONFINITE_RE = /^([+-]?)(nan|inf|infinity)$/i;
const TRUE_RE = /^(?:[tT]rue|TRUE|T)$/;
const FALSE_RE = /^(?:[fF]alse|FALSE|F)$/;
// A string may be written bare only without whitespace and the characters that delimit values.
const BARE_SAFE_RE = /^[^\s=",}{\][\\]+$/;

/** What a token reads as, in the spec's order: I (int), R (float), L (bool), S (string). */
export type TokenKind = 'I' | 'R' | 'L' | 'S';

interface Token {
  kind: TokenKind;
  value: ExtxyzScalar;
  /** Text of the token (unescaped content for quoted strings): a mixed array becomes these strings. */
  raw: string;
}

/** Parses a float token as the spec (and Python's float) spell them; undefined if it is not one. */
export function parseFloatToken(text: string): number | undefined {
  if (FLOAT_RE.test(text) && /[0-9]/.test(text)) return Number(text.replace(/[dD]/, 'e'));
  if (INT_RE.test(text)) return Number(text);
  const m = NONFINITE_RE.exec(text);
  if (!m) return undefined;
  if (m[2]?.toLowerCase() === 'nan') return NaN;
  return m[1] === '-' ? -Infinity : Infinity;
}

/** Parses a boolean token (T, F, true, False, TRUE, ...); undefined if it is not one. */
export function parseBoolToken(text: string): boolean | undefined {
  if (TRUE_RE.test(text)) return true;
  if (FALSE_RE.test(text)) return false;
  return undefined;
}

/** Classifies a bare token by the spec's order of types. */
export function classifyToken(text: string): Token {
  if (INT_RE.test(text)) return { kind: 'I', value: Number(text), raw: text };
  const f = parseFloatToken(text);
  if (f !== undefined) return { kind: 'R', value: f, raw: text };
  const b = parseBoolToken(text);
  if (b !== undefined) return { kind: 'L', value: b, raw: text };
  return { kind: 'S', value: text, raw: text };
}

/** The one type all tokens can share (ints widen to floats; anything else mixed becomes strings). */
function commonKind(tokens: readonly Token[]): TokenKind {
  let kind: TokenKind | undefined;
  for (const t of tokens) {
    if (kind === undefined || kind === t.kind) kind = t.kind;
    else if ((kind === 'I' && t.kind === 'R') || (kind === 'R' && t.kind === 'I')) kind = 'R';
    else return 'S';
  }
  return kind ?? 'S';
}

function valuesAs(tokens: readonly Token[], kind: TokenKind): ExtxyzScalar[] {
  return kind === 'S' ? tokens.map((t) => t.raw) : tokens.map((t) => t.value);
}

/** Scans one comment line. Positions are code units of the line. */
class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): string {
    return this.text[this.pos] ?? '';
  }

  skipSpace(): void {
    while (!this.done && /\s/.test(this.peek())) this.pos++;
  }

  fail(message: string, at = this.pos): never {
    throw new KeyValueSyntaxError(message, at);
  }

  /** Reads `"..."` with backslash escapes (`\n` is a newline, `\x` is `x`); returns the content. */
  quoted(): string {
    const start = this.pos;
    this.pos++;
    let out = '';
    for (;;) {
      if (this.done) this.fail('unterminated quoted string', start);
      const c = this.peek();
      this.pos++;
      if (c === '"') return out;
      if (c === '\\') {
        if (this.done) this.fail('unterminated quoted string', start);
        const e = this.peek();
        this.pos++;
        out += e === 'n' ? '\n' : e;
      } else {
        out += c;
      }
    }
  }

  /** Reads characters up to whitespace or one of `stops`. */
  word(stops: string): string {
    const start = this.pos;
    while (!this.done && !/\s/.test(this.peek()) && !stops.includes(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }
}

/** Old-style array in quotes: numbers or booleans only; one element is a scalar; else a string. */
function fromQuoted(content: string): InfoValue {
  const words = content.split(/\s+/).filter((w) => w !== '');
  if (words.length === 0) return content;
  const tokens = words.map(classifyToken);
  const kind = commonKind(tokens);
  if (kind === 'S') return content;
  const values = valuesAs(tokens, kind);
  return values.length === 1 ? (values[0] as ExtxyzScalar) : values;
}

/** Old-style array in braces: any type; one element is a scalar. */
function fromBraces(content: string): InfoValue {
  const words = content.split(/\s+/).filter((w) => w !== '');
  const tokens = words.map(classifyToken);
  const values = valuesAs(tokens, commonKind(tokens));
  return values.length === 1 ? (values[0] as ExtxyzScalar) : values;
}

/** One element of a new-style array: a quoted string is always a string. */
function arrayElement(s: Scanner): Token {
  if (s.peek() === '"') {
    const raw = s.quoted();
    return { kind: 'S', value: raw, raw };
  }
  const text = s.word(',]');
  if (text === '') s.fail('expected an array element');
  return classifyToken(text);
}

/** Reads `[a, b]` or `[[a, b], [c, d]]` starting at `[`. */
function newStyleArray(s: Scanner): InfoValue {
  const start = s.pos;
  s.pos++;
  const rows: Token[][] = [];
  const flat: Token[] = [];
  s.skipSpace();
  if (s.peek() === ']') {
    s.pos++;
    return [];
  }
  for (;;) {
    s.skipSpace();
    if (s.peek() === '[') {
      if (flat.length > 0) s.fail('array mixes values and rows');
      const row = newStyleRow(s);
      rows.push(row);
    } else {
      if (rows.length > 0) s.fail('array mixes values and rows');
      flat.push(arrayElement(s));
    }
    s.skipSpace();
    const c = s.peek();
    s.pos++;
    if (c === ']') break;
    if (c !== ',') s.fail(c === '' ? 'unterminated array' : `expected ',' or ']' in array, got '${c}'`, c === '' ? start : s.pos - 1);
  }
  if (rows.length === 0) return valuesAs(flat, commonKind(flat));
  const width = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== width)) s.fail('rows of a 2-D array differ in length', start);
  const kind = commonKind(rows.flat());
  return rows.map((r) => valuesAs(r, kind));
}

function newStyleRow(s: Scanner): Token[] {
  const start = s.pos;
  s.pos++;
  const row: Token[] = [];
  s.skipSpace();
  if (s.peek() === ']') {
    s.pos++;
    return row;
  }
  for (;;) {
    s.skipSpace();
    if (s.peek() === '[') s.fail('arrays deeper than 2-D are not allowed');
    row.push(arrayElement(s));
    s.skipSpace();
    const c = s.peek();
    s.pos++;
    if (c === ']') return row;
    if (c !== ',') s.fail(c === '' ? 'unterminated array' : `expected ',' or ']' in array, got '${c}'`, c === '' ? start : s.pos - 1);
  }
}

function valueAt(s: Scanner): InfoValue {
  const c = s.peek();
  if (c === '"') return fromQuoted(s.quoted());
  if (c === '{') {
    const start = s.pos;
    const end = s.text.indexOf('}', start);
    if (end < 0) s.fail('unterminated {...} array', start);
    s.pos = end + 1;
    return fromBraces(s.text.slice(start + 1, end));
  }
  if (c === '[') return newStyleArray(s);
  const text = s.word('');
  if (text === '') s.fail('expected a value after =');
  return classifyToken(text).value;
}

/** One key=value pair of a comment line; `explicit` is false for a bare key (read as true). */
export interface KeyValue {
  key: string;
  value: InfoValue;
  explicit: boolean;
}

/**
 * Parses a comment line into key/value pairs in line order. A key without `=value` is `true`
 * (as ASE reads it). Throws KeyValueSyntaxError on malformed text.
 */
export function parseKeyValues(line: string): KeyValue[] {
  const s = new Scanner(line);
  const pairs: KeyValue[] = [];
  for (;;) {
    s.skipSpace();
    if (s.done) return pairs;
    const keyAt = s.pos;
    const key = s.peek() === '"' ? s.quoted() : s.word('=');
    if (key === '') s.fail('expected a key', keyAt);
    if (line[keyAt] !== '"' && !BARE_SAFE_RE.test(key)) s.fail(`'${key}' is not a valid bare key (quote it)`, keyAt);
    s.skipSpace();
    let value: InfoValue = true;
    const explicit = s.peek() === '=';
    if (explicit) {
      s.pos++;
      s.skipSpace();
      if (s.done) s.fail(`key '${key}' has '=' but no value`);
      value = valueAt(s);
      if (!s.done && !/\s/.test(s.peek())) s.fail(`unexpected '${s.peek()}' after the value of '${key}'`);
    }
    pairs.push({ key, value, explicit });
  }
}

// ---- formatting --------------------------------------------------------------------------------

/** Shortest text that reads back as the same float (JS's own shortest round-trip repr). */
export function formatNumber(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '-0';
  return String(x);
}

/** Quotes a string with the escapes the reader undoes. */
export function quoteString(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

/** A string written bare if that reads back as the same string, else quoted. */
function formatString(s: string): string {
  return BARE_SAFE_RE.test(s) && classifyToken(s).kind === 'S' ? s : quoteString(s);
}

/** Formats a key: bare when it can be, else quoted. */
export function formatKey(key: string): string {
  return BARE_SAFE_RE.test(key) ? key : quoteString(key);
}

type ScalarKind = 'number' | 'boolean' | 'string';

function scalarKind(v: unknown): ScalarKind | undefined {
  const t = typeof v;
  return t === 'number' || t === 'boolean' || t === 'string' ? t : undefined;
}

function formatScalar(v: ExtxyzScalar): string {
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'boolean') return v ? 'T' : 'F';
  return formatString(v);
}

/** Why a value cannot be written, or undefined if it can; checks one homogeneous 1-D array. */
function checkRow(row: readonly unknown[], kind: ScalarKind | undefined): string | undefined {
  for (const v of row) {
    const k = scalarKind(v);
    if (k === undefined) return `holds ${describe(v)}`;
    if (kind !== undefined && k !== kind) return `mixes ${kind}s and ${k}s`;
    kind = k;
  }
  return undefined;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a nested array';
  return `a value of type ${typeof v}`;
}

/**
 * Formats an info value so that it parses back equal. Returns an error text for values extxyz
 * cannot hold (objects, null, 3-D arrays, ragged or mixed arrays).
 */
export function formatInfoValue(v: unknown): { text: string } | { error: string } {
  // Readers split lines at a lone CR too, and the spec has no escape for it.
  const hasCR = (x: unknown): boolean => (typeof x === 'string' ? x.includes('\r') : Array.isArray(x) && x.some(hasCR));
  if (hasCR(v)) return { error: 'holds a carriage return (\\r), which extxyz cannot escape' };
  const k = scalarKind(v);
  if (k !== undefined) return { text: formatScalar(v as ExtxyzScalar) };
  if (!Array.isArray(v)) return { error: `is ${describe(v)}` };
  if (v.length === 0) return { text: '[]' };
  if (v.every((r) => Array.isArray(r))) {
    const rows = v as unknown[][];
    const width = rows[0]?.length ?? 0;
    if (rows.some((r) => r.length !== width)) return { error: 'is a 2-D array whose rows differ in length' };
    const problem = checkRow(rows.flat(), undefined);
    if (problem) return { error: `is a 2-D array that ${problem}` };
    return { text: '[' + rows.map((r) => '[' + (r as ExtxyzScalar[]).map(formatScalar).join(', ') + ']').join(', ') + ']' };
  }
  const problem = checkRow(v, undefined);
  if (problem) return { error: `is an array that ${problem}` };
  const row = v as ExtxyzScalar[];
  // Old-style "1 2 3" is what ASE writes and reads; it cannot hold strings or a single element.
  if (row.length > 1 && typeof row[0] !== 'string') return { text: '"' + row.map(formatScalar).join(' ') + '"' };
  return { text: '[' + row.map(formatScalar).join(', ') + ']' };
}
