// Where a project's files are (as ExPyRe): $EXPYRE_ROOT (which must exist), else every `_expyre/` or
// `.expyre/` dir from $HOME (or /) down to the working dir. Discovery only looks; the project dir
// is created by whoever first writes to it, so `xpr ls` in a fresh dir leaves nothing behind.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { shWord } from '../util/shell.js';

export const PROJECT_DIR_NAMES = ['_expyre', '.expyre'] as const;

export interface ProjectPaths {
  /** Dir that holds jobs.db and the run_<id> stage dirs (may not exist yet). */
  rootDir: string;
  dbPath: string;
  /** config.json files that exist, shallowest first (merge order). */
  configFiles: string[];
  /** Project dirs whose config.json was looked for, shallowest first (EXPYRE_ROOT: just that dir). */
  projectDirs: string[];
  /** True when EXPYRE_ROOT chose the dir (no walk). */
  fromEnv: boolean;
}

export interface DiscoverOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  home?: string;
}

export function discoverProject(opts: DiscoverOptions = {}): ProjectPaths {
  const env = opts.env ?? process.env;
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const root = env['EXPYRE_ROOT'];
  // ExPyRe treats EXPYRE_ROOT='@' as "search as if unset".
  if (root !== undefined && root !== '' && root !== '@') return fromExpyreRoot(path.resolve(cwd, root));

  const home = path.resolve(opts.home ?? (env['HOME'] || os.homedir()));
  const found = walkUp(cwd, home);
  const rootDir = found.at(-1) ?? path.join(cwd, '_expyre');
  return {
    rootDir,
    dbPath: path.join(rootDir, 'jobs.db'),
    configFiles: found.map((d) => path.join(d, 'config.json')).filter(isFile),
    projectDirs: found,
    fromEnv: false,
  };
}

function fromExpyreRoot(rootDir: string): ProjectPaths {
  // Not created on first use as ./_expyre is: a misspelt EXPYRE_ROOT would quietly start a new,
  // empty project (and jobs.db) beside the real one.
  if (!exists(rootDir)) {
    throw new ConfigError([{ path: '', message: `EXPYRE_ROOT=${rootDir} does not exist` }], {
      what: 'Cannot use EXPYRE_ROOT',
      hint: `Check its spelling. To start a project there, create it first: mkdir -p ${shWord(rootDir)}. ` +
        'Or unset EXPYRE_ROOT to search from the working directory.',
    });
  }
  if (!isDir(rootDir)) {
    throw new ConfigError([{ path: '', message: `EXPYRE_ROOT=${rootDir} is not a directory` }], {
      what: 'Cannot use EXPYRE_ROOT',
      hint: 'Point EXPYRE_ROOT at a directory (it holds config.json and jobs.db), or unset it to search from the working directory.',
    });
  }
  const config = path.join(rootDir, 'config.json');
  return {
    rootDir,
    dbPath: path.join(rootDir, 'jobs.db'),
    configFiles: isFile(config) ? [config] : [],
    projectDirs: [rootDir],
    fromEnv: true,
  };
}

/** Project dirs from `cwd` up to `home` inclusive (or to `/` when cwd is outside home), shallowest first. */
function walkUp(cwd: string, home: string): string[] {
  const realHome = realpath(home);
  const found: string[] = [];
  const problems: { file: string; path: string; message: string }[] = [];
  let dir = cwd;
  for (;;) {
    const here = PROJECT_DIR_NAMES.map((n) => path.join(dir, n)).filter(isDir);
    if (here.length > 1) {
      problems.push({ file: dir, path: '', message: `both ${here.join(' and ')} exist; keep one (merge their config.json files)` });
    }
    if (here[0] !== undefined) found.push(here[0]);
    // Compare real paths: HOME or the working dir may reach the same place through a symlink.
    const parent = path.dirname(dir);
    if (realpath(dir) === realHome || parent === dir) break;
    dir = parent;
  }
  if (problems.length > 0) {
    throw new ConfigError(problems, {
      what: 'Ambiguous project directory',
      hint: 'xpr (like ExPyRe) reads either _expyre/ or .expyre/ in a directory, never both.',
    });
  }
  return found.reverse();
}

function realpath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

function exists(p: string): boolean {
  return fs.existsSync(p);
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
