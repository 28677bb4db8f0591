// File formats by extension, and the in-file location marker. A file is a flat list of items; when
// the items it holds are nested deeper (several results for one input, nested in-memory inputs), each
// item carries its location under `_ConfigSet_loc` (in `info` for extxyz frames, as a top-level key
// for JSON objects), in wfl's " / 0 / 3" form so files pass between wfl and xpr.

import { extname } from 'node:path';
import { XprError } from '../errors.js';
import { formatFrame, isFrame, readExtxyzFile, type Frame } from './extxyz.js';
import { formatJsonLine, readJsonLinesFile } from './jsonl.js';
import { LOC_KEY, markerToLoc } from './loc.js';

export type FileFormat = 'jsonl' | 'extxyz';

const EXTENSIONS: Record<string, FileFormat> = {
  '.jsonl': 'jsonl', '.json-lines': 'jsonl', '.ndjson': 'jsonl', '.xyz': 'extxyz', '.extxyz': 'extxyz',
};

/** The format of `path` by its extension, or `override` if given. */
export function formatOf(path: string, override?: FileFormat): FileFormat {
  if (override !== undefined) {
    if (override !== 'jsonl' && override !== 'extxyz') {
      throw new XprError(`Unknown file format "${String(override)}" (known: jsonl, extxyz)`);
    }
    return override;
  }
  const f = EXTENSIONS[extname(path).toLowerCase()];
  if (f === undefined) {
    throw new XprError(`Cannot tell the format of ${path} from its extension`, {
      hint: `Use one of ${Object.keys(EXTENSIONS).join(', ')}, or pass { format: 'jsonl' | 'extxyz' }.`,
    });
  }
  return f;
}

/** An item read from a file with the in-file location it was written with, if any. */
export interface FileEntry {
  item: unknown;
  key: number[] | undefined;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** Removes and returns a parsed location marker from `holder`, if it has a valid one. */
function takeMarker(holder: Record<string, unknown>): number[] | undefined {
  if (!Object.hasOwn(holder, LOC_KEY)) return undefined;
  const key = markerToLoc(holder[LOC_KEY]);
  if (key !== undefined) delete holder[LOC_KEY];
  return key;
}

/** Reads the items of a file lazily, taking their location markers out of them. */
export async function* readFileEntries(path: string, format: FileFormat): AsyncGenerator<FileEntry> {
  if (format === 'extxyz') {
    for await (const frame of readExtxyzFile(path)) {
      yield { item: frame, key: takeMarker(frame.info as Record<string, unknown>) };
    }
  } else {
    for await (const item of readJsonLinesFile(path)) {
      yield { item, key: isPlainObject(item) ? takeMarker(item) : undefined };
    }
  }
}

/** `holder` without a stale marker and with `marker` last, copying only when something changes. */
function withMarker<R extends Record<string, unknown>>(holder: R, marker: string | undefined): R {
  if (marker === undefined && !Object.hasOwn(holder, LOC_KEY)) return holder;
  const copy: Record<string, unknown> = { ...holder };
  delete copy[LOC_KEY];
  if (marker !== undefined) copy[LOC_KEY] = marker;
  return copy as R;
}

/**
 * The text of one item in `format`, with `marker` as its location when given. `what` names the item
 * in errors (e.g. "result for /0/3").
 */
export function entryText(item: unknown, format: FileFormat, marker: string | undefined, what: string): string {
  try {
    if (format === 'extxyz') {
      if (!isFrame(item)) {
        throw new XprError(`Cannot write extended XYZ: expected a frame { natoms, info, arrays }, got ${describe(item)}`, {
          hint: 'Return frames from the op, or write to a .jsonl file instead.',
        });
      }
      const frame: Frame = { ...item, info: withMarker(item.info as Record<string, unknown>, marker) as Frame['info'] };
      return formatFrame(frame);
    }
    if (isPlainObject(item)) return formatJsonLine(withMarker(item, marker));
    if (marker !== undefined) {
      throw new XprError(`Cannot keep the grouping of ${describe(item)} items in a JSON Lines file`, {
        hint: 'Nested results are marked with a "_ConfigSet_loc" key, which needs object items; ' +
          'return objects, or keep the outputs in memory.',
      });
    }
    return formatJsonLine(item);
  } catch (e) {
    if (e instanceof XprError) throw new XprError(`${what}: ${e.message}`, { hint: e.hint ?? '', cause: e });
    throw e;
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  return typeof x === 'object' ? 'an object without natoms/info/arrays' : `a ${typeof x}`;
}
