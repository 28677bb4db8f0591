// What a command left on disk: every file under a dir with its size, to compare before and after.
import fs from 'node:fs';
import path from 'node:path';

/** Every file under `dir` (relative path → size). */
export function filesUnder(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else out[path.relative(dir, f)] = fs.statSync(f).size;
    }
  };
  walk(dir);
  return out;
}
