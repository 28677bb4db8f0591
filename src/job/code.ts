// Getting a function's code to where the job runs.
//
// The rule: a job's function must be a named export of a module file (not the entry script). xpr
// bundles that module, with everything it imports from the project and node_modules, into one
// self-contained ES module (esbuild), so the remote needs only `node`. The bundle's hash is the
// function's code identity in the restart hash: edit the op or anything it imports and the call
// runs again; leave it alone and a rerun re-attaches. Imports of `xpr` itself resolve to a small
// remote-side shim, so op modules may import `autoparallelize` without dragging in SQLite or SSH.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { XprError } from '../errors.js';
import { distFile, PACKAGE_ROOT } from '../util/paths.js';

export interface FunctionRef {
  /** Absolute path of the module that exports the function. */
  modulePath: string;
  exportName: string;
}

export interface CodeBundle {
  /** sha256 (hex) of the bundled code; also its file name in the code dir. */
  hash: string;
  code: string;
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

/**
 * Find the module and export name under which `fn` can be imported in the job. Refuses, with what
 * to do, a function that is not exported (a closure, a lambda) or lives in the entry script.
 */
export async function locateFunction(
  fn: AnyFunction, options: { module?: string | URL; exportName?: string; callerFile?: string } = {},
  // The defining file is found through V8; `callerFile` is the fallback when V8 cannot say.
): Promise<FunctionRef> {
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

/** Imports of 'xpr' inside a bundled op resolve to the remote-side shim. */
const xprShim: Plugin = {
  name: 'xpr-shim',
  setup(b) {
    b.onResolve({ filter: /^xpr$/ }, () => ({ path: distFile('remote/xpr-shim.js') }));
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
    p = runBundle(modulePath, [xprShim], `the module ${modulePath}`);
    bundleCache.set(modulePath, p);
    p.catch(() => bundleCache.delete(modulePath));
  }
  return p;
}

/** The job runner, bundled into one file (it uses only node builtins and xpr's pure modules). */
export function runnerBundle(): Promise<CodeBundle> {
  return bundleModule(distFile('runner/main.js'));
}

async function runBundle(entry: string, plugins: Plugin[], what: string): Promise<CodeBundle> {
  try {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node18',
      write: false,
      plugins,
      banner: { js: REQUIRE_BANNER },
      logLevel: 'silent',
      legalComments: 'none',
      // Remote stacks then point at the user's own files and lines (the job runs node with
      // --enable-source-maps); the sources themselves stay out to keep bundles small.
      sourcemap: 'inline',
      sourcesContent: false,
      // Source paths relative to / plus a '/' source root: stacks show the local absolute paths.
      absWorkingDir: '/',
      outfile: '/xpr-bundle.mjs',
      sourceRoot: '/',
    });
    const code = result.outputFiles[0]!.text;
    return { hash: crypto.createHash('sha256').update(code).digest('hex'), code };
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
