// Golden job scripts without the package version: the script's header names the xpr that wrote it,
// and a version bump must not change a golden file, so the version is a placeholder there.
import { XPR_VERSION } from '../../src/util/paths.js';

/** The job script's header line that names the version, as rendered by xpr `version`. */
const versionLine = (version: string) => `# Job script written by xpr ${version};`;

/** `script` as it is kept in a golden file: the version that wrote it replaced by `<version>`. */
export function goldenScript(script: string, version: string = XPR_VERSION): string {
  return script.replace(versionLine(version), versionLine('<version>'));
}
