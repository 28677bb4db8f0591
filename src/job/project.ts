// A project: its merged config, its job database and the systems it has opened, for one process.
// Transports are opened on first use and kept, so a whole run talks to each host over one connection.
import { userEntryPoints } from '../boundary.js';
import { loadConfig, getSystem, type LoadOptions } from '../config/load.js';
import type { ProjectPaths } from '../config/discover.js';
import type { SystemConfig, XprConfig } from '../config/schema.js';
import { getScheduler } from '../schedulers/registry.js';
import { JobStore } from '../store/jobstore.js';
import { openTransport } from '../transport/index.js';
import type { Transport } from '../transport/types.js';
import { System } from './system.js';

export interface ProjectOptions extends LoadOptions {
  /** Use this jobs.db instead of the discovered one (`xpr --dbfile`). */
  dbFile?: string;
  /** How to reach a system; default: `openTransport` (local, or SSH for a host) with the project's `env`. */
  transportFactory?: (system: SystemConfig) => Transport;
  /** Open the job database read-only (commands that only read it; see JobStore.open). */
  readonly?: boolean;
}

export class Project {
  private readonly systems = new Map<string, System>();
  private storeHandle: JobStore | undefined;

  private constructor(
    readonly config: XprConfig,
    readonly paths: ProjectPaths,
    readonly origins: Map<string, string>,
    private readonly transportFactory: (system: SystemConfig) => Transport = openTransport,
    private readonly readonly = false,
  ) {}

  static open(options: ProjectOptions = {}): Project {
    const { config, paths, origins } = loadConfig(options);
    const p = options.dbFile ? { ...paths, dbPath: options.dbFile } : paths;
    // The project's environment decides how hosts are reached (XPR_SSH, XPR_SSH_CONFIG, SSH_AUTH_SOCK),
    // as it decides where the config is: a caller's `env` must not be half honoured.
    const env = options.env;
    const factory = options.transportFactory ?? (env ? (sys: SystemConfig) => openTransport(sys, env) : openTransport);
    return new Project(config, p, origins, factory, options.readonly ?? false);
  }

  /** Dir holding jobs.db, the run_<id> stage dirs and the bundled code. */
  get stageRoot(): string {
    return this.paths.rootDir;
  }

  /** The job database, opened (and created, unless read-only) on first use. */
  get store(): JobStore {
    this.storeHandle ??= JobStore.open(this.paths.dbPath, { readonly: this.readonly });
    return this.storeHandle;
  }

  /** The named system, connected on first use; an unknown name lists the known ones. */
  system(name: string): System {
    let sys = this.systems.get(name);
    if (!sys) {
      const cfg = getSystem(this.config, name, this.paths);
      sys = new System(cfg, this.transportFactory(cfg), getScheduler(cfg.scheduler), this.stageRoot, this.config);
      this.systems.set(name, sys);
    }
    return sys;
  }

  async close(): Promise<void> {
    const open = [...this.systems.values()];
    this.systems.clear();
    await Promise.all(open.map((s) => s.transport.close()));
    this.storeHandle?.close();
    this.storeHandle = undefined;
  }
}

// A bad config or EXPYRE_ROOT is reported at the user's call (see boundary.ts).
userEntryPoints(Project, ['open']);

let current: Project | undefined;

/** The project of the working directory, shared by every job this process creates. */
export function currentProject(): Project {
  current ??= Project.open();
  return current;
}

/** Forget the shared project (closing its connections), e.g. after changing directory or EXPYRE_ROOT. */
export async function resetCurrentProject(): Promise<void> {
  const p = current;
  current = undefined;
  await p?.close();
}
