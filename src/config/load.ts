// Reading a project's configuration: discover the files, merge them leaf by leaf, validate the
// result in one pass, and fill in defaults. Every error names the file the bad value came from and
// its key path, and all of them come at once, so one edit-run cycle fixes a config.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, XprError, type ConfigIssue } from '../errors.js';
import { discoverProject, type DiscoverOptions, type ProjectPaths } from './discover.js';
import { parseJson } from './json.js';
import { dotted, isPlainObject, mergeLayer, Origins, type JsonObject, type KeyPath } from './merge.js';
import { normalizeConfig } from './normalize.js';
import { validateConfig, type SystemConfig, type XprConfig } from './schema.js';

export type LoadOptions = DiscoverOptions;

export interface LoadedConfig {
  config: XprConfig;
  paths: ProjectPaths;
  /** Dotted key path of every leaf of `config` → file it came from ('built-in' for defaults). */
  origins: Map<string, string>;
}

/** Origin of values xpr supplies itself. */
export const BUILT_IN = 'built-in';

// Keys of SystemConfig that no file can set: they are derived, so they have no origin.
const DERIVED_KEYS = new Set(['name', 'runsInPlace']);

export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const home = path.resolve(opts.home ?? (env['HOME'] || os.homedir()));
  let paths = discoverProject({ ...opts, env, home });

  const origins = new Origins();
  const merged = mergeFiles(paths.configFiles, origins);
  dropNullSystems(merged, origins);

  const result = validateConfig(merged);
  if (!result.ok) {
    const issues: ConfigIssue[] = result.issues.map((i) => ({
      ...fileField(origins.locate(i.path)),
      path: dotted(i.path),
      message: i.message,
    }));
    const hint = `Files merged, shallowest first: ${paths.configFiles.join(', ')}. Fix each value in the file named on its line.`;
    throw new ConfigError(issues, { hint });
  }

  // As in ExPyRe, local_stage_dir moves jobs.db and the job dirs. A relative one is taken from the
  // dir of the file that says it (ExPyRe: from the working dir, which changes from run to run).
  const stageSetting = result.value.local_stage_dir;
  if (stageSetting !== undefined) {
    const file = origins.get(['local_stage_dir']) ?? path.join(paths.rootDir, 'config.json');
    const rootDir = path.resolve(path.dirname(file), stageSetting);
    paths = { ...paths, rootDir, dbPath: path.join(rootDir, 'jobs.db') };
  }

  const config = normalizeConfig(result.value, { stageDir: paths.rootDir, home, env });
  if (stageSetting !== undefined) config.local_stage_dir = paths.rootDir;
  return { config, paths, origins: leafOrigins(config, origins, env) };
}

/** The system called `name`; an unknown name lists the known ones and where systems are defined. */
export function getSystem(
  config: XprConfig,
  name: string,
  where?: Pick<ProjectPaths, 'rootDir' | 'configFiles'>,
): SystemConfig {
  const sys = Object.hasOwn(config.systems, name) ? config.systems[name] : undefined;
  if (sys !== undefined) return sys;
  const known = Object.keys(config.systems).join(', ');
  throw new XprError(`Unknown system "${name}" (known: ${known})`, { hint: filesHint(where) });
}

function filesHint(where: Pick<ProjectPaths, 'rootDir' | 'configFiles'> | undefined): string {
  if (where === undefined) {
    return 'Systems are defined under "systems" in config.json, in $EXPYRE_ROOT or in the _expyre/ or ' +
      '.expyre/ dirs from the working dir up to $HOME.';
  }
  if (where.configFiles.length === 0) {
    return `No config.json was found; define systems under "systems" in ${path.join(where.rootDir, 'config.json')} ` +
      '(or in ~/.expyre/config.json for every project).';
  }
  return `Systems are defined under "systems" in ${where.configFiles.join(', ')} (merged in that order, deepest last).`;
}

/** Read and merge the files, shallowest first; unreadable or malformed files are reported together. */
function mergeFiles(files: string[], origins: Origins): JsonObject {
  const merged: JsonObject = {};
  const problems: ConfigIssue[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      problems.push({ file, path: '', message: `cannot read: ${e instanceof Error ? e.message : String(e)}` });
      continue;
    }
    const parsed = parseJson(text);
    if (!parsed.ok) {
      const { line, column, message } = parsed.error;
      problems.push({ file, path: '', message: `invalid JSON at line ${line}, column ${column}: ${message}` });
    } else if (!isPlainObject(parsed.value)) {
      problems.push({ file, path: '', message: 'expected a JSON object ({ "systems": { ... } }) at the top level' });
    } else {
      mergeLayer(merged, parsed.value, file, origins);
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(problems, {
      what: 'Cannot read configuration',
      hint: 'config.json must be plain JSON: double-quoted keys, no comments, no trailing commas.',
    });
  }
  return merged;
}

// Older ExPyRe removed a system given as null in a deeper file; keep that meaning.
function dropNullSystems(merged: JsonObject, origins: Origins): void {
  const systems = merged['systems'];
  if (!isPlainObject(systems)) return;
  for (const [name, value] of Object.entries(systems)) {
    if (value === null) {
      delete systems[name];
      origins.dropSubtree(['systems', name]);
    }
  }
}

function fileField(file: string | undefined): { file?: string } {
  return file === undefined ? {} : { file };
}

/** Origin of every leaf of the final config (arrays are leaves: they replace, never merge). */
function leafOrigins(config: XprConfig, origins: Origins, env: NodeJS.ProcessEnv): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (value: unknown, at: KeyPath): void => {
    if (isPlainObject(value)) {
      const inSystem = at.length === 2 && at[0] === 'systems';
      for (const [k, v] of Object.entries(value)) {
        if (inSystem && DERIVED_KEYS.has(k)) continue;
        if (v !== undefined) visit(v, [...at, k]);
      }
      return;
    }
    out.set(dotted(at), sourceOf(at, origins, env));
  };
  visit(config, []);
  return out;
}

function sourceOf(at: KeyPath, origins: Origins, env: NodeJS.ProcessEnv): string {
  const direct = origins.get(at);
  if (direct !== undefined) return direct;
  // The file may have said `queues`; the config calls them `partitions`.
  if (at[0] === 'systems' && at[2] === 'partitions') {
    const viaQueues = origins.get([...at.slice(0, 2), 'queues', ...at.slice(3)]);
    if (viaQueues !== undefined) return viaQueues;
  }
  if (at[0] === 'systems' && at[2] === 'remsh_cmd' && env['EXPYRE_RSH']) return 'env EXPYRE_RSH';
  return BUILT_IN;
}
