// Reading a project's configuration: discover the files, merge them leaf by leaf, validate the
// result in one pass, and fill in defaults. Every error names the file the bad value came from and
// its key path, and all of them come at once, so one edit-run cycle fixes a config.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseJsonTree, tokenize as tokenizeJson, type Token } from '@humanwhocodes/momoa';
import { ConfigError, XprError, type ConfigIssue } from '../errors.js';
import { discoverProject, type DiscoverOptions, type ProjectPaths } from './discover.js';
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
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      const { line, column, message } = jsonMistake(text, e);
      problems.push({ file, path: '', message: `invalid JSON at line ${line}, column ${column}: ${message}` });
      continue;
    }
    if (!isPlainObject(value)) {
      problems.push({ file, path: '', message: 'expected a JSON object ({ "systems": { ... } }) at the top level' });
    } else {
      mergeLayer(merged, value, file, origins);
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

interface JsonMistake {
  line: number;
  column: number;
  message: string;
}

/**
 * Where and why `text` is not JSON. Node's JSON.parse often names no position, so momoa parses it
 * again for the place; momoa's own words name token types (`Unexpected token RBrace`), so the
 * message says what JSON expected there, from momoa's tokens before that place.
 */
function jsonMistake(text: string, parseError: unknown): JsonMistake {
  try {
    parseJsonTree(text, { mode: 'json' });
  } catch (e) {
    if (!isMomoaError(e)) throw e;
    const found = e.offset >= text.length ? 'end of file' : `'${text[e.offset]}'`;
    return { line: e.line, column: e.column, message: expectedBefore(text.slice(0, e.offset), found) };
  }
  // momoa takes raw control characters inside strings, which JSON forbids.
  for (const t of tokenizeJson(text, { mode: 'json' })) {
    const at = t.type === 'String' ? /[\u0000-\u001f]/.exec(text.slice(t.loc.start.offset, t.loc.end.offset)) : null;
    if (at) {
      const offset = t.loc.start.offset + at.index;
      const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
      return {
        line: text.slice(0, lineStart).split('\n').length,
        column: offset - lineStart + 1,
        message: 'control character (e.g. a newline) inside a string; write it as an escape like \\n',
      };
    }
  }
  return { line: 1, column: 1, message: parseError instanceof Error ? parseError.message : String(parseError) };
}

function isMomoaError(e: unknown): e is Error & { line: number; column: number; offset: number } {
  return e instanceof Error && typeof (e as { offset?: unknown }).offset === 'number';
}

/** What JSON allows after `before`, said as "expected …, found <found>". */
function expectedBefore(before: string, found: string): string {
  let tokens: Token[];
  try {
    tokens = tokenizeJson(before, { mode: 'json' });
  } catch {
    return found === 'end of file' ? 'the file ends inside a string or number' : `invalid string or number at ${found}`;
  }
  const closers: string[] = [];
  for (const t of tokens) {
    if (t.type === 'LBrace') closers.push('}');
    else if (t.type === 'LBracket') closers.push(']');
    else if (t.type === 'RBrace' || t.type === 'RBracket') closers.pop();
  }
  const last = tokens.at(-1)?.type;
  const close = closers.at(-1);
  const value = 'a value (object, array, string, number, true, false or null)';
  let expected: string;
  if (last === undefined || last === 'Colon' || (last === 'Comma' && close === ']')) expected = value;
  else if (last === 'LBracket') expected = `${value} or ']'`;
  else if (last === 'LBrace') expected = "a double-quoted key or '}'";
  else if (last === 'Comma') expected = 'a double-quoted key';
  else if (close === undefined) return 'unexpected text after the end of the JSON value';
  else if (close === '}' && last === 'String' && ['LBrace', 'Comma'].includes(tokens.at(-2)?.type ?? '')) expected = "':' after the key";
  else expected = `',' or '${close}' after a value in ${close === '}' ? 'an object' : 'an array'}`;
  const trailingComma = last === 'Comma' && (found === "'}'" || found === "']'");
  return `expected ${expected}, found ${found}${trailingComma ? ' (trailing commas are not allowed in JSON)' : ''}`;
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
