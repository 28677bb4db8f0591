// Calling an op on a chunk of items, the same way in-process, in a pool worker and in a remote job:
// the op gets the items and the kwargs and must give back one result per item (null or undefined for
// "nothing for this item"; an array for several). Results are aligned with the items, so a result
// can always be placed at its input's location, also when the last item of a chunk gives nothing.
// Pure: bundled into the job runner.
import { pathToFileURL } from 'node:url';

export type Op = (items: unknown[], kwargs: Record<string, unknown>) => unknown;

/** How a process that did not define the op imports it: a module's export, or its `.op`. */
export interface OpTarget {
  /** Absolute path of the module to import. */
  module: string;
  export: string;
  /** 'op': the export is an autoparallelize wrapper; call the op it carries. */
  member?: 'op';
}

/** A function exported by a module, called with `args` once per worker process. */
export interface InitializerRef {
  module: string;
  export: string;
  args: readonly unknown[];
}

export async function callOp(op: Op, items: unknown[], kwargs: Record<string, unknown>): Promise<unknown[]> {
  const out = await op(items, kwargs);
  if (out === null || out === undefined) return items.map(() => null);
  let list: unknown[];
  if (Array.isArray(out)) list = out;
  else if (typeof out === 'object' && Symbol.iterator in out && typeof out !== 'string') list = [...(out as Iterable<unknown>)];
  else throw new TypeError(`the op returned ${typeof out}, not a list with one result per item`);
  if (list.length !== items.length) {
    throw new TypeError(`the op returned ${list.length} result(s) for ${items.length} item(s); ` +
      'return one result per item, in order (null for an item that gives nothing)');
  }
  return list.map((x) => (x === undefined ? null : x));
}

/** Import a module and take the op it exports (directly or as a wrapper's `.op`). */
export async function importOp(target: OpTarget): Promise<Op> {
  const mod = (await import(pathToFileURL(target.module).href)) as Record<string, unknown>;
  const exported = mod[target.export];
  const fn = target.member === 'op' ? (exported as { op?: unknown } | undefined)?.op : exported;
  if (typeof fn !== 'function') {
    const what = target.member === 'op' ? `an autoparallelized operation "${target.export}" (with .op)` : `a function "${target.export}"`;
    throw new TypeError(`${target.module} does not export ${what} (exports: ${Object.keys(mod).join(', ') || 'none'})`);
  }
  return fn as Op;
}

export async function runInitializer(init: InitializerRef): Promise<void> {
  const mod = (await import(pathToFileURL(init.module).href)) as Record<string, unknown>;
  const fn = mod[init.export];
  if (typeof fn !== 'function') {
    throw new TypeError(`${init.module} does not export an initializer function "${init.export}"`);
  }
  await (fn as (...a: unknown[]) => unknown)(...init.args);
}
