// Text output of the CLI: colour (only on a terminal, never with NO_COLOR or --no-color), aligned
// tables and timestamps. Pure functions: the command modules' `render…` functions build on these and
// return strings, so tests pin output without a terminal.
import { createRequire } from 'node:module';
import type stringWidthOf from 'string-width';
import type { JobStatus } from '../store/status.js';

// string-width compiles large Unicode regexps as it loads (about 40 ms, which every `xpr` command
// would pay if it were imported here). Printable ASCII needs none of it, so it is loaded with the
// first other cell (require of an ES module: Node 20.19 or newer).
const requireHere = createRequire(import.meta.url);
let unicodeWidth: typeof stringWidthOf | undefined;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** The columns a terminal gives `text`: two for CJK and most emoji, none for combining accents. */
export function displayWidth(text: string): number {
  if (PRINTABLE_ASCII.test(text)) return text.length;
  unicodeWidth ??= (requireHere('string-width') as { default: typeof stringWidthOf }).default;
  return unicodeWidth(text);
}

export interface FormatOptions {
  /** Emit ANSI colour codes. */
  color: boolean;
  /** Times in UTC instead of the local zone (tests, and logs shared across zones). */
  utc?: boolean;
  /** Output goes to a terminal (redraw in place, progress). */
  tty?: boolean;
}

export const PLAIN: FormatOptions = { color: false, utc: true, tty: false };

/** Whether to colour a stream: a terminal, no NO_COLOR (any non-empty value), no --no-color. */
export function useColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv, flag = true): boolean {
  if (!flag) return false;
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  return stream.isTTY === true;
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, dim: 2, bold: 1 } as const;
export type Colour = keyof typeof CODES;

export function paint(text: string, colour: Colour | undefined, fmt: Pick<FormatOptions, 'color'>): string {
  if (!fmt.color || colour === undefined || text === '') return text;
  return `\x1b[${CODES[colour]}m${text}\x1b[0m`;
}

/** The colour of a job status: green done well, red ended badly, yellow/cyan still going, dim consumed. */
export function statusColour(status: string): Colour | undefined {
  switch (status as JobStatus) {
    case 'succeeded': return 'green';
    case 'failed': case 'died': return 'red';
    case 'created': return 'blue';
    case 'submitted': return 'yellow';
    case 'started': return 'cyan';
    case 'processed': case 'cleaned': return 'dim';
    default: return undefined;
  }
}

export interface Column {
  header: string;
  /** Right-align (numbers). */
  right?: boolean;
  /** Colour of a cell, from its text. */
  colour?: (text: string) => Colour | undefined;
}

/** A column that computes its cells from the items of a table. */
export interface ItemColumn<T> extends Column {
  cell: (item: T) => string;
}

/** Rows of strings as a table: columns padded to their widest cell, two spaces apart. */
export function table(columns: readonly Column[], rows: readonly (readonly string[])[], fmt: Pick<FormatOptions, 'color'>): string {
  return itemTable(columns.map((c, i) => ({ ...c, cell: (row: readonly string[]) => row[i] ?? '' })), rows, fmt);
}

/**
 * Items as a table, no trailing spaces; colour goes on after padding so escape codes never count
 * towards a width. Widths are the columns a terminal gives a cell (string-width: two for CJK and
 * most emoji, none for combining accents), so that names in any script line up. Cells are computed
 * twice (widths, then lines) rather than kept: over 100,000 jobs keeping them alive costs more in
 * garbage collection than computing them again.
 */
export function itemTable<T>(columns: readonly ItemColumn<T>[], items: readonly T[], fmt: Pick<FormatOptions, 'color'>): string {
  const widths = columns.map((c) => displayWidth(c.header));
  const n = columns.length;
  for (const item of items) {
    for (let i = 0; i < n; i++) {
      const w = displayWidth(columns[i]!.cell(item));
      if (w > widths[i]!) widths[i] = w;
    }
  }
  const last = n - 1;
  const line = (cell: (i: number) => string, header: boolean): string => {
    let out = '';
    for (let i = 0; i <= last; i++) {
      const col = columns[i]!;
      const text = cell(i);
      const pad = widths[i]! - displayWidth(text);
      const colour = header ? 'bold' : fmt.color ? col.colour?.(text) : undefined;
      const shown = colour && fmt.color ? paint(text, colour, fmt) : text;
      if (col.right) out += ' '.repeat(pad) + shown;
      else out += i === last ? shown : shown + ' '.repeat(pad);
      if (i < last) out += '  ';
    }
    return out;
  };
  // Lines are joined in chunks so that only the chunks, not 100,000 line strings, stay alive.
  const chunks: string[] = [line((i) => columns[i]!.header, true)];
  const CHUNK = 1024;
  let lines: string[] = [];
  for (const item of items) {
    lines.push(line((i) => columns[i]!.cell(item), false));
    if (lines.length === CHUNK) {
      chunks.push(lines.join('\n'));
      lines = [];
    }
  }
  if (lines.length) chunks.push(lines.join('\n'));
  return chunks.join('\n');
}

const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** `YYYY-MM-DD HH:MM:SS` of a time in seconds since the epoch, as ExPyRe shows times. */
export function formatTime(seconds: number, fmt: Pick<FormatOptions, 'utc'>): string {
  const d = new Date(seconds * 1000);
  return fmt.utc
    ? `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`
    : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/**
 * The local zone's offset from UTC (seconds) as steps — one per change (daylight saving, rule
 * changes) — from 2000 to next year, so that times can be shifted to local time outside JavaScript
 * (see ls-text.ts) and read as `formatTime` shows them. Sampled weekly, each change then
 * found to the second.
 */
export function localOffsetSteps(fromYear = 2000, toYear = new Date().getFullYear() + 1): { from: number; offset: number }[] {
  const offset = (sec: number) => -new Date(sec * 1000).getTimezoneOffset() * 60;
  const WEEK = 7 * 86400;
  let t = Date.UTC(fromYear, 0, 1) / 1000;
  const end = Date.UTC(toYear + 1, 0, 1) / 1000;
  const steps = [{ from: t, offset: offset(t) }];
  for (; t < end; t += WEEK) {
    const current = steps.at(-1)!.offset;
    if (offset(t + WEEK) === current) continue;
    let lo = t;
    let hi = t + WEEK;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (offset(mid) === current) lo = mid;
      else hi = mid;
    }
    steps.push({ from: hi, offset: offset(hi) });
  }
  return steps;
}

/** ISO 8601 in UTC, for JSON output. */
export function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** At most `max` items, then "… and N more". */
export function listSome(items: readonly string[], max = 10, indent = '  '): string {
  const shown = items.slice(0, max).map((s) => `${indent}${s}`);
  if (items.length > max) shown.push(`${indent}… and ${items.length - max} more`);
  return shown.join('\n');
}
