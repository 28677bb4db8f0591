// Output files of a remoteCall job come back into its stage dir; a local run writes them in the
// working dir. They are copied from the one to the other, at the same relative paths, so the code
// after the call finds them where it would after a local run.
import fs from 'node:fs';
import path from 'node:path';
import { expandFileGlob, hasGlobMagic } from '../util/file-glob.js';
import { XprError } from '../errors.js';

/** Copy the files matching `patterns` (relative to the job dir) into `dest`; returns the paths copied. */
export function copyOutputFiles(jobDir: string, patterns: readonly string[], dest: string): string[] {
  const copied: string[] = [];
  for (const pattern of patterns) {
    const rel = path.normalize(pattern);
    if (path.isAbsolute(rel) || rel.startsWith('..')) {
      throw new XprError(`output file "${pattern}" must be a path relative to the job dir`, {
        hint: 'The function writes output files in its working dir; name them relative to it (e.g. "model.json" or "out/*.xyz").',
      });
    }
    const found = hasGlobMagic(rel)
      // The job dir is the glob's cwd, not part of the pattern: a job name may hold `[` or `*`.
      ? expandFileGlob(rel, { cwd: jobDir })
      : fs.existsSync(path.join(jobDir, rel)) ? [rel] : [];
    if (found.length === 0) {
      throw new XprError(`The job in ${jobDir} wrote no output file "${pattern}"`, {
        hint: 'Check what the function writes (and where: its working dir is the job dir), or the outputFiles / output_files given.',
      });
    }
    for (const f of found) {
      const to = path.join(dest, f);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.cpSync(path.join(jobDir, f), to, { recursive: true });
      copied.push(to);
    }
  }
  return copied;
}
