// RemoteInfo (how an autoparallelized call runs as queued jobs) and WFL_EXPYRE_INFO, the
// environment variable that sends calls to a cluster with no change to the script.
//
// WFL_EXPYRE_INFO holds JSON or YAML text, or the path of a file holding it. With a top-level
// `sys_name` it is one RemoteInfo for every wrapped call. Otherwise it maps keys to RemoteInfos; the
// keys are tried in file order against the call stack (stack.ts) and the first match wins. Every entry
// is checked when the variable is read, so a typo in the last entry is reported at the first call.
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { asEntry } from '../boundary.js';
import { ConfigError, XprError, type ConfigIssue } from '../errors.js';
import { Resources, type ResourcesSpec } from '../resources/resources.js';
import { parseTime } from '../resources/units.js';
import { describeFrames, keyMatches, type StackFrame } from './stack.js';

export const EXPYRE_INFO_VAR = 'WFL_EXPYRE_INFO';

/** The fields of a RemoteInfo as written in remoteinfo.json (wfl's names). */
export interface RemoteInfoFields {
  /** System name in config.json, or the built-in 'local'. */
  sys_name: string;
  /** Job names are `<job_name>_chunk_<i>`; default: the operation's name. */
  job_name?: string;
  resources: ResourcesSpec | Resources;
  /** Items per job; negative: -n × numInputsPerSubprocess. Default -100. */
  num_inputs_per_queued_job?: number;
  pre_cmds?: readonly string[];
  post_cmds?: readonly string[];
  /** `["NAME=value", ...]` as in wfl, or `{ NAME: value }`. */
  env_vars?: readonly string[] | Readonly<Record<string, string>>;
  input_files?: readonly string[];
  output_files?: readonly string[];
  header_extra?: readonly string[];
  exact_fit?: boolean;
  partial_node?: boolean;
  /** Longest wait for the jobs, in seconds or a time string; null waits for ever. Default 3600. */
  timeout?: number | string | null;
  /** Longest pause between status checks (seconds or a time string). Default 30; 2 on the local system. */
  check_interval?: number | string;
  /** Write a failed job's inputs, flagged EXPYRE_REMOTE_JOB_FAILED, instead of raising. */
  ignore_failed_jobs?: boolean;
  /** Resubmit jobs that died (e.g. out of wall time) after wiping their dirs. */
  resubmit_killed_jobs?: boolean;
  /** Keys of the op's kwargs that do not change its results (left out of the restart hash). */
  hash_ignore?: readonly string[];
}

export const REMOTE_INFO_KEYS = [
  'sys_name', 'job_name', 'resources', 'num_inputs_per_queued_job', 'pre_cmds', 'post_cmds', 'env_vars',
  'input_files', 'output_files', 'header_extra', 'exact_fit', 'partial_node', 'timeout', 'check_interval',
  'ignore_failed_jobs', 'resubmit_killed_jobs', 'hash_ignore',
] as const;

/** Names from older wfl versions, answered with the current one. */
const RENAMED: Record<string, string> = {
  skip_failures: 'ignore_failed_jobs', job_chunksize: 'num_inputs_per_queued_job',
};

export interface RemoteInfoSource {
  /** File the fields came from. */
  file?: string;
  /** Key path of the fields in that file ('' at top level). */
  where?: string;
}

const DEFAULT_TIMEOUT = 3600;

/** How a call runs remotely. Immutable: reusing one for many calls never changes it. */
export class RemoteInfo {
  readonly sys_name: string;
  readonly job_name: string | undefined;
  readonly resources: Resources;
  readonly num_inputs_per_queued_job: number;
  readonly pre_cmds: readonly string[];
  readonly post_cmds: readonly string[];
  readonly env_vars: Readonly<Record<string, string>>;
  readonly input_files: readonly string[];
  readonly output_files: readonly string[];
  readonly header_extra: readonly string[];
  readonly exact_fit: boolean;
  /** Undefined: the system's default (whole nodes on clusters, part of the machine on `local`). */
  readonly partial_node: boolean | undefined;
  /** Seconds; Infinity waits for ever. */
  readonly timeout: number;
  /** Seconds; undefined: 30, or 2 for a system whose jobs run on this machine. */
  readonly check_interval: number | undefined;
  readonly ignore_failed_jobs: boolean;
  readonly resubmit_killed_jobs: boolean;
  readonly hash_ignore: readonly string[];

  constructor(fields: RemoteInfoFields, source: RemoteInfoSource = {}) {
    // A mistake in a script's `new RemoteInfo({...})` is reported at that line (see boundary.ts).
    const v = asEntry(new.target, () => validateFields(fields, source));
    this.sys_name = v.sys_name;
    this.job_name = v.job_name;
    this.resources = v.resources;
    this.num_inputs_per_queued_job = v.num_inputs_per_queued_job;
    this.pre_cmds = Object.freeze([...v.pre_cmds]);
    this.post_cmds = Object.freeze([...v.post_cmds]);
    this.env_vars = Object.freeze({ ...v.env_vars });
    this.input_files = Object.freeze([...v.input_files]);
    this.output_files = Object.freeze([...v.output_files]);
    this.header_extra = Object.freeze([...v.header_extra]);
    this.exact_fit = v.exact_fit;
    this.partial_node = v.partial_node;
    this.timeout = v.timeout;
    this.check_interval = v.check_interval;
    this.ignore_failed_jobs = v.ignore_failed_jobs;
    this.resubmit_killed_jobs = v.resubmit_killed_jobs;
    this.hash_ignore = Object.freeze([...v.hash_ignore]);
    Object.freeze(this);
  }

  /** A RemoteInfo as is, or one made from a plain object of its fields. */
  static from(x: RemoteInfo | RemoteInfoFields, source: RemoteInfoSource = {}): RemoteInfo {
    return x instanceof RemoteInfo ? x : new RemoteInfo(x, source);
  }

  toJSON(): Record<string, unknown> {
    return {
      sys_name: this.sys_name, ...(this.job_name !== undefined ? { job_name: this.job_name } : {}),
      resources: this.resources.toSpec(), num_inputs_per_queued_job: this.num_inputs_per_queued_job,
      pre_cmds: this.pre_cmds, post_cmds: this.post_cmds, env_vars: this.env_vars, input_files: this.input_files,
      output_files: this.output_files, header_extra: this.header_extra, exact_fit: this.exact_fit,
      ...(this.partial_node !== undefined ? { partial_node: this.partial_node } : {}),
      timeout: Number.isFinite(this.timeout) ? this.timeout : null,
      ...(this.check_interval !== undefined ? { check_interval: this.check_interval } : {}),
      ignore_failed_jobs: this.ignore_failed_jobs, resubmit_killed_jobs: this.resubmit_killed_jobs,
      hash_ignore: this.hash_ignore,
    };
  }
}

// ---- validation ----

type Validated = Omit<RemoteInfo, 'toJSON'>;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Resources);
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function validateFields(raw: unknown, source: RemoteInfoSource): Validated {
  const issues: ConfigIssue[] = [];
  const at = (key: string) => (source.where ? `${source.where}.${key}` : key);
  const issue = (key: string, message: string) => issues.push({ ...(source.file ? { file: source.file } : {}), path: at(key), message });
  if (!isPlainObject(raw)) {
    throw new ConfigError([{ ...(source.file ? { file: source.file } : {}), path: source.where ?? '', message: `expected an object of RemoteInfo fields, got ${show(raw)}` }], { what: 'Invalid RemoteInfo' });
  }
  for (const key of Object.keys(raw)) {
    if ((REMOTE_INFO_KEYS as readonly string[]).includes(key)) continue;
    const renamed = RENAMED[key];
    issue(key, renamed ? `unknown key "${key}": it is called "${renamed}" now`
      : `unknown key "${key}" (valid: ${REMOTE_INFO_KEYS.join(', ')})`);
  }
  const str = (key: string, required: boolean): string | undefined => {
    const v = raw[key];
    if (v === undefined) { if (required) issue(key, 'required key missing'); return undefined; }
    if (typeof v !== 'string' || v === '') { issue(key, `expected a non-empty string, got ${show(v)}`); return undefined; }
    return v;
  };
  const list = (key: string): string[] => {
    const v = raw[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) { issue(key, `expected a list of strings, got ${show(v)}`); return []; }
    return v as string[];
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = raw[key];
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') { issue(key, `expected true or false, got ${show(v)}`); return dflt; }
    return v;
  };
  const seconds = <D extends number | undefined>(key: string, dflt: D, nullable: boolean): number | D => {
    const v = raw[key];
    if (v === undefined) return dflt;
    if (v === null && nullable) return Infinity;
    if (typeof v !== 'number' && typeof v !== 'string') { issue(key, `expected seconds or a time like "30m", got ${show(v)}`); return dflt; }
    try {
      return parseTime(v);
    } catch (e) {
      issue(key, (e as Error).message);
      return dflt;
    }
  };

  const sys_name = str('sys_name', true) ?? '';
  const job_name = str('job_name', false);
  if (job_name !== undefined && /[/\0\n\r]/.test(job_name)) issue('job_name', `${show(job_name)} may not hold "/", NUL or line breaks`);
  let resources: Resources | undefined;
  if (raw.resources === undefined) issue('resources', 'required key missing (e.g. { "num_cores": 1, "max_time": "1h" })');
  else {
    const checked = Resources.check(raw.resources, { where: at('resources'), ...(source.file ? { file: source.file } : {}) });
    if (checked.resources) resources = checked.resources;
    else issues.push(...checked.issues);
  }
  let num = -100;
  if (raw.num_inputs_per_queued_job !== undefined) {
    const v = raw.num_inputs_per_queued_job;
    if (typeof v !== 'number' || !Number.isInteger(v) || v === 0) issue('num_inputs_per_queued_job', `expected a non-zero whole number, got ${show(v)}`);
    else num = v;
  }
  let env_vars: Record<string, string> = {};
  const ev = raw.env_vars;
  if (Array.isArray(ev)) {
    for (const [i, e] of ev.entries()) {
      const m = typeof e === 'string' ? /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(e) : null;
      if (m) env_vars[m[1]!] = m[2]!;
      else issue(`env_vars[${i}]`, `expected "NAME=value", got ${show(e)}`);
    }
  } else if (isPlainObject(ev)) {
    for (const [k, val] of Object.entries(ev)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) issue(`env_vars.${k}`, 'not a valid environment variable name');
      else if (typeof val !== 'string' && typeof val !== 'number') issue(`env_vars.${k}`, `expected a string, got ${show(val)}`);
      else env_vars[k] = String(val);
    }
  } else if (ev !== undefined && ev !== null) {
    issue('env_vars', `expected ["NAME=value", ...] or { "NAME": "value" }, got ${show(ev)}`);
    env_vars = {};
  }
  const partial = raw.partial_node;
  if (partial !== undefined && typeof partial !== 'boolean') issue('partial_node', `expected true or false, got ${show(partial)}`);
  const check_interval = seconds('check_interval', undefined, false);
  const out: Validated = {
    sys_name, job_name, resources: resources!, num_inputs_per_queued_job: num,
    pre_cmds: list('pre_cmds'), post_cmds: list('post_cmds'), env_vars,
    input_files: list('input_files'), output_files: list('output_files'), header_extra: list('header_extra'),
    exact_fit: bool('exact_fit', true), partial_node: typeof partial === 'boolean' ? partial : undefined,
    timeout: seconds('timeout', DEFAULT_TIMEOUT, true), check_interval,
    ignore_failed_jobs: bool('ignore_failed_jobs', false), resubmit_killed_jobs: bool('resubmit_killed_jobs', false),
    hash_ignore: list('hash_ignore'),
  };
  if (issues.length > 0) {
    throw new ConfigError(issues, { what: 'Invalid RemoteInfo', hint: `Fix each field named; RemoteInfo fields: ${REMOTE_INFO_KEYS.join(', ')}.` });
  }
  return out;
}

// ---- WFL_EXPYRE_INFO ----

/** A parsed WFL_EXPYRE_INFO, or another variable of the same form (`variable` names it in messages). */
export type ExpyreInfo =
  | { kind: 'all'; info: RemoteInfo; source: string; variable?: string }
  | { kind: 'keyed'; entries: ReadonlyArray<readonly [string, RemoteInfo]>; source: string; variable?: string };

/** Map → plain object, recursively (YAML maps are read as Maps to keep the file's key order). */
function plain(v: unknown): unknown {
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

function parseText(text: string, what: string, variable: string): unknown {
  try {
    return parseYaml(text, { mapAsMap: true });
  } catch (e) {
    throw new XprError(`${what} is neither valid JSON/YAML nor the name of a file: ${(e as Error).message}`, {
      hint: `Set ${variable} to a remoteinfo.json file name, or to its JSON/YAML text.`,
    });
  }
}

/** The text of the file WFL_EXPYRE_INFO names; a missing file, a dir or no permission names the variable. */
function readInfoFile(value: string, file: string, cwd: string, variable: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'which does not exist'
      : code === 'EISDIR' ? 'which is a directory, not a file'
      : code === 'EACCES' ? 'which this user may not read'
      : `which cannot be read (${code ?? (e as Error).message})`;
    throw new XprError(`${variable}=${show(value)} names the file ${file}, ${why}`, {
      hint: `Set ${variable} to the path of a remoteinfo.json (or .yaml) file, relative to the working directory ` +
        `${cwd}, or to the JSON/YAML text itself.`,
    });
  }
}

/** Parse the value of WFL_EXPYRE_INFO (or of `variable`, which has the same form). */
export function parseExpyreInfo(value: string, cwd = process.cwd(), variable = EXPYRE_INFO_VAR): ExpyreInfo {
  let data: unknown;
  let file: string | undefined;
  let parsed: unknown;
  try {
    parsed = parseYaml(value, { mapAsMap: true });
  } catch {
    // Text that opens like JSON is broken JSON, not a file name.
    if (/^\s*[[{]/.test(value)) parseText(value, `${variable}=${show(value)}`, variable);
    parsed = value; // not JSON/YAML text: a file name
  }
  if (typeof parsed === 'string') {
    file = path.resolve(cwd, parsed);
    data = parseText(readInfoFile(value, file, cwd, variable), file, variable);
  } else {
    data = parsed;
  }
  const source = file ?? 'text';
  if (!(data instanceof Map)) {
    throw new XprError(`${variable} (${source}): expected an object of RemoteInfo fields, or of keys mapping to them; got ${show(plain(data))}`);
  }
  const src = file ? { file } : {};
  const named = variable === EXPYRE_INFO_VAR ? {} : { variable };
  if (data.has('sys_name')) return { kind: 'all', info: new RemoteInfo(plain(data) as RemoteInfoFields, src), source, ...named };
  const entries: [string, RemoteInfo][] = [];
  const issues: ConfigIssue[] = [];
  for (const [k, v] of data) {
    const key = String(k);
    try {
      entries.push([key, new RemoteInfo(plain(v) as RemoteInfoFields, { ...src, where: key })]);
    } catch (e) {
      if (e instanceof ConfigError) issues.push(...e.issues);
      else throw e;
    }
  }
  if (issues.length > 0) {
    throw new ConfigError(issues, { what: `Invalid ${variable}`, hint: `Each key maps to RemoteInfo fields: ${REMOTE_INFO_KEYS.join(', ')}.` });
  }
  return { kind: 'keyed', entries, source, ...named };
}

const cache = new Map<string, { mtimeMs: number; info: ExpyreInfo }>();

function fileMtime(value: string, cwd: string): number {
  try {
    return fs.statSync(path.resolve(cwd, value)).mtimeMs;
  } catch {
    return -1;
  }
}

/**
 * WFL_EXPYRE_INFO of `env` (or `variable`, e.g. a remoteCall's own), parsed; undefined when unset or
 * empty. Cached until the variable or its file changes.
 */
export function loadExpyreInfo(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd(), variable = EXPYRE_INFO_VAR): ExpyreInfo | undefined {
  const value = env[variable];
  if (value === undefined || value.trim() === '') return undefined;
  const mtimeMs = fileMtime(value, cwd);
  const key = `${variable}\0${cwd}\0${value}`;
  const hit = cache.get(key);
  if (hit && hit.mtimeMs === mtimeMs) return hit.info;
  const info = parseExpyreInfo(value, cwd, variable);
  cache.set(key, { mtimeMs, info });
  return info;
}

export interface RemoteChoice {
  info: RemoteInfo;
  /** The key that matched, or undefined for a top-level `sys_name`. */
  key: string | undefined;
}

/**
 * The RemoteInfo for a call from WFL_EXPYRE_INFO: all calls with a top-level sys_name; else the first
 * key (in file order) that equals `remoteLabel` when one is given, or that matches the frames.
 */
export function chooseRemoteInfo(expyre: ExpyreInfo, frames: readonly StackFrame[], remoteLabel: string | undefined): RemoteChoice | undefined {
  if (expyre.kind === 'all') return { info: expyre.info, key: undefined };
  for (const [key, info] of expyre.entries) {
    if (remoteLabel !== undefined ? key === remoteLabel : keyMatches(key, frames)) return { info, key };
  }
  return undefined;
}

/** The log line for a choice (or for no match). */
export function describeChoice(expyre: ExpyreInfo, choice: RemoteChoice | undefined, frames: readonly StackFrame[], remoteLabel: string | undefined): string {
  const call = remoteLabel !== undefined ? `remote_label "${remoteLabel}"` : describeFrames(frames);
  const variable = expyre.variable ?? EXPYRE_INFO_VAR;
  if (!choice) return `xpr: ${variable} (${expyre.source}): no key matched ${call}; running locally`;
  const what = choice.key === undefined ? 'top-level sys_name' : `key "${choice.key}"`;
  return `xpr: ${variable} (${expyre.source}): ${what} matched ${call}; running as ${expyre.variable ? 'a job' : 'jobs'} on "${choice.info.sys_name}"`;
}
