// JSON Lines: one JSON value per line. Blank lines are skipped (editors and `cat a b` leave them);
// every error names file:line so a bad record in a million-line file is found at once.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { XprError } from '../errors.js';

function parseLine(line: string, file: string, lineNo: number): unknown {
  try {
    return JSON.parse(line);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new XprError(`${file}:${lineNo}: invalid JSON: ${why}`, {
      hint: 'Each line of a JSON Lines file must be one complete JSON value.',
    });
  }
}

/** Parses JSON Lines text; `file` names it in errors. */
export function parseJsonLines(text: string, file = '<string>'): unknown[] {
  const items: unknown[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() !== '') items.push(parseLine(line, file, i + 1));
  });
  return items;
}

/** Reads a JSON Lines file lazily, one item at a time. */
export async function* readJsonLinesFile(path: string): AsyncGenerator<unknown> {
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const line of rl) {
      n++;
      if (line.trim() !== '') yield parseLine(line, path, n);
    }
  } finally {
    rl.close();
  }
}

/** One item as a line (with its newline). Throws XprError for values JSON cannot hold. */
export function formatJsonLine(item: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(item);
  } catch (e) {
    throw new XprError(`Cannot write JSON Lines: ${e instanceof Error ? e.message : String(e)}`, {
      hint: 'Items must be JSON values (no BigInt, no cycles).',
    });
  }
  if (text === undefined) {
    throw new XprError(`Cannot write JSON Lines: an item of type ${typeof item} has no JSON form`, {
      hint: 'Items must be JSON values: objects, arrays, strings, numbers, booleans or null.',
    });
  }
  return text + '\n';
}

/** The text of several items. */
export function formatJsonLines(items: Iterable<unknown>): string {
  let out = '';
  for (const it of items) out += formatJsonLine(it);
  return out;
}
