// A small synchronous glob (Node 20 has no fs.glob): `*` and `?` within a path segment, `[abc]` /
// `[!a-z]` classes, and `**` for any depth of directories. Like Python's glob, which wfl uses, wildcards
// do not match names starting with `.` (which also keeps xpr's temporary outputs out), and results
// are sorted. Only files are returned: a ConfigSet reads files.

import { readdirSync, statSync, type Dirent } from 'node:fs';
import { join } from 'node:path';

/** True when `pattern` has glob wildcards. */
export function hasGlobMagic(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

function segmentRegExp(segment: string): RegExp {
  let re = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function entries(dir: string): Dirent[] {
  try {
    return readdirSync(dir === '' ? '.' : dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function isDir(path: string, d: Dirent): boolean {
  if (d.isDirectory()) return true;
  if (!d.isSymbolicLink()) return false;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function walk(base: string, segments: readonly string[], out: Set<string>): void {
  const [seg, ...rest] = segments;
  if (seg === undefined) {
    if (isFile(base)) out.add(base);
    return;
  }
  if (seg === '**') {
    walk(base, rest, out);
    for (const d of entries(base)) {
      // Symlinked dirs are not followed under ** so a link loop cannot recurse forever.
      if (!d.name.startsWith('.') && d.isDirectory()) walk(join(base, d.name), segments, out);
    }
    return;
  }
  if (!hasGlobMagic(seg)) {
    walk(base === '' ? seg : join(base, seg), rest, out);
    return;
  }
  const re = segmentRegExp(seg);
  const dotOk = seg.startsWith('.');
  for (const d of entries(base)) {
    if (d.name.startsWith('.') && !dotOk) continue;
    if (!re.test(d.name)) continue;
    const path = base === '' ? d.name : join(base, d.name);
    if (rest.length === 0 || isDir(path, d)) walk(path, rest, out);
  }
}

/** Files matching `pattern`, sorted; relative patterns give paths relative to the working dir. */
export function expandGlob(pattern: string): string[] {
  const absolute = pattern.startsWith('/');
  const segments = pattern.split('/').filter((s) => s !== '' && s !== '.');
  const out = new Set<string>();
  walk(absolute ? '/' : '', segments, out);
  return [...out].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
