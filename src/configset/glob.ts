// The files a ConfigSet glob names. Like Python's glob, which wfl uses, wildcards do not match names
// starting with `.` (which also keeps xpr's temporary outputs out), and results are sorted. Only
// files are returned: a ConfigSet reads files.
import { expandFileGlob, hasGlobMagic } from '../util/file-glob.js';

export { hasGlobMagic };

/** Files matching `pattern` (`*`, `?`, `[..]`, `**`), sorted; relative patterns give paths relative to the working dir. */
export function expandGlob(pattern: string): string[] {
  return expandFileGlob(pattern);
}
