// A throw-away project on one contract backend: its own dir and jobs.db, the backend's system in its
// config.json, and the transport the project opened, to count the commands it ran. Unlike
// test/helpers/project.ts it changes nothing in process.env, so tests can run concurrently.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Project } from '../../src/job/project.js';
import type { System } from '../../src/job/system.js';
import type { Backend, CountingTransport } from './backends.js';

export interface ContractProject {
  dir: string;
  root: string;
  project: Project;
  system: System;
  /** The transport of `system` (opened on first use of the system). */
  transport: CountingTransport;
  /** The same project opened again, as the next run of a driver script would. */
  reopen(): ContractProject;
  cleanup(): Promise<void>;
}

function open(backend: Backend, dir: string, opened: Project[]): ContractProject {
  const root = path.join(dir, '_expyre');
  const transports: CountingTransport[] = [];
  const project = Project.open({
    cwd: dir, home: dir, env: { ...backend.env, EXPYRE_ROOT: root },
    transportFactory: (sys) => {
      const t = backend.transportFactory(sys) as CountingTransport;
      transports.push(t);
      return t;
    },
  });
  opened.push(project);
  const system = project.system(backend.system);
  return {
    dir, root, project, system,
    get transport() { return transports[0]!; },
    reopen: () => open(backend, dir, opened),
    async cleanup() {
      for (const p of opened.splice(0)) await p.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A new project dir (under the OS temp dir; `label` may hold hostile characters). */
export function contractProject(backend: Backend, label = 'p'): ContractProject {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `xpr-contract-${backend.name}-${label}-`));
  const root = path.join(dir, '_expyre');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, 'config.json'), JSON.stringify(backend.config(dir), null, 2));
  return open(backend, dir, []);
}
