// `xpr create_job`: make a job from the command line. ExPyRe's command records a job for a stage dir
// holding a pickled call; xpr has two forms:
//
//   xpr create_job --module ops.js --export double --args '[2]' [--name x] [--resources '{…}' -S sys]
//       stages the call `double(2)` (the module's named export, JSON arguments) as a job, exactly as
//       Job.create does (an identical earlier call is re-attached); with --resources it is submitted.
//   xpr create_job --from-dir _expyre/run_<id> -S sys
//       records an existing stage dir (e.g. after the database was lost), as ExPyRe's create_job.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { getSystem } from '../../config/load.js';
import { XprError } from '../../errors.js';
import type { ResourcesSpec } from '../../resources/resources.js';
import { Job } from '../../job/job.js';
import { planStart } from '../../job/start-plan.js';
import { validateJobName } from '../../job/identity.js';
import { CALL_FILE } from '../../runner/protocol.js';
import type { JobStatus } from '../../store/status.js';
import { UsageError } from '../exit.js';
import { openSystem, withProject, type CommandContext } from '../common.js';
import type { FormatOptions } from '../format.js';

export interface CreateJobOptions extends CommandContext {
  /** Module file exporting the function (relative to cwd). */
  module?: string;
  /** Name of the export; default `default`. */
  exportName?: string;
  /** JSON array of positional arguments. */
  args?: string;
  /** JSON object passed as the last argument. */
  kwargs?: string;
  /** Job name; default the export name (or, with fromDir, taken from the id). */
  name?: string;
  inputFiles?: readonly string[];
  outputFiles?: readonly string[];
  /** System to submit to (with `resources`), or to record (with `fromDir`). */
  system?: string;
  /** JSON resources (`{"num_cores":1,"max_time":"1h"}`); given: the job is submitted. */
  resources?: string;
  /** Record this existing stage dir instead (ExPyRe's `--from_dir`). */
  fromDir?: string;
  /** Id for `fromDir`; default the dir name without `run_`. */
  id?: string;
}

export interface CreateJobResult {
  id: string;
  name: string;
  status: JobStatus;
  stageDir: string;
  system: string | null;
  /** An identical earlier call was found and re-used. */
  reattached: boolean;
  submitted: boolean;
}

export async function createJob(opts: CreateJobOptions): Promise<CreateJobResult> {
  if (opts.fromDir !== undefined) {
    if (opts.module !== undefined) throw new UsageError('Give either --from-dir or --module, not both');
    return fromDir(opts);
  }
  if (opts.module === undefined) throw new UsageError('xpr create_job needs --module (with --export) or --from-dir');
  const cwd = opts.cwd ?? process.cwd();
  const modulePath = path.resolve(cwd, opts.module);
  const exportName = opts.exportName ?? 'default';
  const fn = await loadExport(modulePath, exportName);
  const args = parseJson(opts.args, '--args', 'a JSON array, e.g. \'[1, "a"]\'', Array.isArray) as unknown[] | undefined;
  const kwargs = parseJson(opts.kwargs, '--kwargs', 'a JSON object, e.g. \'{"factor": 2}\'', isObject) as Record<string, unknown> | undefined;
  const resources = parseJson(opts.resources, '--resources', 'a JSON object, e.g. \'{"num_cores": 1, "max_time": "1h"}\'', isObject);
  const name = opts.name ?? (exportName === 'default' ? path.basename(modulePath).replace(/\.[^.]*$/, '') : exportName);
  return withProject(opts, async (project) => {
    const start = resources ? { system: opts.system ?? 'local', resources: resources as ResourcesSpec } : undefined;
    if (start) {
      // Whatever is wrong with the system, the resources or the rundir is said before a job is
      // staged or recorded; openSystem makes a system that cannot be reached exit 3.
      openSystem(project, start.system);
      await planStart(project, start).system.ensureRundir();
    }
    const job = await Job.create({
      name, fn, module: modulePath, exportName, project,
      ...(args ? { args } : {}),
      ...(kwargs ? { kwargs } : {}),
      ...(opts.inputFiles?.length ? { inputFiles: opts.inputFiles.map((f) => path.resolve(cwd, f)) } : {}),
      ...(opts.outputFiles?.length ? { outputFiles: [...opts.outputFiles] } : {}),
    });
    let submitted = false;
    if (start) {
      // Checked above; a submission refused or cut short from here on leaves the job `created`, for the next start.
      await job.start(start);
      submitted = job.status !== 'created';
    }
    const r = job.info;
    return { id: r.id, name: r.name, status: r.status, stageDir: r.stageDir, system: r.system, reattached: job.reattached, submitted };
  });
}

async function fromDir(opts: CreateJobOptions): Promise<CreateJobResult> {
  const dir = path.resolve(opts.cwd ?? process.cwd(), opts.fromDir!);
  if (!fs.existsSync(path.join(dir, CALL_FILE))) {
    throw new XprError(`${dir} is not a job stage dir (it has no ${CALL_FILE})`, {
      hint: 'Point --from-dir at a run_<id> dir that xpr staged.',
    });
  }
  if (opts.system === undefined) throw new UsageError('xpr create_job --from-dir needs -S/--system (as ExPyRe\'s create_job)');
  const id = opts.id ?? path.basename(dir).replace(/^run_/, '');
  const parsed = parseJobId(id);
  const name = opts.name ?? parsed?.name ?? id;
  validateJobName(name);
  return withProject(opts, (project) => {
    // Only a known system: a typo would leave a job no command can reach.
    getSystem(project.config, opts.system!, project.paths);
    const store = project.store;
    if (store.get(id)) throw new XprError(`A job with id ${id} is already in ${store.path}`);
    store.insert({ id, name, hash: parsed?.hash ?? id, stageDir: dir, info: { createdBy: 'xpr create_job --from-dir' } });
    store.update(id, { system: opts.system! });
    return { id, name, status: 'created' as const, stageDir: dir, system: opts.system!, reattached: false, submitted: false };
  });
}

/** `<name>_<43-char base64url hash>_<8 random>` → name and hash (undefined for an id of another shape). */
export function parseJobId(id: string): { name: string; hash: string } | undefined {
  const m = /^(.+)_([A-Za-z0-9_-]{43})_([A-Za-z0-9]{8})$/.exec(id);
  if (!m || id.length < 54) return undefined;
  return { name: id.slice(0, -53), hash: id.slice(-52, -9) };
}

async function loadExport(modulePath: string, exportName: string): Promise<(...a: never[]) => unknown> {
  if (!fs.existsSync(modulePath)) throw new XprError(`Module ${modulePath} does not exist`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
  } catch (err) {
    throw new XprError(`Cannot import ${modulePath}: ${(err as Error).message}`, { cause: err });
  }
  const fn = mod[exportName];
  if (typeof fn !== 'function') {
    const names = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
    throw new XprError(`${modulePath} has no exported function "${exportName}" (its exported functions: ${names.join(', ') || 'none'})`);
  }
  return fn as (...a: never[]) => unknown;
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(text: string | undefined, option: string, expected: string, ok: (v: unknown) => boolean): unknown {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new XprError(`${option}: invalid JSON: ${(err as Error).message}`, { hint: `Expected ${expected}; quote it for the shell.` });
  }
  if (!ok(v)) throw new XprError(`${option}: expected ${expected}, got ${text}`);
  return v;
}

export function renderCreateJob(r: CreateJobResult, _fmt: FormatOptions): string {
  const how = r.reattached ? 'Re-attached to the identical job' : 'Created job';
  const state = r.submitted ? `submitted to ${r.system}` : r.status;
  return `${how} ${r.id} (${state})\n  stage dir: ${r.stageDir}`;
}
