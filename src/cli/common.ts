// What the command functions share: where the project is (cwd, env, --dbfile), the job selection
// filters of ExPyRe's CLI, opening a system with an "unreachable" error when its transport fails, and
// asking before destroying things.
import fs from 'node:fs';
import type { ProjectPaths } from '../config/discover.js';
import { getSystem, loadConfig } from '../config/load.js';
import type { XprConfig } from '../config/schema.js';
import { UnreachableError, XprError } from '../errors.js';
import type { Project } from '../job/project.js';
import type { System } from '../job/system.js';
import { JobStore, type JobFilter } from '../store/jobstore.js';
import { expandStatuses, type JobStatus } from '../store/status.js';
import { UsageError } from './exit.js';

/** Where a command runs; every command function takes these. */
export interface CommandContext {
  /** Working dir the project is discovered from (default: process.cwd()). */
  cwd?: string;
  /** Environment (EXPYRE_ROOT, HOME, …); default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Job database to use instead of the project's (`--dbfile`). */
  dbFile?: string;
}

/**
 * ExPyRe's job filters. Strings are comma-separated lists (as typed after `-i`, `-n`, `-s`, `-S`);
 * arrays are taken item by item (each item still split at commas). Id, name and system are regexps
 * anchored at both ends (`a\+b` matches the name `a+b`; `a+b` matches `ab`, `aab`, …); status takes
 * statuses and groups (`ongoing`, `can_produce_results`), `*` meaning every status.
 */
export interface SelectOptions {
  id?: string | readonly string[];
  name?: string | readonly string[];
  status?: string | readonly string[];
  system?: string | readonly string[];
}

export interface Selection {
  filter: JobFilter;
  /** At least one filter was given (`-s '*'` counts: it says "every status" on purpose). */
  given: boolean;
}

export function splitList(v: string | readonly string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = (typeof v === 'string' ? [v] : v).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  return items;
}

/** Turn the filter options into a store filter; system regexps are matched against known system names. */
export function selection(opts: SelectOptions, systemNames: () => readonly string[]): Selection {
  const id = splitList(opts.id);
  const name = splitList(opts.name);
  const statusWords = splitList(opts.status);
  const systemPatterns = splitList(opts.system);
  const filter: JobFilter = {};
  if (id?.length) filter.id = id.map(checkRegex);
  if (name?.length) filter.name = name.map(checkRegex);
  if (statusWords?.length && !statusWords.includes('*')) filter.status = expandStatuses(statusWords) as JobStatus[];
  if (systemPatterns?.length) {
    const res = systemPatterns.map((p) => new RegExp(`^(?:${checkRegex(p)})$`));
    const names = new Set([...systemNames()].filter((n) => res.some((re) => re.test(n))));
    // A name that matches nothing known still selects nothing rather than everything.
    filter.system = names.size ? [...names] : ['\0no such system'];
  }
  const given = [opts.id, opts.name, opts.status, opts.system].some((v) => splitList(v)?.length);
  return { filter, given };
}

function checkRegex(pattern: string): string {
  try {
    new RegExp(`^(?:${pattern})$`);
  } catch (err) {
    throw new XprError(`Invalid regular expression "${pattern}": ${(err as Error).message}`, {
      hint: 'Filters are regular expressions matched against the whole value; escape special characters, e.g. -n \'a\\+b\' for the name a+b.',
    });
  }
  return pattern;
}

/** Destructive commands act only on jobs the user picked out. */
export function requireSelection(sel: Selection, command: string): void {
  if (!sel.given) {
    throw new UsageError(`xpr ${command} needs at least one of -i/--id, -n/--name, -s/--status, -S/--system`, {
      hint: `To act on every job, say so: xpr ${command} -s '*'`,
    });
  }
}

/** System names a -S regexp can match: configured ones and those recorded on jobs. */
export function knownSystems(project: Pick<Project, 'config'>, store: JobStore | undefined): string[] {
  return [...new Set([...Object.keys(project.config.systems), ...(store?.systems() ?? [])])];
}

function projectOptions(ctx: CommandContext) {
  return {
    ...(ctx.cwd !== undefined ? { cwd: ctx.cwd } : {}),
    ...(ctx.env !== undefined ? { env: ctx.env } : {}),
    ...(ctx.dbFile !== undefined ? { dbFile: ctx.dbFile } : {}),
  };
}

/** How a command uses the job database. */
export interface Access {
  /**
   * Only reads it: opened read-only, so the command works on a read-only project and beside a
   * process that is writing, and creates nothing (JobStore.open).
   */
  readonly?: boolean;
}

/**
 * Run `fn` with the project open, and close it (its connections and database) afterwards. The job
 * engine (schedulers, transports, SSH) is loaded here, on demand: commands that only read the
 * database use `withView` and start faster.
 */
export async function withProject<T>(ctx: CommandContext, fn: (project: Project) => Promise<T> | T, access: Access = {}): Promise<T> {
  const { Project } = await import('../job/project.js');
  const project = Project.open({ ...projectOptions(ctx), ...(access.readonly ? { readonly: true } : {}) });
  try {
    return await fn(project);
  } finally {
    await project.close();
  }
}

/** A project's config and job database, without its systems: what read-only commands need. */
export interface ProjectView {
  config: XprConfig;
  paths: ProjectPaths;
  origins: Map<string, string>;
  /**
   * The job database, opened on first use (created if missing, unless read-only: check
   * `hasDatabase` first).
   */
  readonly store: JobStore;
}

/** Run `fn` with the project's config and database (as Project.open finds them), closing the database after. */
export async function withView<T>(ctx: CommandContext, fn: (view: ProjectView) => Promise<T> | T, access: Access = {}): Promise<T> {
  const { config, paths, origins } = loadConfig(projectOptions(ctx));
  let store: JobStore | undefined;
  const view: ProjectView = {
    config, origins,
    paths: ctx.dbFile ? { ...paths, dbPath: ctx.dbFile } : paths,
    get store() {
      store ??= JobStore.open(view.paths.dbPath, { readonly: access.readonly ?? false });
      return store;
    },
  };
  try {
    return await fn(view);
  } finally {
    store?.close();
  }
}

/** Whether the job database exists; read-only commands do not create one. */
export function hasDatabase(project: Pick<ProjectView, 'paths'>): boolean {
  return fs.existsSync(project.paths.dbPath);
}

/**
 * The named system, connected. An unknown name stays a user error; any failure to open its
 * transport becomes an UnreachableError (exit code 3) that says which host.
 */
export function openSystem(project: Project, name: string): System {
  const cfg = getSystem(project.config, name, project.paths);
  try {
    return project.system(name);
  } catch (err) {
    if (err instanceof UnreachableError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new UnreachableError(cfg.host ?? 'localhost', `Cannot reach system "${name}": ${message}`, {
      hint: err instanceof XprError && err.hint ? err.hint : `Check the system's "host" in config.json, then run: xpr doctor ${name}`,
      cause: err,
    });
  }
}

/** Asks the user a yes/no question; resolves false on anything but yes. */
export type Confirm = (question: string) => Promise<boolean>;

/** Ask before a destructive action unless `yes`; with no way to ask, refuse. */
export async function confirmed(question: string, opts: { yes?: boolean; confirm?: Confirm }): Promise<boolean> {
  if (opts.yes) return true;
  if (!opts.confirm) {
    throw new UsageError(`${question.split('\n')[0]} — nothing done: there is no terminal to ask on, and this needs confirmation`, {
      hint: 'Pass -y/--yes to go ahead without asking, or run the command from a terminal.',
    });
  }
  return opts.confirm(question);
}

/** Group items by a key, keeping first-seen order. */
export function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = out.get(k);
    if (list) list.push(it);
    else out.set(k, [it]);
  }
  return out;
}

/** Escape a literal for use inside a regexp. */
export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
