// Call-stack frames for matching WFL_EXPYRE_INFO keys, which are written as ExPyRe writes them.
// Frames come from V8's structured stack (Error.prepareStackTrace call sites, with the async frames
// V8 records across `await`), so `await stageA()` still shows stageA. Each frame is
// `<file>::<function>`; the file is offered both as a path and as a file:// URL, and, when the file
// has a source map (node --enable-source-maps), also as the original source (e.g. fit.ts), so a key
// written against any of these matches. xpr's own frames, node internals and native frames are
// dropped; module top level is `<module>`, as in Python.
import { findSourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { XprError } from '../errors.js';
import { PACKAGE_ROOT } from '../util/paths.js';

export interface StackFrame {
  /** The file as V8 names it (path or URL). */
  file: string;
  /** Function name, `<module>` for module top level, `<anonymous>` for an unnamed function. */
  fn: string;
  /** Every `<file>::<function>` form a key piece may match. */
  labels: string[];
}

const OWN_DIRS = [path.join(PACKAGE_ROOT, 'src') + path.sep, path.join(PACKAGE_ROOT, 'dist') + path.sep];
const STACK_LIMIT = 200;

type Site = NodeJS.CallSite & { getEnclosingLineNumber?: () => number | null; getEnclosingColumnNumber?: () => number | null };

/** Call sites of the current stack above `above` (excluded), innermost first, async frames included. */
export function callSites(above: (...a: never[]) => unknown): Site[] {
  const savedPrepare = Error.prepareStackTrace;
  const savedLimit = Error.stackTraceLimit;
  const holder: { stack?: Site[] } = {};
  try {
    Error.stackTraceLimit = STACK_LIMIT;
    Error.prepareStackTrace = (_e, sites) => sites;
    Error.captureStackTrace(holder, above);
    return holder.stack ?? [];
  } finally {
    Error.prepareStackTrace = savedPrepare;
    Error.stackTraceLimit = savedLimit;
  }
}

function toPath(file: string): string | undefined {
  if (file.startsWith('file:')) {
    try {
      return fileURLToPath(file);
    } catch {
      return undefined;
    }
  }
  return path.isAbsolute(file) ? file : undefined;
}

/** Whether a file is the user's: not a node internal, not native code, not xpr itself. */
export function isUserFile(file: string | null | undefined): file is string {
  if (!file || file.startsWith('node:') || file.startsWith('internal/')) return false;
  const p = toPath(file);
  return !(p && OWN_DIRS.some((d) => p.startsWith(d)));
}

function functionName(site: Site): string {
  const name = site.getFunctionName() ?? site.getMethodName();
  if (name) return name;
  // A module's top level is an unnamed function that encloses everything from its first character.
  const line = site.getEnclosingLineNumber?.();
  const col = site.getEnclosingColumnNumber?.();
  if (line === undefined || col === undefined) return site.isToplevel() ? '<module>' : '<anonymous>';
  return line === 1 && col === 1 ? '<module>' : '<anonymous>';
}

/** The forms of a file name a key may be written against: path, file:// URL, source-mapped original. */
function fileForms(file: string, line: number | null, column: number | null): string[] {
  const forms = new Set<string>([file]);
  const p = toPath(file);
  if (p) {
    forms.add(p);
    forms.add(pathToFileURL(p).href);
    if (line !== null && column !== null) {
      try {
        const entry = findSourceMap(p)?.findEntry(line - 1, column - 1) as { originalSource?: string } | undefined;
        const orig = entry?.originalSource;
        if (orig) {
          forms.add(orig);
          const op = toPath(orig);
          if (op) { forms.add(op); forms.add(pathToFileURL(op).href); }
        }
      } catch {
        // no usable source map: the generated file names are still there
      }
    }
  }
  return [...forms];
}

export function frameOf(site: Site): StackFrame | undefined {
  const file = site.getFileName() ?? site.getScriptNameOrSourceURL();
  if (!isUserFile(file)) return undefined;
  const fn = functionName(site);
  const labels = fileForms(file, site.getLineNumber(), site.getColumnNumber()).map((f) => `${f}::${fn}`);
  return { file, fn, labels };
}

/** The user's frames above `above`, outermost first (library frames dropped). */
export function userFrames(above: (...a: never[]) => unknown): StackFrame[] {
  return callSites(above).map(frameOf).filter((f): f is StackFrame => f !== undefined).reverse();
}

/** The first user frame above `above`: who called it. */
export function callerFrame(above: (...a: never[]) => unknown): StackFrame | undefined {
  for (const site of callSites(above)) {
    const f = frameOf(site);
    if (f) return f;
  }
  return undefined;
}

/** A frame that stands for an autoparallelize wrapper: `<file that defined it>::<name>`. */
export function wrapperFrame(definedIn: StackFrame | undefined, name: string): StackFrame {
  if (!definedIn) return { file: '<unknown>', fn: name, labels: [`<unknown>::${name}`] };
  const files = [...new Set(definedIn.labels.map((l) => l.slice(0, l.lastIndexOf('::'))))];
  return { file: definedIn.file, fn: name, labels: files.map((f) => `${f}::${name}`) };
}

const pieceCache = new Map<string, RegExp>();

function pieceRegExp(piece: string, key: string): RegExp {
  let re = pieceCache.get(piece);
  if (!re) {
    try {
      re = new RegExp(`(?:${piece})$`);
    } catch (err) {
      throw new XprError(`WFL_EXPYRE_INFO key "${key}": "${piece}" is not a valid regular expression: ${(err as Error).message}`, {
        hint: 'Each comma-separated piece of a key is a regular expression matched at the end of "<file>::<function>".',
      });
    }
    pieceCache.set(piece, re);
  }
  return re;
}

/** The pieces of a key, outermost first. */
export function keyPieces(key: string): string[] {
  return key.split(',').map((p) => p.trim());
}

/**
 * Whether a key matches the innermost frames (`frames` outermost first, ending with the wrapper's
 * own frame): the last piece against the innermost frame, the one before against its caller, and so on.
 * A key with more pieces than there are frames does not match.
 */
export function keyMatches(key: string, frames: readonly StackFrame[]): boolean {
  const pieces = keyPieces(key);
  if (pieces.length === 0 || pieces.length > frames.length) return false;
  const tail = frames.slice(frames.length - pieces.length);
  return pieces.every((piece, i) => {
    const re = pieceRegExp(piece, key);
    return tail[i]!.labels.some((label) => re.test(label));
  });
}

/** `fit.js::stageB > fit.js::helper > ops.js::calculate`, short names, for log lines. */
export function describeFrames(frames: readonly StackFrame[], n = 4): string {
  return frames.slice(-n).map((f) => `${path.basename(toPath(f.file) ?? f.file)}::${f.fn}`).join(' > ');
}
