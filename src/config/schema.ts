// The shape of config.json (ExPyRe's keys plus xpr's additions), as zod schemas over the merged
// layers. Parsing turns times and memory sizes into numbers; defaults that need context (rundir,
// remsh_cmd, the built-in local partition) are filled in by normalize.ts. Every problem becomes a
// `SchemaIssue` with its key path, so load.ts can name the file it came from and report all at once.
import { z } from 'zod';
import type { Partition } from '../resources/types.js';
import { MEMORY_FORMATS, parseMemoryLimit, parseTime, TIME_FORMATS } from '../resources/units.js';
import { isPlainObject, type KeyPath } from './merge.js';

export const KNOWN_SCHEDULERS = ['slurm', 'pbs', 'torque', 'sge', 'local'] as const;
export type SchedulerName = (typeof KNOWN_SCHEDULERS)[number];

/** A system as xpr uses it: every default filled in, units parsed. */
export interface SystemConfig {
  /** Key of the system in `systems`. */
  name: string;
  /** `host` or `user@host` (an ~/.ssh/config alias works); null = this machine, no SSH. */
  host: string | null;
  scheduler: SchedulerName;
  /** By config key (what resource `partitions` regexps match); `queues` in the file lands here too. */
  partitions: Record<string, Partition>;
  header: string[];
  no_default_header: boolean;
  /** Run at the start of every job script, on the compute node. */
  commands: string[];
  /** Run in the submitting shell just before each submission. */
  pre_submit_cmds: string[];
  /**
   * Where jobs run. With a host: absolute, or relative to the remote home (default 'run_expyre').
   * Without: absolute (a relative one is taken from $HOME, as ExPyRe does), or the local stage dir.
   */
  rundir: string;
  /** True when jobs run in their local stage dir (no host and no rundir): nothing is copied. */
  runsInPlace: boolean;
  remsh_cmd: string;
  /** Interpreter of the job script's first line. */
  script_exec: string;
  /** Largest job array the site accepts (SLURM MaxArraySize and friends). */
  max_array_size: number;
  /** How to start Node on the remote side. */
  node_command: string;
  /**
   * Seconds a job may be gone from the queue with no files before it counts as died (files written
   * on a compute node can show late on a shared file system). Absent: 60, or 0 on the local scheduler.
   */
  missing_job_grace?: number;
}

export interface XprConfig {
  systems: Record<string, SystemConfig>;
  /** Absolute; also moves jobs.db and the run_<id> dirs there, as in ExPyRe. */
  local_stage_dir?: string;
  /** Host name used in remote rundirs instead of $HOSTNAME (for sites with several login nodes). */
  remote_rundir_submit_hostname?: string;
}

export const DEFAULTS = {
  rundir: 'run_expyre',
  remsh_cmd: 'ssh',
  script_exec: '/bin/bash',
  max_array_size: 1000,
  node_command: 'node',
} as const;

// ---- building blocks with messages that say what is expected ----

/** A key-closed object; the unknown-key message lists the valid keys. */
function closed<T extends z.ZodRawShape>(what: string, shape: T) {
  return z
    .object(shape, { invalid_type_error: `expected an object (${what})` })
    .strict(`valid keys: ${Object.keys(shape).join(', ')}`);
}

/** Messages for a wrong type and for a missing key (zod's own say only "Required"). */
const expecting = (expected: string) => ({
  invalid_type_error: expected,
  required_error: `required key missing: ${expected}`,
});

const text = (what: string) =>
  z.string(expecting(`expected a string (${what})`)).min(1, `expected a non-empty string (${what})`);

const stringList = (what: string) =>
  z.array(z.string(expecting('expected a string')), expecting(`expected a list of strings (${what})`));

const flag = z.boolean(expecting('expected true or false'));

const positiveInt = (what: string) =>
  z
    .number(expecting(`expected a positive integer (${what})`))
    .int(`expected a positive integer (${what})`)
    .positive(`expected a positive integer (${what})`);

// ExPyRe reads null and '_none_' as "no limit" / "not stated".
const isNone = (v: unknown): boolean => v === null || (typeof v === 'string' && v.trim().toLowerCase() === '_none_');

/** A time value (config or job); adds the issue and returns undefined when it is not one. */
function timeValue(v: unknown, ctx: z.RefinementCtx): number | undefined {
  if (typeof v !== 'number' && typeof v !== 'string') {
    ctx.addIssue({ code: 'custom', message: `expected ${TIME_FORMATS}, got ${show(v)}` });
    return undefined;
  }
  try {
    return parseTime(v);
  } catch (e) {
    // units.ts quotes the value and lists the valid forms.
    ctx.addIssue({ code: 'custom', message: e instanceof Error ? e.message : String(e) });
    return undefined;
  }
}

const maxTime = z.unknown().transform((v, ctx): number => {
  if (v === undefined) {
    ctx.addIssue({ code: 'custom', message: `required key missing: expected ${TIME_FORMATS}, or null for no limit` });
    return z.NEVER;
  }
  if (isNone(v)) return Number.POSITIVE_INFINITY;
  return timeValue(v, ctx) ?? z.NEVER;
});

const graceTime = z.unknown().transform((v, ctx): number => timeValue(v, ctx) ?? z.NEVER);

const maxMem = z.unknown().transform((v, ctx): number | undefined => {
  if (v === undefined || isNone(v)) return undefined;
  if (typeof v !== 'number' && typeof v !== 'string') {
    ctx.addIssue({ code: 'custom', message: `expected ${MEMORY_FORMATS}, got ${show(v)}` });
    return z.NEVER;
  }
  try {
    return parseMemoryLimit(v);
  } catch (e) {
    // units.ts quotes the value and lists the valid forms.
    ctx.addIssue({ code: 'custom', message: e instanceof Error ? e.message : String(e) });
    return z.NEVER;
  }
});

const scheduler = z.unknown().transform((v, ctx): SchedulerName => {
  const known = KNOWN_SCHEDULERS.join(', ');
  if (typeof v === 'string' && (KNOWN_SCHEDULERS as readonly string[]).includes(v)) return v as SchedulerName;
  ctx.addIssue({
    code: 'custom',
    message: v === undefined ? `required key missing (known schedulers: ${known})` : `unknown scheduler ${show(v)} (known: ${known})`,
  });
  return z.NEVER;
});

const host = z
  .string({ invalid_type_error: 'expected "host" or "user@host", or null for this machine' })
  .regex(/^(?:[^@\s]+@)?[^@\s]+$/, 'expected "host" or "user@host", or null for this machine')
  .nullable();

// ---- the schemas ----

export const partitionSchema = closed('a partition', {
  num_cores: positiveInt('cores per node'),
  max_time: maxTime,
  max_mem: maxMem,
  header: stringList('extra header lines').optional(),
  partition: text('name the scheduler knows the partition by').optional(),
});

const partitions = z
  .record(z.string(), partitionSchema, { invalid_type_error: 'expected an object mapping partition names to partitions' })
  .refine((r) => Object.keys(r).length > 0, 'expected at least one partition');

export const systemSchema = closed('a system', {
  host: host.optional(),
  scheduler,
  partitions: partitions.optional(),
  queues: partitions.optional(),
  header: stringList('header lines, templated').optional(),
  no_default_header: flag.optional(),
  commands: stringList('commands run at the start of every job').optional(),
  pre_submit_cmds: stringList('commands run before each submission').optional(),
  rundir: text('directory jobs run in').nullable().optional(),
  remsh_cmd: text('remote shell command').optional(),
  script_exec: text('interpreter of the job script').optional(),
  max_array_size: positiveInt('largest job array').optional(),
  node_command: text('command that starts node').optional(),
  missing_job_grace: graceTime.optional(),
});

export const configSchema = closed('the top level of config.json', {
  systems: z.record(z.string(), systemSchema, { invalid_type_error: 'expected an object mapping system names to systems' }).optional(),
  local_stage_dir: text('local dir for jobs.db and job dirs').optional(),
  remote_rundir_submit_hostname: text('host name used in remote rundirs').optional(),
});

export type ParsedSystem = z.output<typeof systemSchema>;
export type ParsedConfig = z.output<typeof configSchema>;

// ---- issues ----

/** One problem in the merged config, located by key path (load.ts adds the file). */
export interface SchemaIssue {
  path: KeyPath;
  message: string;
}

/** Validate the merged config; either the parsed value or every problem found. */
export function validateConfig(raw: unknown): { ok: true; value: ParsedConfig } | { ok: false; issues: SchemaIssue[] } {
  const issues = crossFieldIssues(raw);
  const result = configSchema.safeParse(raw);
  if (!result.success) issues.unshift(...result.error.issues.flatMap((i) => toSchemaIssues(i, raw)));
  if (issues.length > 0 || !result.success) return { ok: false, issues };
  return { ok: true, value: result.data };
}

function toSchemaIssues(issue: z.ZodIssue, raw: unknown): SchemaIssue[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: [...issue.path, key], message: `unknown key "${key}" (${issue.message})` }));
  }
  const value = valueAt(raw, issue.path);
  // Custom messages already quote the value; a missing key has none to quote.
  if (issue.code === 'custom' || value === undefined) return [{ path: issue.path, message: issue.message }];
  return [{ path: issue.path, message: `${issue.message}, got ${show(value)}` }];
}

/** Rules across keys, run on the raw value so they are reported along with the schema's. */
function crossFieldIssues(raw: unknown): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const systems = isPlainObject(raw) ? raw['systems'] : undefined;
  if (!isPlainObject(systems)) return issues;
  for (const [name, sys] of Object.entries(systems)) {
    if (!isPlainObject(sys)) continue;
    const hasPartitions = sys['partitions'] !== undefined;
    const hasQueues = sys['queues'] !== undefined;
    if (hasPartitions && hasQueues) {
      issues.push({
        path: ['systems', name, 'queues'],
        message: 'give either "partitions" or "queues" (the same thing), not both; ' +
          'set one to "_DELETE_" in the deeper config.json to drop an inherited one',
      });
    } else if (!hasPartitions && !hasQueues && typeof sys['scheduler'] === 'string' && sys['scheduler'] !== 'local') {
      issues.push({
        path: ['systems', name, 'partitions'],
        message: `required key missing: scheduler "${sys['scheduler']}" needs "partitions" (or "queues"), ` +
          'e.g. { "std": { "num_cores": 32, "max_time": "48h", "max_mem": "180gb" } }',
      });
    }
  }
  return issues;
}

function valueAt(raw: unknown, path: KeyPath): unknown {
  let v = raw;
  for (const key of path) {
    if (Array.isArray(v) && typeof key === 'number') v = v[key];
    else if (isPlainObject(v) && typeof key === 'string' && Object.hasOwn(v, key)) v = v[key];
    else return undefined;
  }
  return v;
}

/** A user's value, short enough for one line of an error message. */
export function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
