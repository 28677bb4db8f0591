// Text output of the CLI: colour (only on a terminal, never with NO_COLOR or --no-color), aligned
// tables and timestamps. Pure functions: the command modules' `render…` functions build on these and
// return strings, so tests pin output without a terminal.
import type { JobStatus } from '../store/status.js';

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

/**
 * Columns padded to their widest cell, two spaces apart, no trailing spaces. Colour goes on after
 * padding so escape codes never count towards a width.
 */
export function table(columns: readonly Column[], rows: readonly (readonly string[])[], fmt: Pick<FormatOptions, 'color'>): string {
  const widths = columns.map((c) => c.header.length);
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      const n = row[i]!.length;
      if (n > widths[i]!) widths[i] = n;
    }
  }
  const last = columns.length - 1;
  const line = (cells: readonly string[], header: boolean): string => {
    let out = '';
    for (let i = 0; i <= last; i++) {
      const col = columns[i]!;
      const text = cells[i] ?? '';
      const pad = widths[i]! - text.length;
      const colour = header ? (fmt.color ? 'bold' : undefined) : col.colour?.(text);
      const shown = colour && fmt.color ? paint(text, colour, fmt) : text;
      if (col.right) out += ' '.repeat(pad) + shown;
      else out += i === last ? shown : shown + ' '.repeat(pad);
      if (i < last) out += '  ';
    }
    return out;
  };
  const lines = new Array<string>(rows.length + 1);
  lines[0] = line(columns.map((c) => c.header), true);
  for (let r = 0; r < rows.length; r++) lines[r + 1] = line(rows[r]!, false);
  return lines.join('\n');
}

const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** `YYYY-MM-DD HH:MM:SS` of a time in seconds since the epoch, as ExPyRe shows times. */
export function formatTime(seconds: number, fmt: Pick<FormatOptions, 'utc'>): string {
  const d = new Date(seconds * 1000);
  return fmt.utc
    ? `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`
    : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
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
