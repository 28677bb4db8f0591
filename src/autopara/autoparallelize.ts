// autoparallelize: make an op over a list of items into a call that takes a ConfigSet and an
// OutputSpec and runs the items in a local pool of worker processes or, when WFL_EXPYRE_INFO (or a
// remoteInfo option) says so, as queued jobs on a cluster, with the same outputs either way.
// Outputs never cost the work: every output path is checked before anything runs, and results whose
// outputs could not be written at the end are kept (in the jobs, or saved under the stage dir) for
// the rerun to write.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigSet, type ConfigSetSource } from '../configset/configset.js';
import type { Located } from '../configset/loc.js';
import { OutputSpec, OutputWriteError, type StoredResult } from '../configset/outputspec.js';
import { callSite, forUser, XprError } from '../errors.js';
import { bundleModule, locateFunction, type FunctionRef } from '../job/code.js';
import { callHash, encodeCall } from '../job/identity.js';
import { distFile } from '../util/paths.js';
import { callOp, type InitializerRef, type Op, type OpTarget } from '../runner/callop.js';
import { checkOptions, localPoolSize, resolveOptions, type AutoparaDefaults, type AutoparaOptions, type ResolvedOptions } from './options.js';
import { runChunksInPool } from '../runner/pool.js';
import { chunk } from '../runner/pool-size.js';
import { itemsPerJob, runRemote } from './remote.js';
import { chooseRemoteInfo, describeChoice, loadExpyreInfo, type RemoteInfo } from './remoteinfo.js';
import { callerFrame, userFrames, wrapperFrame, type StackFrame } from './stack.js';
import { storeResult } from './store.js';
import { dropSaved, loadSaved, ResultKeeper, savedFilesFor, sourceHash, type Saved } from './unwritten.js';

type Awaitable<T> = T | Promise<T>;

/** What an op may give for one item: a result, several (an array), or nothing. */
export type OpResult<R> = StoredResult<R>;

/** An op: items in, one result per item out (in order). */
export type Operation<I, R, K> = (items: I[], kwargs: K) => Awaitable<ReadonlyArray<OpResult<R>> | null | undefined | void>;

/** The inputs a wrapper takes: a ConfigSet, or anything a ConfigSet is made from. */
export type Inputs<I> = ConfigSet<I> | ConfigSetSource<I>;

export interface AutoparaWrapper<I, R, K> {
  /** With waitForResults: false the jobs are submitted and nothing is returned. */
  (inputs: Inputs<I>, outputs: OutputSpec<R> | null | undefined, kwargs: K | undefined, autopara: AutoparaOptions & { waitForResults: false }): Promise<undefined>;
  (inputs: Inputs<I>, outputs?: OutputSpec<R> | null, kwargs?: K, autopara?: AutoparaOptions): Promise<ConfigSet<R>>;
  /** The op itself (what jobs and workers call). */
  readonly op: Operation<I, R, K>;
  /** The operation's name: job names and the `<file>::<name>` frame in WFL_EXPYRE_INFO keys. */
  readonly opName: string;
  /** That frame's label, e.g. `/home/me/proj/ops.js::calculate`. */
  readonly frameLabel: string;
}

const say = (line: string) => process.stderr.write(`${line}\n`);

function filePath(file: string): string | undefined {
  if (file.startsWith('file:')) return fileURLToPath(file);
  return path.isAbsolute(file) ? file : undefined;
}

/**
 * Wrap `op` so that `wrapper(inputs, outputs, kwargs?, autopara?)` runs it over every input, in chunks
 * of `numInputsPerSubprocess`, locally or as jobs, and returns the outputs as a ConfigSet.
 * `defaults` are the autopara options for every call (a call's own options win), plus `name`.
 */
export function autoparallelize<I = unknown, R = unknown, K extends object = Record<string, unknown>>(
  op: Operation<I, R, K>, defaults: AutoparaDefaults = {},
): AutoparaWrapper<I, R, K> {
  if (typeof op !== 'function') throw new XprError(`autoparallelize: expected a function, got ${typeof op}`);
  checkOptions(defaults, 'autoparallelize(op, defaults)', true);
  const name = defaults.name ?? op.name;
  if (!name) {
    throw new XprError('autoparallelize: the op has no name', { hint: "Pass { name: 'myOp' } as the second argument." });
  }
  const { name: _n, ...wrapperDefaults } = defaults;
  const definedIn = callerFrame(autoparallelize);
  const self = wrapperFrame(definedIn, name);
  const definingModule = definedIn ? filePath(definedIn.file) : undefined;

  let located: Promise<FunctionRef | undefined> | undefined;
  /** Where the wrapper is exported, so other processes can import it (cached). */
  const locateWrapper = (): Promise<FunctionRef | undefined> => {
    located ??= definingModule
      ? locateFunction(wrapper as never, { module: definingModule }).catch(() => undefined)
      : Promise.resolve(undefined);
    return located;
  };

  const wrapper = async function autoparallelized(
    inputs: Inputs<I>, outputs?: OutputSpec<R> | null, kwargs?: K, autopara?: AutoparaOptions,
  ): Promise<ConfigSet<R> | undefined> {
    // First, before any await: the caller's frames are only on the stack now.
    const frames = [...userFrames(autoparallelized), self];
    const site = callSite(autoparallelized);
    try {
      return await call(frames, inputs, outputs, kwargs, autopara);
    } catch (err) {
      throw forUser(err, site);
    }
  };

  const call = async (
    frames: StackFrame[], inputs: Inputs<I>, outputs?: OutputSpec<R> | null, kwargs?: K, autopara?: AutoparaOptions,
  ): Promise<ConfigSet<R> | undefined> => {
    checkOptions(autopara, `${name}(inputs, outputs, kwargs, autopara)`);
    const opts = resolveOptions(autopara, wrapperDefaults);
    const inputSet = inputs instanceof ConfigSet ? inputs : new ConfigSet<I>(inputs as ConfigSetSource<I>);
    if (outputs !== undefined && outputs !== null && !(outputs instanceof OutputSpec)) {
      throw new XprError(`${name}: outputs must be an OutputSpec (or null to keep results in memory)`);
    }
    const out = (outputs ?? new OutputSpec<R>()).bind(inputSet as ConfigSet<unknown>);
    const stale = out.removeStaleTemps();
    if (stale.length > 0) say(`xpr ${name}: removed ${stale.length} temporary file(s) left by killed runs: ${stale.join(', ')}`);
    if (out.isDone()) {
      say(`xpr ${name}: reusing the finished outputs ${out.outputFiles.join(', ')} (pass { overwrite: true } to the OutputSpec to redo them)`);
      return out.toConfigSet();
    }
    // Before any work: an output that cannot be written would only fail once everything is computed.
    out.checkWritable();
    let remote = chooseRemote(opts, frames);
    const items: Located<unknown>[] = [];
    for await (const x of inputSet) items.push(x as Located<unknown>);
    const opKwargs = (kwargs ?? {}) as Record<string, unknown>;
    const key = () => callKey(op as Op, items, opKwargs, locateWrapper);
    // Results in memory cannot have failed to be written, and must not take a file run's saved ones.
    const saved = out.mode === 'memory' ? undefined : await findSaved(name, items.length, key);
    if (saved && remote) {
      // Jobs are per chunk: only a complete set spares them all.
      if (saved.results.size === items.length) remote = undefined;
      else say(`xpr ${name}: ${saved.results.size} results saved in ${saved.files.join(', ')} are not used by a run as jobs (not all items have one)`);
    }
    try {
      if (remote) {
        const ref = await locateWrapper();
        if (!ref) {
          throw new XprError(`${name} cannot run as jobs: the wrapper is not exported by a module (found in ${definingModule ?? 'no file'})`, {
            hint: 'Define it as `export const name = autoparallelize(op, ...)` in a module that your script imports (not in the script itself).',
          });
        }
        const initializer = opts.initializer && {
          export: (await locateFunction(opts.initializer.fn, { module: ref.modulePath }).catch(() => {
            throw new XprError(`${name}: the initializer must be exported by ${ref.modulePath} to run in jobs`, {
              hint: 'Export it from that module (or re-export it there).',
            });
          })).exportName,
          args: opts.initializer.args,
        };
        return (await runRemote({
          name, wrapper: wrapper as never, module: ref.modulePath, exportName: ref.exportName,
          ...(initializer ? { initializer } : {}),
          items, kwargs: opKwargs, outputs: out as OutputSpec<unknown>, info: remote,
          numInputsPerSubprocess: opts.numInputsPerSubprocess, numSubprocesses: opts.numSubprocesses,
          skipFailed: opts.skipFailed, waitForResults: opts.waitForResults,
        })) as ConfigSet<R> | undefined;
      }
      await runLocal(name, op as Op, opts, items, opKwargs, out as OutputSpec<unknown>, locateWrapper, { saved, key });
    } catch (err) {
      out.abort();
      if (remote && err instanceof OutputWriteError) throw keptInJobs(err, items.length, remote, opts);
      throw err;
    }
    return out.toConfigSet();
  };

  Object.defineProperties(wrapper, {
    op: { value: op, enumerable: true },
    opName: { value: name, enumerable: true },
    frameLabel: { value: self.labels[0], enumerable: true },
  });
  return wrapper as unknown as AutoparaWrapper<I, R, K>;
}

/** The RemoteInfo of a call: its own option, else WFL_EXPYRE_INFO matched against its frames. */
function chooseRemote(opts: ResolvedOptions, frames: readonly StackFrame[]): RemoteInfo | undefined {
  if (opts.remoteInfo) return opts.remoteInfo;
  const expyre = loadExpyreInfo();
  if (!expyre) return undefined;
  const choice = chooseRemoteInfo(expyre, frames, opts.remoteLabel);
  say(describeChoice(expyre, choice, frames, opts.remoteLabel));
  return choice?.info;
}

/** A remote run's write failed: the jobs still hold the results, since they are marked processed only after. */
function keptInJobs(err: OutputWriteError, items: number, info: RemoteInfo, opts: ResolvedOptions): OutputWriteError {
  const jobs = Math.ceil(items / itemsPerJob(info, opts.numInputsPerSubprocess));
  return err.withHint(`The results stay in the ${jobs} job${jobs === 1 ? '' : 's'}, which are not marked processed: ` +
    'run the same call again once the output can be written, and it collects them without running anything again.');
}

/**
 * The restart hash of the whole call, as a job's would be: the op's code (its module's bundle, or
 * its source when it has no module to bundle), all the items and the kwargs.
 */
async function callKey(
  op: Op, items: readonly Located<unknown>[], kwargs: Record<string, unknown>, locateWrapper: () => Promise<FunctionRef | undefined>,
): Promise<string> {
  const ref = await locateWrapper();
  const code = ref
    ? await bundleModule(ref.modulePath).then((b) => ({ codeHash: b.hash, exportName: ref.exportName }), () => undefined)
    : undefined;
  const { codeHash, exportName } = code ?? { codeHash: sourceHash(op), exportName: `source:${op.name}` };
  return callHash({ codeHash, exportName, call: encodeCall([items.map((x) => x.item)], kwargs) }).hash;
}

/** Results an earlier run of this very call saved because it could not write them. */
async function findSaved(name: string, items: number, key: () => Promise<string>): Promise<Saved | undefined> {
  const files = savedFilesFor(name);
  if (files.length === 0) return undefined;
  let saved: Saved | undefined;
  try {
    saved = loadSaved(files, await key(), items);
  } catch {
    // Items or kwargs that cannot be hashed cannot have been saved either.
    return undefined;
  }
  if (saved) say(`xpr ${name}: using the ${saved.results.size} results saved in ${saved.files.join(', ')} by an earlier run that could not write its output`);
  return saved;
}

/**
 * Runs the items in this process or a pool, storing results as they come and closing the outputs.
 * A failed write does not stop the work: the results are kept (see ResultKeeper) and the write error
 * is thrown at the end, saying where they are. Items with saved results are not run again.
 */
async function runLocal(
  name: string, op: Op, opts: ResolvedOptions, items: readonly Located<unknown>[], kwargs: Record<string, unknown>,
  out: OutputSpec<unknown>, locateWrapper: () => Promise<FunctionRef | undefined>,
  restart: { saved: Saved | undefined; key: () => Promise<string> },
): Promise<void> {
  const previous = restart.saved?.files ?? [];
  const keeper = new ResultKeeper({ name, items: items.length, outputs: out.outputFiles.map((f) => path.resolve(f)), key: restart.key, previous });
  const put = (index: number, result: unknown) => {
    keeper.record(index, result);
    if (!keeper.failed) writeOrKeep(keeper, () => storeResult(out, result, items[index]!.loc, opts.skipFailed, name));
  };
  const todo: number[] = [];
  items.forEach((_x, i) => {
    if (restart.saved?.results.has(i)) put(i, restart.saved.results.get(i));
    else todo.push(i);
  });
  try {
    await runChunks(name, op, opts, todo.map((i) => ({ index: i, item: items[i]!.item })), kwargs, put, locateWrapper);
    if (!keeper.failed) writeOrKeep(keeper, () => out.close());
  } catch (err) {
    if (!keeper.failed) throw err;
    const kept = await keeper.finish();
    // The keeper itself stopped the work: nothing can be kept, and that is the error.
    if (err instanceof OutputWriteError) throw kept;
    say(`xpr ${name}: ${kept.message}\n  ${kept.hint ?? ''}`);
    throw err;
  }
  if (keeper.failed) throw await keeper.finish();
  dropSaved(previous);
}

/** Writes, or on a failed write, hands the error to the keeper (other errors go on up). */
function writeOrKeep(keeper: ResultKeeper, write: () => void): void {
  try {
    write();
  } catch (err) {
    if (!(err instanceof OutputWriteError)) throw err;
    keeper.writeFailed(err);
  }
}

/** Runs the op over `work` in chunks, in this process or a pool, giving each result as it comes. */
async function runChunks(
  name: string, op: Op, opts: ResolvedOptions, work: readonly { index: number; item: unknown }[], kwargs: Record<string, unknown>,
  put: (index: number, result: unknown) => void, locateWrapper: () => Promise<FunctionRef | undefined>,
): Promise<void> {
  const size = localPoolSize(opts);
  const chunks = chunk(work, opts.numInputsPerSubprocess);
  const store = (i: number, results: unknown[]) => {
    chunks[i]!.forEach(({ index }, k) => put(index, results[k]));
  };
  if (size === 0 || chunks.length === 0) {
    // In this process the initializer runs once per call, as it would once in each worker.
    if (opts.initializer && chunks.length > 0) await opts.initializer.fn(...(opts.initializer.args as never[]));
    for (let i = 0; i < chunks.length; i++) store(i, await callOp(op, chunks[i]!.map((x) => x.item), kwargs));
    return;
  }
  const target = await workerTarget(name, op, locateWrapper);
  let initializer: InitializerRef | undefined;
  if (opts.initializer) {
    const ref = await locateFunction(opts.initializer.fn);
    initializer = { module: ref.modulePath, export: ref.exportName, args: opts.initializer.args };
  }
  await runChunksInPool(
    { size, target, kwargs, ...(initializer ? { initializer } : {}), workerScript: distFile('runner/main.js') },
    chunks.map((c) => c.map((x) => x.item)), store,
  );
}

/** How a worker process imports the op: the exported wrapper's `.op`, else the op's own export. */
async function workerTarget(name: string, op: Op, locateWrapper: () => Promise<FunctionRef | undefined>): Promise<OpTarget> {
  const ref = await locateWrapper();
  if (ref) return { module: ref.modulePath, export: ref.exportName, member: 'op' };
  try {
    const own = await locateFunction(op as never);
    return { module: own.modulePath, export: own.exportName };
  } catch (err) {
    throw new XprError(`${name} cannot run in worker processes: neither the wrapper nor the op is exported by a module that workers can import`, {
      hint: 'Define `export const name = autoparallelize(op, ...)` in a module your script imports, or run in-process with WFL_NUM_PYTHON_SUBPROCESSES=0.',
      cause: err,
    });
  }
}
