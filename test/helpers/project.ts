// A throw-away project for job tests: its own _expyre dir, its own local queue, its own HOME.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Project } from '../../src/job/project.js';
import { removeProjectDir } from './localq.js';

export interface TempProject {
  dir: string;
  project: Project;
  env: NodeJS.ProcessEnv;
  cleanup(): Promise<void>;
}

export function tempProject(config?: unknown): TempProject {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-test-'));
  const root = path.join(dir, '_expyre');
  fs.mkdirSync(root);
  if (config !== undefined) fs.writeFileSync(path.join(root, 'config.json'), JSON.stringify(config));
  // The local queue's dispatcher reads XPR_LOCALQ_DIR from the submitting process's environment.
  process.env.XPR_LOCALQ_DIR = path.join(dir, 'localq');
  const env = { ...process.env, EXPYRE_ROOT: root, HOME: dir };
  const project = Project.open({ cwd: dir, env, home: dir });
  return {
    dir, project, env,
    async cleanup() {
      await project.close();
      await removeProjectDir(dir);
    },
  };
}
