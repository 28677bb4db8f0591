// The throw-away project a selftest runs in: a new dir under the working dir, so that config.json
// discovery finds the user's own config files above it (the systems are tested as configured), with
// its own `_expyre/` holding a fresh jobs.db and the stage dirs, so the user's job database never
// sees a selftest job. With EXPYRE_ROOT set, discovery reads only that dir: its config.json is
// copied and EXPYRE_ROOT pointed at the new one.
import fs from 'node:fs';
import path from 'node:path';
import { DELETE_MARKER } from '../config/merge.js';
import { XprError } from '../errors.js';
import { Project } from '../job/project.js';

export interface SelftestProject {
  /** The project dir (working dir of the selftest's drivers). */
  dir: string;
  /** Its `_expyre` dir. */
  root: string;
  /** The environment of its drivers. */
  env: NodeJS.ProcessEnv;
  project: Project;
  /** Close the project and delete the dir. */
  remove(): Promise<void>;
}

export function makeSelftestProject(cwd: string, env: NodeJS.ProcessEnv): SelftestProject {
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(cwd, '_xpr_selftest_'));
  } catch (err) {
    throw new XprError(`xpr selftest makes its project in the working dir ${cwd}, and cannot: ${(err as Error).message}`, {
      hint: 'Run it from a dir you can write in, below the _expyre dir whose config.json you want to test.',
    });
  }
  const root = path.join(dir, '_expyre');
  fs.mkdirSync(root);
  const childEnv: NodeJS.ProcessEnv = { ...env };
  const given = env['EXPYRE_ROOT'];
  let config: Record<string, unknown> = {};
  if (given) {
    const file = path.join(path.resolve(cwd, given), 'config.json');
    if (fs.existsSync(file)) config = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    childEnv['EXPYRE_ROOT'] = root;
  }
  // A local_stage_dir set above would move jobs.db (and the selftest's jobs) into the user's stage dir.
  config['local_stage_dir'] = DELETE_MARKER;
  fs.writeFileSync(path.join(root, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  // The drivers' own run settings must not leak into the selftest's calls.
  for (const k of ['WFL_EXPYRE_INFO', 'WFL_NUM_PYTHON_SUBPROCESSES', 'XPR_NUM_SUBPROCESSES', 'WFL_EXPYRE_NO_MARK_PROCESSED']) delete childEnv[k];
  const project = Project.open({ cwd: dir, env: childEnv });
  return {
    dir, root, env: childEnv, project,
    async remove() {
      await project.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
