// Getting a function's code to where the job runs.
//
// The rule: a job's function must be a named export of a module file (not the entry script). xpr
// bundles that module, with everything it imports from the project and node_modules, into one
// self-contained ES module (esbuild), so the remote needs only `node`. The bundle's hash is the
// function's code identity in the restart hash: edit the op or anything it imports and the call
// runs again; leave it alone and a rerun re-attaches, also from a copy of the project or after
// moving it (the bundle holds no absolute path; the source map, which does, is kept beside it).
// Imports of `xpr` itself resolve to a small remote-side shim, so op modules may import
// `autoparallelize` without dragging in SQLite or SSH.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Metafile, type OutputFile, type Plugin } from 'esbuild';
import { XprError } from '../errors.js';
import { distFile, PACKAGE_ROOT } from '../util/paths.js';

export interface FunctionRef {
  /** Absolute path of the module that exports the function. */
  modulePath: string;
  exportName: string;
}

export interface CodeBundle {
  /** sha256 (hex) of `code`: the code identity in the restart hash, and its file name in the code dir. */
  hash: string;
  /**
   * The bundled module. It holds no absolute path and no source map, so its hash depends on the
   * code alone: a project copied or moved elsewhere keeps its hashes, and its jobs re-attach.
   */
  code: string;
  /** Source map of `code`, naming the source files where they are now (file URLs); see writeBundle. */
  map: string;
}

export type AnyFunction = (...args: never[]) => unknown;

/** Files of xpr itself: skipped when looking for the user's frame on the stack. */
const OWN_DIRS = [path.join(PACKAGE_ROOT, 'src') + path.sep, path.join(PACKAGE_ROOT, 'dist') + path.sep];

/** The first file on the current stack outside xpr: the user's module that called into xpr. */
export function callerFile(): string | undefined {
  const saved = Error.prepareStackTrace;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  try {
    Error.prepareStackTrace = (_e, sites) => sites;
    Error.captureStackTrace(holder, callerFile);
    for (const site of holder.stack ?? []) {
      const name = site.getFileName();
      if (!name || name.startsWith('node:')) continue;
      const file = name.startsWith('file:') ? fileURLToPath(name) : name;
      if (!path.isAbsolute(file) || OWN_DIRS.some((d) => file.startsWith(d))) continue;
      return file;
    }
    return undefined;
  } finally {
    Error.prepareStackTrace = saved;
  }
}

/**
 * The file a function was defined in, asked of V8 through the inspector protocol (the in-process
 * session answers synchronously). Undefined for builtins and bound functions.
 */
export function definingFile(fn: AnyFunction): string | undefined {
  const session = new Session();
  session.connect();
  const urls = new Map<string, string>();
  session.on('Debugger.scriptParsed', (m) => urls.set(m.params.scriptId, m.params.url));
  const key = `__xprLocate${process.pid}`;
  const g = globalThis as Record<string, unknown>;
  let url: string | undefined;
  try {
    g[key] = fn;
    session.post('Debugger.enable');
    session.post('Runtime.evaluate', { expression: `globalThis[${JSON.stringify(key)}]` }, (err, res) => {
      const objectId = res?.result.objectId;
      if (err || !objectId) return;
      session.post('Runtime.getProperties', { objectId, ownProperties: true }, (err2, props) => {
        const loc = props?.internalProperties?.find((p) => p.name === '[[FunctionLocation]]');
        const scriptId = (loc?.value?.value as { scriptId?: string } | undefined)?.scriptId;
        if (!err2 && scriptId) url = urls.get(scriptId);
      });
    });
  } finally {
    delete g[key];
    session.post('Debugger.disable');
    session.disconnect();
  }
  if (!url) return undefined;
  if (url.startsWith('file:')) return fileURLToPath(url);
  return path.isAbsolute(url) ? url : undefined;
}

function toPath(m: string | URL): string {
  if (m instanceof URL) return fileURLToPath(m);
  return m.startsWith('file:') ? fileURLToPath(m) : path.resolve(m);
}

function isEntryScript(file: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return fs.realpathSync(entry) === fs.realpathSync(file);
  } catch {
    return false;
  }
}

const SHIP_HINT = 'Define the function at the top level of a module file, export it, and import it from your ' +
  'script (or pass { module: import.meta.url, exportName } for a function exported elsewhere).';

/** A value as a message names what was passed instead of a function. */
function describeValue(v: unknown, insteadOfFunction = false): string {
  if (v === undefined) return insteadOfFunction ? 'undefined (check the import name)' : 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'string') {
    return `the string ${JSON.stringify(v)}${insteadOfFunction ? ' (pass the function itself, imported from its module, not its name)' : ''}`;
  }
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `the ${typeof v} ${String(v)}`;
}

/**
 * Checks that `fn` is a function before anything is looked up or staged. `what` names it as the
 * caller wrote it (`fn`, `calls[2].fn`).
 */
export function requireFunction(fn: unknown, what = '`fn`'): asserts fn is AnyFunction {
  if (typeof fn === 'function') return;
  throw new XprError(`${what} must be a function exported from a module; got ${describeValue(fn, true)}`, { hint: SHIP_HINT });
}

/** Checks the calls given to Job.create / Job.createMany: objects, each with a function `fn`. */
export function checkCalls(calls: unknown): void {
  if (!Array.isArray(calls)) {
    throw new XprError(`Job.createMany takes an array of calls ({ name, fn, args, ... }); got ${describeValue(calls)}`);
  }
  calls.forEach((c: unknown, i) => {
    const where = calls.length === 1 ? '' : `calls[${i}]`;
    if (typeof c !== 'object' || c === null || Array.isArray(c)) {
      throw new XprError(`${where ? `${where}: a` : 'A'} call is an options object ({ name, fn, args, ... }); got ${describeValue(c)}`);
    }
    requireFunction((c as { fn?: unknown }).fn, where ? `\`${where}.fn\`` : '`fn`');
  });
}

/**
 * Find the module and export name under which `fn` can be imported in the job. Refuses, with what
 * to do, a function that is not exported (a closure, a lambda) or lives in the entry script.
 */
export async function locateFunction(
  fn: AnyFunction, options: { module?: string | URL; exportName?: string; callerFile?: string } = {},
  // The defining file is found through V8; `callerFile` is the fallback when V8 cannot say.
): Promise<FunctionRef> {
  requireFunction(fn);
  const key = `${String(options.module ?? '')}\0${options.exportName ?? ''}\0${options.callerFile ?? ''}`;
  const cached = locateCache.get(fn)?.get(key);
  if (cached) return cached;
  const ref = await locateUncached(fn, options);
  if (!locateCache.has(fn)) locateCache.set(fn, new Map());
  locateCache.get(fn)!.set(key, ref);
  return ref;
}

/** Where each function was found; a job loop asks for the same function thousands of times. */
const locateCache = new WeakMap<AnyFunction, Map<string, FunctionRef>>();

async function locateUncached(
  fn: AnyFunction, options: { module?: string | URL; exportName?: string; callerFile?: string },
): Promise<FunctionRef> {
  const label = fn.name ? `"${fn.name}"` : 'an anonymous function';
  const modulePath = options.module !== undefined ? toPath(options.module) : definingFile(fn) ?? options.callerFile;
  if (!modulePath) throw new XprError(`Cannot tell which module exports ${label}`, { hint: SHIP_HINT });
  if (isEntryScript(modulePath)) {
    throw new XprError(`${label} is defined in the entry script ${modulePath}, which cannot be loaded in a job without running the script again`, { hint: SHIP_HINT });
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
  } catch (err) {
    throw new XprError(`Cannot import ${modulePath} to find ${label}: ${(err as Error).message}`, { hint: SHIP_HINT, cause: err });
  }
  if (options.exportName !== undefined) {
    if (mod[options.exportName] !== fn) {
      throw new XprError(`${modulePath} has no export "${options.exportName}" that is ${label}`, { hint: SHIP_HINT });
    }
    return { modulePath, exportName: options.exportName };
  }
  const names = Object.keys(mod).filter((k) => mod[k] === fn);
  // Prefer a named export over `default` so the job file reads naturally.
  const exportName = names.find((n) => n !== 'default') ?? names[0];
  if (exportName === undefined) {
    throw new XprError(`${label} is not exported from ${modulePath}; a closure or a function that is not a module export cannot be sent to a job`, { hint: SHIP_HINT });
  }
  return { modulePath, exportName };
}

/** Namespace of the remote-side shim inside a bundle. */
const SHIM_NAMESPACE = 'xpr-shim';

/**
 * Imports of 'xpr' inside a bundled op resolve to the remote-side shim. It is loaded into a
 * namespace of its own rather than as a file, so where xpr is installed never enters the bundle
 * (or its hash). The shim imports nothing, so it needs no resolve dir.
 */
const xprShim: Plugin = {
  name: 'xpr-shim',
  setup(b) {
    b.onResolve({ filter: /^xpr$/ }, () => ({ path: 'xpr', namespace: SHIM_NAMESPACE }));
    b.onLoad({ filter: /.*/, namespace: SHIM_NAMESPACE }, () => ({
      // tsc's source map link would point nowhere from a namespace that is not a dir.
      contents: fs.readFileSync(distFile('remote/xpr-shim.js'), 'utf8').replace(/^\/\/# sourceMappingURL=.*$/m, ''),
      loader: 'js',
    }));
  },
};

/** CommonJS dependencies inside an ES module bundle still call `require` for node builtins. */
const REQUIRE_BANNER = "import { createRequire as __xprCreateRequire } from 'node:module';\n" +
  'const require = __xprCreateRequire(import.meta.url);';

const bundleCache = new Map<string, Promise<CodeBundle>>();

/** Bundle a module file into one self-contained ES module; cached per file for this process. */
export function bundleModule(modulePath: string): Promise<CodeBundle> {
  let p = bundleCache.get(modulePath);
  if (!p) {
    p = runBundle(modulePath, `the module ${modulePath}`);
    bundleCache.set(modulePath, p);
    p.catch(() => bundleCache.delete(modulePath));
  }
  return p;
}

/** The job runner, bundled into one file (it uses only node builtins and xpr's pure modules). */
export function runnerBundle(): Promise<CodeBundle> {
  return bundleModule(distFile('runner/main.js'));
}

async function runBundle(entry: string, what: string): Promise<CodeBundle> {
  try {
    // esbuild writes paths relative to its working dir into the code (a comment before each
    // module, the keys of CommonJS wrappers). With the dir that holds every input as working dir,
    // those paths move with the project. Most ops need one build; an op that imports from above
    // its own dir (a project's node_modules) needs a second one from the common dir.
    let root = path.dirname(entry);
    let result = await bundleFrom(entry, root);
    const common = commonDir(root, inputFiles(result.metafile, root));
    if (common !== root) {
      root = common;
      result = await bundleFrom(entry, root);
    }
    return toCodeBundle(result.outputFiles, root);
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors;
    const detail = errors?.length
      ? errors.map((e) => `  ${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`).join('\n')
      : `  ${(err as Error).message}`;
    throw new XprError(`Cannot bundle ${what} for a job:\n${detail}`, {
      hint: 'A job carries its code as one bundled file, so the remote needs only node; native addons ' +
        'cannot be bundled. Keep such imports out of the module that exports the function.',
      cause: err,
    });
  }
}

function bundleFrom(entry: string, root: string) {
  return build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    write: false,
    metafile: true,
    plugins: [xprShim],
    banner: { js: REQUIRE_BANNER },
    logLevel: 'silent',
    legalComments: 'none',
    absWorkingDir: root,
    outfile: path.join(root, 'xpr-bundle.mjs'),
    // Remote stacks then point at the user's own files and lines (the job runs node with
    // --enable-source-maps). 'external' keeps the map, with its absolute paths, out of the code
    // and so out of the hash; the sources themselves stay out to keep maps small.
    sourcemap: 'external',
    sourcesContent: false,
  });
}

/** Absolute paths of the files a build read (the shim's namespace and other virtual inputs left out). */
function inputFiles(metafile: Metafile, root: string): string[] {
  return Object.keys(metafile.inputs).map((rel) => path.resolve(root, rel)).filter((f) => fs.existsSync(f));
}

/** The deepest dir that holds `dir` and every one of `files`. */
function commonDir(dir: string, files: readonly string[]): string {
  let common = dir;
  for (const f of files) {
    while (common !== path.dirname(common) && !f.startsWith(common + path.sep)) common = path.dirname(common);
  }
  return common;
}

function toCodeBundle(outputs: readonly OutputFile[], root: string): CodeBundle {
  const code = outputs.find((f) => !f.path.endsWith('.map'))!.text;
  const map = JSON.parse(outputs.find((f) => f.path.endsWith('.map'))!.text) as { sources: string[]; sourceRoot?: string };
  // Sources come relative to the working dir; as file URLs they name the files wherever the job runs.
  map.sources = map.sources.map((s) => (/^[a-z][\w+.-]*:/i.test(s) ? s : pathToFileURL(path.resolve(root, s)).href));
  delete map.sourceRoot;
  return { hash: crypto.createHash('sha256').update(code).digest('hex'), code, map: JSON.stringify(map) };
}

/** Maps this process has written or found up to date, by file: a batch of jobs shares one bundle. */
const mapsWritten = new Map<string, string>();

/**
 * Put a bundle into the code dir as `fileName`, and its source map beside it as `<fileName>.map`.
 * The code file is named by hash: written once, never changed, shared by every job that uses it.
 * The map names the source files where they are now, so it is rewritten when the project has
 * moved. Both are written to a temporary name and renamed, because a running job may be reading
 * them.
 */
export function writeBundle(codeDir: string, fileName: string, bundle: CodeBundle): void {
  const file = path.join(codeDir, fileName);
  const mapFile = `${file}.map`;
  if (mapsWritten.get(mapFile) === bundle.map) return;
  fs.mkdirSync(codeDir, { recursive: true });
  if (!fs.existsSync(file)) writeAtomically(file, `${bundle.code}//# sourceMappingURL=${encodeURIComponent(fileName)}.map\n`);
  if (readIfExists(mapFile) !== bundle.map) writeAtomically(mapFile, bundle.map);
  mapsWritten.set(mapFile, bundle.map);
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
