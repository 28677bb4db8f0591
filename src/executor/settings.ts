// The executor's settings: flags first, then `XPR_EXECUTOR_*` variables, then BespokeFit's `BEFLOW_*`
// variables where one means the same thing, then defaults. Per-stage values (`--workers a=1,b=2`)
// merge stage by stage, so `--cores qc-compute=8` on top of `XPR_EXECUTOR_CORES=fragmenter=2` keeps
// both. Every parse error names the flag or variable it came from and shows a valid example.
import path from 'node:path';
import { XprError } from '../errors.js';
import { parseMemory } from '../resources/units.js';
import type { ExecutorSettings } from './types.js';

/** What a caller passes: flags as typed (strings) or the library's already-typed values. */
export interface SettingsInput {
  directory?: string;
  address?: string;
  port?: number | string;
  token?: string;
  redis?: string;
  workers?: string | Record<string, number>;
  cores?: string | Record<string, number | 'auto'>;
  maxMem?: string | Record<string, number | string>;
  keepTempFiles?: boolean;
}

export interface ResolvedSettings {
  settings: ExecutorSettings;
  /** Values read but not used (a BEFLOW_* memory per core for a stage whose cores are "auto"). */
  warnings: string[];
}

/** The key of a per-stage value given without a stage (`--cores 4`): the value of every stage. */
export const ALL_STAGES = '*';

export const DEFAULTS = {
  directory: 'xpr-executor',
  // Only this machine can reach the gateway unless asked otherwise: remote workers need --address.
  address: '127.0.0.1',
  port: 8000,
  workersPerStage: 1,
  coresPerWorker: 1,
} as const;

/** The `XPR_EXECUTOR_*` variables, one per setting (URL: where the CLI and remote workers connect). */
export const ENV = {
  directory: 'XPR_EXECUTOR_DIRECTORY',
  address: 'XPR_EXECUTOR_ADDRESS',
  port: 'XPR_EXECUTOR_PORT',
  token: 'XPR_EXECUTOR_TOKEN',
  redis: 'XPR_EXECUTOR_REDIS_URL',
  workers: 'XPR_EXECUTOR_WORKERS',
  cores: 'XPR_EXECUTOR_CORES',
  maxMem: 'XPR_EXECUTOR_MAX_MEM',
  keepTempFiles: 'XPR_EXECUTOR_KEEP_TEMP_FILES',
  url: 'XPR_EXECUTOR_URL',
} as const;

// ---------------------------------------------------------------- BespokeFit's variables

export interface BeflowSetting {
  beflow: string;
  /** The xpr variable it stands for; undefined when xpr has nothing with that meaning. */
  xpr: string | undefined;
  note: string;
}

/** BespokeFit's stage names, as the `BEFLOW_<STAGE>_WORKER_*` variables spell them. */
const BEFLOW_STAGES: Record<string, string> = { FRAGMENTER: 'fragmenter', QC_COMPUTE: 'qc-compute', OPTIMIZER: 'optimizer' };

/** Every `BEFLOW_*` setting of BespokeFit's executor and what it becomes here (the README's table). */
export const BEFLOW_SETTINGS: readonly BeflowSetting[] = [
  { beflow: 'BEFLOW_GATEWAY_ADDRESS', xpr: `${ENV.address}, ${ENV.url}`, note: 'host of the URL; with the port, the URL clients use' },
  { beflow: 'BEFLOW_GATEWAY_PORT', xpr: ENV.port, note: 'same meaning' },
  { beflow: 'BEFLOW_API_TOKEN', xpr: ENV.token, note: 'same meaning; xpr generates one when none is given' },
  { beflow: 'BEFLOW_REDIS_ADDRESS', xpr: ENV.redis, note: 'host of the Redis URL' },
  { beflow: 'BEFLOW_REDIS_PORT', xpr: ENV.redis, note: 'port of the Redis URL (BespokeFit\'s default 6363)' },
  { beflow: 'BEFLOW_REDIS_DB', xpr: ENV.redis, note: 'database number of the Redis URL' },
  { beflow: 'BEFLOW_REDIS_PASSWORD', xpr: ENV.redis, note: 'password of the Redis URL; xpr has no default password' },
  ...Object.entries(BEFLOW_STAGES).flatMap(([upper, stage]) => [
    { beflow: `BEFLOW_${upper}_WORKER_N_CORES`, xpr: ENV.cores, note: `${stage}=<n> ("auto" too)` },
    { beflow: `BEFLOW_${upper}_WORKER_MAX_MEM`, xpr: ENV.maxMem, note: `${stage}=<GB per core × cores>gb (needs a number of cores)` },
  ]),
  { beflow: 'BEFLOW_KEEP_TMP_FILES', xpr: ENV.keepTempFiles, note: 'same meaning' },
  { beflow: 'BEFLOW_OPTIMIZER_KEEP_FILES', xpr: ENV.keepTempFiles, note: 'BespokeFit\'s older name for BEFLOW_KEEP_TMP_FILES' },
  { beflow: 'BEFLOW_API_V1_STR', xpr: undefined, note: 'the API is always under /api/v1' },
  { beflow: 'BEFLOW_GATEWAY_LOG_LEVEL', xpr: undefined, note: 'no meaning here' },
  { beflow: 'BEFLOW_QC_COMPUTE_WORKER_N_TASKS', xpr: undefined, note: 'a worker runs one task at a time; use more workers' },
  { beflow: 'BEFLOW_COORDINATOR_MAX_UPDATE_INTERVAL', xpr: undefined, note: 'the coordinator is driven by queue events, not polling' },
  { beflow: 'BEFLOW_COORDINATOR_MAX_RUNNING_TASKS', xpr: undefined, note: 'no limit: submissions wait in the queues' },
  { beflow: 'BEFLOW_*_PREFIX, BEFLOW_*_ROUTER, BEFLOW_*_WORKER', xpr: undefined, note: 'Python import paths; stages come from the workflow module' },
];

/** The raw text of each XPR_EXECUTOR_* setting that BEFLOW_* variables give, for those unset. */
function fromBeflow(env: NodeJS.ProcessEnv): {
  address?: string; port?: string; token?: string; redis?: string; keepTempFiles?: string;
  cores: Record<string, string>; maxMemGbPerCore: Record<string, string>;
} {
  const get = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const out: ReturnType<typeof fromBeflow> = { cores: {}, maxMemGbPerCore: {} };
  const gateway = get('BEFLOW_GATEWAY_ADDRESS');
  if (gateway !== undefined) out.address = hostOf(gateway, 'BEFLOW_GATEWAY_ADDRESS');
  const port = get('BEFLOW_GATEWAY_PORT');
  if (port !== undefined) out.port = port;
  const token = get('BEFLOW_API_TOKEN');
  if (token !== undefined) out.token = token;
  const redisHost = get('BEFLOW_REDIS_ADDRESS');
  const redisPort = get('BEFLOW_REDIS_PORT');
  const redisDb = get('BEFLOW_REDIS_DB');
  const redisPassword = get('BEFLOW_REDIS_PASSWORD');
  if ([redisHost, redisPort, redisDb, redisPassword].some((v) => v !== undefined)) {
    if (redisPort !== undefined && !/^\d+$/.test(redisPort)) {
      throw new XprError(`BEFLOW_REDIS_PORT=${redisPort} is not a port number`, { hint: 'Set it to a whole number such as 6363, or unset it.' });
    }
    if (redisDb !== undefined && !/^\d+$/.test(redisDb)) {
      throw new XprError(`BEFLOW_REDIS_DB=${redisDb} is not a database number`, { hint: 'Set it to a whole number such as 0, or unset it.' });
    }
    const auth = redisPassword === undefined ? '' : `:${encodeURIComponent(redisPassword)}@`;
    out.redis = `redis://${auth}${redisHost ?? 'localhost'}:${redisPort ?? '6363'}/${redisDb ?? '0'}`;
  }
  const keep = get('BEFLOW_KEEP_TMP_FILES') ?? get('BEFLOW_OPTIMIZER_KEEP_FILES');
  if (keep !== undefined) out.keepTempFiles = keep;
  for (const [upper, stage] of Object.entries(BEFLOW_STAGES)) {
    const cores = get(`BEFLOW_${upper}_WORKER_N_CORES`);
    if (cores !== undefined) out.cores[stage] = cores;
    const mem = get(`BEFLOW_${upper}_WORKER_MAX_MEM`);
    // BespokeFit's "auto" memory means no limit, as leaving it out does here.
    if (mem !== undefined && mem.toLowerCase() !== 'auto') out.maxMemGbPerCore[stage] = mem;
  }
  return out;
}

function hostOf(address: string, source: string): string {
  if (!address.includes('://')) return address;
  try {
    return new URL(address).hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    throw new XprError(`${source}=${address} is not a URL or host name`, { hint: 'Write it as http://host or just the host, e.g. 127.0.0.1.' });
  }
}

// ---------------------------------------------------------------- per-stage values

const STAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * `a=1,b=2` → `{ a: '1', b: '2' }`; a value without a stage (`4`) is every stage's (`*`).
 * `source` is the flag or variable, named in every error.
 */
export function splitStageList(text: string, source: string, example: string): Record<string, string> {
  const out: Record<string, string> = {};
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new XprError(`${source} is empty`, { hint: `Write it as ${example}.` });
  for (const item of items) {
    const eq = item.indexOf('=');
    const stage = eq < 0 ? ALL_STAGES : item.slice(0, eq).trim();
    const value = eq < 0 ? item : item.slice(eq + 1).trim();
    if (stage !== ALL_STAGES && !STAGE_NAME.test(stage)) {
      throw new XprError(`${source}: "${item}" does not start with a stage name`, {
        hint: `Write stage=value pairs separated by commas, e.g. ${example}.`,
      });
    }
    if (value === '') throw new XprError(`${source}: "${item}" has no value`, { hint: `e.g. ${example}` });
    if (stage in out) throw new XprError(`${source}: stage "${stage === ALL_STAGES ? '(all stages)' : stage}" is given twice`, { hint: `e.g. ${example}` });
    out[stage] = value;
  }
  return out;
}

/** `--workers fragmenter=1,qc-compute=2`: worker processes per stage (0 or more). */
export function parseWorkers(text: string, source = '--workers'): Record<string, number> {
  const example = `${source === '--workers' ? '--workers ' : `${source}=`}fragmenter=1,qc-compute=2`;
  return mapValues(splitStageList(text, source, example), (value, stage) => {
    if (!/^\d+$/.test(value)) {
      throw new XprError(`${source}: ${label(stage)} "${value}" is not a number of workers`, { hint: `Give a whole number, 0 or more, e.g. ${example}.` });
    }
    return Number(value);
  });
}

/** `--cores qc-compute=8,fragmenter=auto`: cores per worker of each stage (1 or more, or auto). */
export function parseCores(text: string, source = '--cores'): Record<string, number | 'auto'> {
  const example = `${source === '--cores' ? '--cores ' : `${source}=`}qc-compute=8,fragmenter=auto`;
  return mapValues(splitStageList(text, source, example), (value, stage) => coresValue(value, `${source}: ${label(stage)}`, example));
}

function coresValue(value: string, where: string, example: string): number | 'auto' {
  if (value.toLowerCase() === 'auto') return 'auto';
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new XprError(`${where} "${value}" is not a number of cores`, { hint: `Give a whole number of at least 1, or auto, e.g. ${example}.` });
  }
  return Number(value);
}

/** `--max-mem qc-compute=2.5gb`: memory per worker of each stage, in kB. */
export function parseMaxMem(text: string, source = '--max-mem'): Record<string, number> {
  const example = `${source === '--max-mem' ? '--max-mem ' : `${source}=`}qc-compute=2.5gb`;
  return mapValues(splitStageList(text, source, example), (value, stage) => memoryValue(value, `${source}: ${label(stage)}`));
}

function memoryValue(value: string | number, where: string): number {
  try {
    return parseMemory(value);
  } catch (err) {
    throw new XprError(`${where}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function label(stage: string): string {
  return stage === ALL_STAGES ? 'the value' : `stage ${stage}`;
}

function mapValues<T>(o: Record<string, string>, f: (value: string, stage: string) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of Object.entries(o)) out[k] = f(v, k);
  return out;
}

// ---------------------------------------------------------------- single values

export function parsePort(value: number | string, source: string): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  // 0 asks the system for any free port (the executor reports the one it got).
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new XprError(`${source}: "${value}" is not a port number`, { hint: 'Give a whole number from 1 to 65535 (0: any free port), e.g. 8000.' });
  }
  return n;
}

export function parseBoolean(value: string, source: string): boolean {
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw new XprError(`${source}=${value} is not a yes/no value`, { hint: 'Use 1, true, yes or on; or 0, false, no or off.' });
}

export function checkRedisUrl(url: string, source: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new XprError(`${source}: "${url}" is not a URL`, { hint: 'Write it as redis://:<password>@<host>:<port>, e.g. redis://:secret@127.0.0.1:6379.' });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new XprError(`${source}: "${redactUrl(url)}" is not a redis:// URL`, { hint: 'Write it as redis://:<password>@<host>:<port>.' });
  }
  return url;
}

/** A URL with its password hidden, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

// ---------------------------------------------------------------- all together

/**
 * The settings of `xpr executor launch` and `Executor.launch`: each from its flag (option), else its
 * XPR_EXECUTOR_* variable, else the BEFLOW_* one, else the default. `cwd` resolves the directory.
 */
export function resolveSettings(input: SettingsInput, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ResolvedSettings {
  const warnings: string[] = [];
  const beflow = fromBeflow(env);
  const envValue = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };

  const directory = path.resolve(cwd, input.directory ?? envValue(ENV.directory) ?? DEFAULTS.directory);
  const address = input.address ?? envValue(ENV.address) ?? beflow.address ?? DEFAULTS.address;

  let port: number = DEFAULTS.port;
  if (input.port !== undefined) port = parsePort(input.port, '--port');
  else if (envValue(ENV.port) !== undefined) port = parsePort(envValue(ENV.port) ?? '', ENV.port);
  else if (beflow.port !== undefined) port = parsePort(beflow.port, 'BEFLOW_GATEWAY_PORT');

  const token = input.token ?? envValue(ENV.token) ?? beflow.token;
  let redis: string | undefined;
  if (input.redis !== undefined) redis = checkRedisUrl(input.redis, '--redis');
  else if (envValue(ENV.redis) !== undefined) redis = checkRedisUrl(envValue(ENV.redis) ?? '', ENV.redis);
  else if (beflow.redis !== undefined) redis = checkRedisUrl(beflow.redis, 'BEFLOW_REDIS_ADDRESS');

  let keepTempFiles = false;
  if (input.keepTempFiles !== undefined) keepTempFiles = input.keepTempFiles;
  else if (envValue(ENV.keepTempFiles) !== undefined) keepTempFiles = parseBoolean(envValue(ENV.keepTempFiles) ?? '', ENV.keepTempFiles);
  else if (beflow.keepTempFiles !== undefined) keepTempFiles = parseBoolean(beflow.keepTempFiles, 'BEFLOW_KEEP_TMP_FILES');

  // Per stage: defaults < BEFLOW_* < XPR_EXECUTOR_* < flags.
  const workers = {
    ...optional(envValue(ENV.workers), (t) => parseWorkers(t, ENV.workers)),
    ...(typeof input.workers === 'string' ? parseWorkers(input.workers) : checkWorkers(input.workers ?? {})),
  };
  const beflowCores = mapValues(beflow.cores, (v, stage) => coresValue(v, `BEFLOW_${beflowUpper(stage)}_WORKER_N_CORES`, 'auto or 8'));
  const cores = {
    ...beflowCores,
    ...optional(envValue(ENV.cores), (t) => parseCores(t, ENV.cores)),
    ...(typeof input.cores === 'string' ? parseCores(input.cores) : checkCores(input.cores ?? {})),
  };
  const maxMem: Record<string, number> = {};
  for (const [stage, gb] of Object.entries(beflow.maxMemGbPerCore)) {
    const name = `BEFLOW_${beflowUpper(stage)}_WORKER_MAX_MEM`;
    if (!/^\d+(\.\d*)?$/.test(gb)) throw new XprError(`${name}=${gb} is not a number of GB`, { hint: 'BespokeFit reads it as GB per core, e.g. 2.5, or auto.' });
    const c = cores[stage] ?? cores[ALL_STAGES] ?? DEFAULTS.coresPerWorker;
    if (c === 'auto') {
      warnings.push(`${name}=${gb} is memory per core, but the cores of ${stage} are "auto": it is not used; give ${ENV.maxMem}=${stage}=<total>gb instead`);
      continue;
    }
    maxMem[stage] = Math.round(Number(gb) * c * 1024 * 1024);
  }
  Object.assign(maxMem,
    optional(envValue(ENV.maxMem), (t) => parseMaxMem(t, ENV.maxMem)),
    typeof input.maxMem === 'string' ? parseMaxMem(input.maxMem) : mapValues(
      Object.fromEntries(Object.entries(input.maxMem ?? {}).map(([k, v]) => [k, String(v)])),
      (v, stage) => memoryValue(/^\d+$/.test(v) ? Number(v) : v, `maxMem: ${label(stage)}`),
    ));

  return {
    settings: {
      directory, address, port, workers, cores, maxMem, keepTempFiles,
      ...(redis !== undefined ? { redis } : {}), ...(token !== undefined ? { token } : {}),
    },
    warnings,
  };
}

function beflowUpper(stage: string): string {
  return Object.entries(BEFLOW_STAGES).find(([, s]) => s === stage)?.[0] ?? stage.toUpperCase();
}

function optional<T>(text: string | undefined, parse: (t: string) => T): T | undefined {
  return text === undefined ? undefined : parse(text);
}

function checkWorkers(w: Record<string, number>): Record<string, number> {
  for (const [stage, n] of Object.entries(w)) {
    if (!Number.isInteger(n) || n < 0) throw new XprError(`workers: ${label(stage)} ${String(n)} is not a number of workers`, { hint: 'Give a whole number, 0 or more, e.g. { "qc-compute": 2 }.' });
  }
  return w;
}

function checkCores(c: Record<string, number | 'auto'>): Record<string, number | 'auto'> {
  for (const [stage, n] of Object.entries(c)) {
    if (n !== 'auto' && (!Number.isInteger(n) || n < 1)) {
      throw new XprError(`cores: ${label(stage)} ${String(n)} is not a number of cores`, { hint: 'Give a whole number of at least 1, or "auto", e.g. { "qc-compute": 8 }.' });
    }
  }
  return c;
}

/** A stage's value of a per-stage setting: its own, else the all-stages one, else the default. */
export function forStage<T>(values: Record<string, T>, stage: string, fallback: T): T {
  return values[stage] ?? values[ALL_STAGES] ?? fallback;
}

/**
 * Where a client (the CLI, `xpr worker`) finds a running executor: XPR_EXECUTOR_URL and
 * XPR_EXECUTOR_TOKEN, else BespokeFit's BEFLOW_GATEWAY_ADDRESS/PORT and BEFLOW_API_TOKEN.
 */
export function clientEndpoint(env: NodeJS.ProcessEnv): { url?: string; token?: string; urlSource: string; tokenSource: string } {
  const get = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  let url = get(ENV.url);
  let urlSource: string = ENV.url;
  if (url === undefined && get('BEFLOW_GATEWAY_ADDRESS') !== undefined) {
    const address = get('BEFLOW_GATEWAY_ADDRESS') ?? '';
    const withScheme = address.includes('://') ? address : `http://${address}`;
    const base = withScheme.replace(/\/+$/, '');
    // BespokeFit joins address and port; an address that names its own port keeps it.
    url = /:\d+$/.test(base) ? base : `${base}:${get('BEFLOW_GATEWAY_PORT') ?? String(DEFAULTS.port)}`;
    urlSource = 'BEFLOW_GATEWAY_ADDRESS';
  }
  let token = get(ENV.token);
  let tokenSource: string = ENV.token;
  if (token === undefined && get('BEFLOW_API_TOKEN') !== undefined) {
    token = get('BEFLOW_API_TOKEN');
    tokenSource = 'BEFLOW_API_TOKEN';
  }
  return { ...(url !== undefined ? { url } : {}), ...(token !== undefined ? { token } : {}), urlSource, tokenSource };
}
