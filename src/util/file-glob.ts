// Expanding file globs against the filesystem, with tinyglobby: `*` and `?` within a path segment,
// `[abc]` / `[!a-z]` classes, and `**` for any depth of directories. Every other character means
// itself (no braces, no extglobs, no `(a|b)`), so a name like `data (1).xyz` is not a pattern.
// The leading segments without wildcards are a literal dir, whatever characters they hold.
import fs from 'node:fs';
import path from 'node:path';
import { globSync } from 'tinyglobby';

/** True when `pattern` has glob wildcards. */
export function hasGlobMagic(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

export interface FileGlobOptions {
  /** Dir that relative patterns start from, and that results are relative to (default: the working dir). */
  cwd?: string;
  /** Wildcards also match names starting with `.` (default: no, as in the shell and Python's glob). */
  dot?: boolean;
  /** Directories match too (default: only files); symlinks to dirs do not, as tinyglobby never lists them. */
  dirs?: boolean;
}

/** Paths matching `pattern`, sorted; absolute for an absolute pattern, else relative to `cwd`. */
export function expandFileGlob(pattern: string, options: FileGlobOptions = {}): string[] {
  const segments = pattern.split('/').filter((s) => s !== '' && s !== '.');
  const firstMagic = segments.findIndex(hasGlobMagic);
  const fixed = firstMagic < 0 ? segments : segments.slice(0, firstMagic);
  const base = pattern.startsWith('/') ? path.join('/', ...fixed) : fixed.join('/');
  const cwd = options.cwd ?? '.';
  const wanted = (p: string): boolean => isWanted(path.resolve(cwd, p), options.dirs ?? false);
  if (firstMagic < 0) return base !== '' && wanted(base) ? [base] : [];

  const wild = segments.slice(firstMagic);
  const root = path.resolve(cwd, base);
  let found = globSync(wild.map(toPicomatch).join('/'), {
    cwd: root,
    dot: options.dot ?? false,
    onlyFiles: false,
    expandDirectories: false,
    braceExpansion: false,
    extglob: false,
  });
  // `**` does not enter symlinked dirs, so a link loop cannot list the same files again and again.
  // (tinyglobby can only follow every symlink or drop every one, symlinked files included.)
  if (wild.includes('**')) found = found.filter(notThroughSymlinkedDir(root));
  const paths = found.map((f) => path.join(base, f).replace(/(.)\/$/, '$1')).filter(wanted);
  return paths.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function notThroughSymlinkedDir(root: string): (found: string) => boolean {
  const linked = new Map<string, boolean>();
  const isLink = (dir: string): boolean => {
    let v = linked.get(dir);
    if (v === undefined) {
      try {
        v = fs.lstatSync(path.join(root, dir)).isSymbolicLink();
      } catch {
        v = false;
      }
      linked.set(dir, v);
    }
    return v;
  };
  return (found) => {
    const parts = found.replace(/\/$/, '').split('/').slice(0, -1);
    return parts.every((_, i) => !isLink(parts.slice(0, i + 1).join('/')));
  };
}

/** One segment in picomatch's syntax: escape what picomatch would read as more than a literal. */
function toPicomatch(segment: string): string {
  return segment.replace(/[^\w*?[\]!^-]/g, '\\$&').replace(/^!/, '\\!');
}

function isWanted(p: string, dirs: boolean): boolean {
  try {
    const s = fs.statSync(p);
    return s.isFile() || (dirs && s.isDirectory());
  } catch {
    return false;
  }
}
