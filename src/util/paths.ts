// Where xpr's own files are. Programs that run in their own process (the local queue's dispatcher,
// the job runner) are always taken from the built `dist/`, also when xpr runs from its TypeScript
// sources under the test runner, because `node` runs them directly.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'xpr') return dir;
      } catch { /* not ours; keep walking */ }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`xpr: cannot find its package.json above ${start}`);
    dir = parent;
  }
}

/** Root of the xpr package (holds package.json, dist/, templates/). */
export const PACKAGE_ROOT = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

/** Absolute path of a built module, e.g. `distFile('localq/main.js')`. */
export function distFile(rel: string): string {
  const file = path.join(PACKAGE_ROOT, 'dist', 'src', rel);
  if (!fs.existsSync(file)) {
    throw new Error(`xpr: ${file} is missing; run \`npm run build\` in ${PACKAGE_ROOT}`);
  }
  return file;
}

/** Absolute path of a file under templates/. */
export function templateFile(rel: string): string {
  return path.join(PACKAGE_ROOT, 'templates', rel);
}

/** Version of xpr, from package.json. */
export const XPR_VERSION: string =
  (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
