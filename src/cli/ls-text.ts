// `xpr ls`'s plain text built inside SQLite: over 100,000 jobs this makes one JavaScript string
// instead of a million values, which would otherwise be most of what `xpr ls` costs. The store runs
// the SQL (JobStore.aggregate) and names the fields in it (columnOf); what a cell shows, how wide a
// column is and how a time reads in the user's zone are decided here, as format.ts decides them for
// the table made from rows.
import { OLDEST_FIRST, type JobFilter, type JobStore, type ScalarField } from '../store/jobstore.js';

/**
 * A column of the table: a field ('-' when null), shaped as listings show it. `join` appends a second
 * field (`remoteId@system`), `paren` a field in parentheses when set (`timeout(TIMEOUT)`), `shortId`
 * cuts an id after its name and that many more characters with '...' (ExPyRe's short ids), and
 * `timeOffset` shows a time field as `YYYY-MM-DD HH:MM:SS`, shifted by that many seconds (a zone's
 * offset), or by the offset of the latest step whose `from` (seconds since the epoch) it is not before.
 */
export interface TextColumn {
  header: string;
  field: ScalarField;
  join?: { with: string; field: ScalarField };
  paren?: ScalarField;
  shortId?: number;
  timeOffset?: number | readonly { from: number; offset: number }[];
}

/**
 * Matching jobs as a table, as format.ts's itemTable lays one out: a header line, then a line per
 * job (oldest first), columns padded to their widest cell and two spaces apart, the last one
 * unpadded. Undefined when a padded cell holds anything but printable ASCII, or any cell a control
 * character: SQLite counts characters, and only for printable ASCII is that the width a terminal shows.
 */
export function jobTableText(store: JobStore, filter: JobFilter, columns: readonly TextColumn[]): string | undefined {
  const last = columns.length - 1;
  const padded = columns.slice(0, last);
  // First the shape: the number of jobs, the widest cell of each padded column (from lengths,
  // without building the cells) and the span of each time column, so that rows are only tested
  // against the zone offsets in force then.
  const probes = columns.map((c, i) => {
    const col = store.columnOf(c.field);
    if (c.timeOffset !== undefined) return { expr: `min(${col}), max(${col})`, params: [] as unknown[] };
    if (i === last) return { expr: '0', params: [] as unknown[] };
    const cell = textCell(store, c);
    return { expr: `max(${cell.length})`, params: cell.lengthParams };
  });
  const shape = store.aggregate(filter, ['count(*)', ...probes.map((p) => p.expr)].join(', '),
    probes.flatMap((p) => p.params)) as (number | null)[];
  const rows = shape[0];
  let k = 1;
  const cells = columns.map((c) => {
    if (c.timeOffset === undefined) return { ...textCell(store, c), width: shape[k++] ?? 0 };
    const span = { min: shape[k++] ?? 0, max: shape[k++] ?? 0 };
    return { ...timeCell(store.columnOf(c.field), c.timeOffset, span), width: TIME_WIDTH };
  });
  const widths = cells.map((c, i) => Math.max(c.width, columns[i]!.header.length));
  const lineParams: unknown[] = [];
  const parts = cells.map((c, i) => {
    if (i === last) {
      lineParams.push(...c.params);
      return `(${c.expr})`;
    }
    lineParams.push(widths[i], ...c.params);
    return `printf('%-*s  ', ?, ${c.expr})`;
  });
  const [text] = store.aggregate(filter, `group_concat(${parts.join(' || ')}, char(10) ORDER BY ${OLDEST_FIRST})`, lineParams);
  const header = columns.map((c, i) => (i === last ? c.header : c.header.padEnd(widths[i]!))).join('  ');
  if (typeof text !== 'string') return header;
  // Anything but printable ASCII is rare, so it is looked for in the finished text, where one scan
  // costs less than a test of every cell in SQL: a newline as a line too many, the rest by a regexp.
  // Only when one turns up are the padded cells tested: the last column may hold any printable character.
  if (lineCount(text) !== rows) return undefined;
  if (UNUSUAL.test(text) && (CONTROL.test(text) || notAscii(store, filter, padded))) return undefined;
  return `${header}\n${text}`;
}

/** Anything but printable ASCII and the newline that ends each line. */
const UNUSUAL = /[^\n\x20-\x7e]/;
/** Control characters take no column (string-width) but count as one character. */
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f]/;

/** Whether a cell of these columns holds more bytes than characters: anything not ASCII. */
function notAscii(store: JobStore, filter: JobFilter, columns: readonly TextColumn[]): boolean {
  const fields = new Set(columns.filter((c) => c.timeOffset === undefined)
    .flatMap((c) => [c.field, ...(c.join ? [c.join.field] : []), ...(c.paren ? [c.paren] : [])]));
  const tests = [...fields].map((f) => store.columnOf(f)).map((col) => `octet_length(${col}) > length(${col})`);
  return tests.length > 0 && Boolean(store.aggregate(filter, `max(${tests.join(' OR ')})`)[0]);
}

/** Lines of text that ends without a newline. */
function lineCount(text: string): number {
  let n = 1;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) n++;
  return n;
}

/**
 * A cell other than a time: an SQL expression over a row, and an expression for its length that
 * builds no string (the widths are found over every row first).
 */
function textCell(store: JobStore, c: TextColumn): { expr: string; params: unknown[]; length: string; lengthParams: unknown[] } {
  const col = store.columnOf(c.field);
  const orDash = (x: string) => `ifnull(length(${x}), 1)`;
  if (c.shortId !== undefined) {
    const name = store.columnOf('name');
    return {
      expr: `CASE WHEN length(${col}) > length(${name}) + ? THEN substr(${col}, 1, length(${name}) + ?) || '...' ELSE ${col} END`,
      params: [c.shortId + 3, c.shortId],
      length: `min(length(${col}), length(${name}) + ?)`,
      lengthParams: [c.shortId + 3],
    };
  }
  if (c.join) {
    const other = store.columnOf(c.join.field);
    return {
      expr: `ifnull(${col}, '-') || ? || ifnull(${other}, '-')`, params: [c.join.with],
      length: `${orDash(col)} + ? + ${orDash(other)}`, lengthParams: [c.join.with.length],
    };
  }
  if (c.paren) {
    const p = store.columnOf(c.paren);
    return {
      expr: `CASE WHEN ${col} IS NULL THEN '-' ELSE ${col} || ifnull('(' || ${p} || ')', '') END`, params: [],
      length: `CASE WHEN ${col} IS NULL THEN 1 ELSE length(${col}) + ifnull(length(${p}) + 2, 0) END`, lengthParams: [],
    };
  }
  return { expr: `ifnull(${col}, '-')`, params: [], length: orDash(col), lengthParams: [] };
}

/** `YYYY-MM-DD HH:MM:SS` (SQLite's datetime()) is always this long. */
const TIME_WIDTH = 19;

/** A time cell: whole seconds shifted by the offset in force then (only the steps within `span` are tested). */
function timeCell(col: string, timeOffset: NonNullable<TextColumn['timeOffset']>, span: { min: number; max: number }): { expr: string; params: unknown[] } {
  const all = typeof timeOffset === 'number' ? [{ from: -Infinity, offset: timeOffset }] : [...timeOffset].sort((a, b) => a.from - b.from);
  // The step in force at the earliest time (the first one if none has begun), and those starting later within the span.
  const first = Math.max(0, all.findLastIndex((st) => st.from <= span.min));
  const steps = all.slice(first).filter((st, i) => i === 0 || st.from <= span.max).reverse();
  const t = `CAST(${col} AS INTEGER)`;
  const shift = `CASE ${steps.slice(0, -1).map(() => `WHEN ${t} >= ? THEN ?`).join(' ')} ELSE ? END`;
  const params = [...steps.slice(0, -1).flatMap((st) => [st.from, st.offset]), steps.at(-1)!.offset];
  return { expr: `datetime(${t} + ${steps.length === 1 ? '?' : shift}, 'unixepoch')`, params };
}
