// `xpr executor cache import FILE | export FILE | stats | clear [--failed]`: the executor's result
// cache, through its authenticated API. Records are JSON Lines, one `{ key, value, stage, at }` a
// line, as `export` writes them; `import` keeps entries that exist already and says how many it added.
import fs from 'node:fs';
import path from 'node:path';
import { XprError } from '../../../errors.js';
import type { CacheStats } from '../../../executor/types.js';
import { plural, table, type FormatOptions } from '../../format.js';
import { findExecutor, type ExecutorTarget } from './connect.js';

export interface CacheFileOptions extends ExecutorTarget {
  file: string;
}

export type CacheResult =
  | { action: 'import'; file: string; inserted: number; total: number }
  | { action: 'export'; file: string; records: number }
  | { action: 'stats'; stats: CacheStats }
  | { action: 'clear'; failed: boolean; removed: number };

export async function cacheImport(opts: CacheFileOptions): Promise<CacheResult> {
  const file = path.resolve(opts.cwd ?? process.cwd(), opts.file);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new XprError(`Cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`, {
      hint: 'Give the JSON Lines file that xpr executor cache export wrote.',
    });
  }
  // Checked here, so that a bad line is named by its number in the user's file.
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      throw new XprError(`${file}, line ${i + 1}: not JSON`, { hint: 'Each line is one record { key, value, stage, at }, as cache export writes them.' });
    }
    const r = rec as { key?: unknown; stage?: unknown };
    if (typeof rec !== 'object' || rec === null || typeof r.key !== 'string' || typeof r.stage !== 'string' || !('value' in rec)) {
      throw new XprError(`${file}, line ${i + 1}: not a cache record`, { hint: 'Each line is one record { key, value, stage, at }, as cache export writes them.' });
    }
  });
  const { inserted, total } = await findExecutor(opts).client.cacheImport(text);
  return { action: 'import', file, inserted, total };
}

export async function cacheExport(opts: CacheFileOptions): Promise<CacheResult> {
  const file = path.resolve(opts.cwd ?? process.cwd(), opts.file);
  const text = await findExecutor(opts).client.cacheExport();
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text.endsWith('\n') || text === '' ? text : `${text}\n`);
  fs.renameSync(tmp, file);
  return { action: 'export', file, records: text.split('\n').filter((l) => l.trim() !== '').length };
}

export async function cacheStats(opts: ExecutorTarget): Promise<CacheResult> {
  return { action: 'stats', stats: await findExecutor(opts).client.cacheStats() };
}

export async function cacheClear(opts: ExecutorTarget & { failed: boolean }): Promise<CacheResult> {
  const r = await findExecutor(opts).client.cacheClear({ failed: opts.failed });
  return { action: 'clear', failed: opts.failed, removed: r.removed };
}

export function renderCache(r: CacheResult, fmt: FormatOptions): string {
  switch (r.action) {
    case 'import': return `Imported ${r.file}: ${plural(r.inserted, 'new entry', 'new entries')} (${r.total} in the cache now).`;
    case 'export': return `Exported ${plural(r.records, 'cache entry', 'cache entries')} to ${r.file}.`;
    case 'stats': {
      const rows = Object.entries(r.stats.stages).sort(([a], [b]) => a.localeCompare(b)).map(([stage, n]) => [stage, String(n)]);
      return `${plural(r.stats.entries, 'cache entry', 'cache entries')}${rows.length ? `\n${table([{ header: 'stage' }, { header: 'entries', right: true }], rows, fmt)}` : ''}`;
    }
    case 'clear': return r.failed
      ? `Removed ${plural(r.removed, 'failed task')}: the next submission that needs them runs them again.`
      : `Removed ${plural(r.removed, 'cache entry', 'cache entries')}.`;
  }
}
