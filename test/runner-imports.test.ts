// The job side (src/runner/) is bundled and shipped with every job, where only `node` exists. This
// walks its import graph from the source, so a stray import of driver code (SQLite, SSH, the CLI)
// or of an npm package fails here rather than on a cluster node.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const RUNNER = path.join(SRC, 'runner');
const DRIVER_ONLY = ['autopara', 'job', 'store', 'transport', 'cli'];

/** Module specifiers of a file's static imports and re-exports, and of string-literal dynamic imports. */
export function importsOf(source: string): string[] {
  const specs: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?\sfrom\s+['"]([^'"]+)['"]/gms,
    /^\s*import\s+['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) specs.push(m[1]!);
  return specs;
}

/** Every file reachable from `entries` through relative imports, and every bare specifier met. */
function walk(entries: string[]): { files: Map<string, string>; bare: Map<string, string> } {
  const files = new Map<string, string>(); // file -> the file that imported it first
  const bare = new Map<string, string>();
  const queue: (readonly [string, string])[] = entries.map((f) => [f, '(entry)'] as const);
  for (const e of entries) files.set(e, '(entry)');
  while (queue.length) {
    const [file] = queue.shift()!;
    for (const spec of importsOf(fs.readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) { if (!bare.has(spec)) bare.set(spec, file); continue; }
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
      if (!files.has(target)) { files.set(target, file); queue.push([target, file]); }
    }
  }
  return { files, bare };
}

describe('the job-side runner', () => {
  const entries = fs.readdirSync(RUNNER).filter((f) => f.endsWith('.ts')).map((f) => path.join(RUNNER, f));
  const { files, bare } = walk(entries);

  it('finds the import statements it walks (so an empty graph cannot pass)', () => {
    expect(importsOf("import { a } from './a.js';\nexport { b } from '../b.js';\nimport type {\n  C,\n} from './c.js';\nawait import('./d.js');"))
      .toEqual(['./a.js', '../b.js', './c.js', './d.js']);
    expect(files.has(path.join(RUNNER, 'main.ts'))).toBe(true);
    expect(files.has(path.join(SRC, 'util', 'codec.ts'))).toBe(true);
  });

  it(`imports nothing from ${DRIVER_ONLY.join('/, ')}/`, () => {
    const offending = [...files].filter(([f]) => DRIVER_ONLY.includes(path.relative(SRC, f).split(path.sep)[0]!))
      .map(([f, by]) => `${path.relative(SRC, f)} (imported by ${path.relative(SRC, by)})`);
    expect(offending).toEqual([]);
  });

  it('imports only node builtins, no npm package', () => {
    const packages = [...bare].filter(([s]) => !s.startsWith('node:')).map(([s, by]) => `${s} (imported by ${path.relative(SRC, by)})`);
    expect(packages).toEqual([]);
  });

  it('every file it reaches exists', () => {
    expect([...files.keys()].filter((f) => !fs.existsSync(f)).map((f) => path.relative(SRC, f))).toEqual([]);
  });
});
