// From the validated file contents to the config xpr runs with: defaults that depend on where the
// project is (rundir, the local stage dir), on the environment (EXPYRE_RSH) and on this machine (the
// built-in `local` system's cores and memory).
import os from 'node:os';
import path from 'node:path';
import type { Partition } from '../resources/types.js';
import { DEFAULTS, type ParsedConfig, type ParsedSystem, type SystemConfig, type XprConfig } from './schema.js';

export interface NormalizeContext {
  /** Absolute dir holding jobs.db and the run_<id> dirs. */
  stageDir: string;
  /** Local home, for a relative rundir of a host-less system (ExPyRe's rule). */
  home: string;
  env: NodeJS.ProcessEnv;
}

/** Name of the system that always exists unless a config file defines its own. */
export const BUILTIN_SYSTEM = 'local';

const YEAR_SECONDS = 365 * 86400;

/** One partition that is this whole machine: every core, all memory, a year of wall time. */
export function localMachinePartition(): Partition {
  return {
    num_cores: os.availableParallelism(),
    max_time: YEAR_SECONDS,
    max_mem: Math.floor(os.totalmem() / 1024),
  };
}

/** The built-in `local` system: local scheduler, no SSH, jobs run in their stage dirs. */
export function builtinLocalSystem(ctx: NormalizeContext): SystemConfig {
  return {
    name: BUILTIN_SYSTEM,
    host: null,
    scheduler: 'local',
    partitions: { local: localMachinePartition() },
    header: [],
    no_default_header: false,
    commands: [],
    pre_submit_cmds: [],
    rundir: ctx.stageDir,
    runsInPlace: true,
    remsh_cmd: remshDefault(ctx.env),
    script_exec: DEFAULTS.script_exec,
    max_array_size: DEFAULTS.max_array_size,
    node_command: DEFAULTS.node_command,
  };
}

/** ExPyRe's default remote shell: $EXPYRE_RSH, else ssh. */
export function remshDefault(env: NodeJS.ProcessEnv): string {
  return env['EXPYRE_RSH'] || DEFAULTS.remsh_cmd;
}

export function normalizeConfig(parsed: ParsedConfig, ctx: NormalizeContext): XprConfig {
  const systems: Record<string, SystemConfig> = {};
  for (const [name, sys] of Object.entries(parsed.systems ?? {})) systems[name] = normalizeSystem(name, sys, ctx);
  // A user-defined `local` replaces the built-in one entirely (no merge): what the file says is all.
  systems[BUILTIN_SYSTEM] ??= builtinLocalSystem(ctx);
  return {
    systems,
    ...(parsed.local_stage_dir === undefined ? {} : { local_stage_dir: parsed.local_stage_dir }),
    ...(parsed.remote_rundir_submit_hostname === undefined
      ? {}
      : { remote_rundir_submit_hostname: parsed.remote_rundir_submit_hostname }),
  };
}

function normalizeSystem(name: string, sys: ParsedSystem, ctx: NormalizeContext): SystemConfig {
  const host = sys.host ?? null;
  // Validation guarantees partitions or queues unless the scheduler is local, which then gets the
  // whole machine.
  const given = sys.partitions ?? sys.queues;
  const partitions = given ? mapValues(given, toPartition) : { local: localMachinePartition() };
  const { rundir, runsInPlace } = resolveRundir(host, sys.rundir ?? null, ctx);
  const out: SystemConfig = {
    name,
    host,
    scheduler: sys.scheduler,
    partitions,
    header: sys.header ?? [],
    no_default_header: sys.no_default_header ?? false,
    commands: sys.commands ?? [],
    pre_submit_cmds: sys.pre_submit_cmds ?? [],
    rundir,
    runsInPlace,
    remsh_cmd: sys.remsh_cmd ?? remshDefault(ctx.env),
    script_exec: sys.script_exec ?? DEFAULTS.script_exec,
    max_array_size: sys.max_array_size ?? DEFAULTS.max_array_size,
    node_command: sys.node_command ?? DEFAULTS.node_command,
    ...(sys.missing_job_grace !== undefined ? { missing_job_grace: sys.missing_job_grace } : {}),
  };
  return out;
}

/**
 * ExPyRe's rules: with a host the default is 'run_expyre' (relative = under the remote home);
 * without a host a relative rundir is taken from the local $HOME, and no rundir means the job runs
 * in its stage dir.
 */
function resolveRundir(host: string | null, rundir: string | null, ctx: NormalizeContext): { rundir: string; runsInPlace: boolean } {
  if (rundir === null) {
    return host === null ? { rundir: ctx.stageDir, runsInPlace: true } : { rundir: DEFAULTS.rundir, runsInPlace: false };
  }
  const trimmed = rundir.length > 1 ? rundir.replace(/\/+$/, '') || '/' : rundir;
  if (host === null && !path.isAbsolute(trimmed)) return { rundir: path.join(ctx.home, trimmed), runsInPlace: false };
  return { rundir: trimmed, runsInPlace: false };
}

type ParsedPartition = NonNullable<ParsedSystem['partitions']>[string];

/** Drop keys the file left out, so a Partition holds only what was said. */
function toPartition(p: ParsedPartition): Partition {
  const out: Partition = { num_cores: p.num_cores, max_time: p.max_time };
  if (p.max_mem !== undefined) out.max_mem = p.max_mem;
  if (p.header !== undefined) out.header = p.header;
  if (p.partition !== undefined) out.partition = p.partition;
  return out;
}

function mapValues<A, B>(rec: Record<string, A>, f: (a: A) => B): Record<string, B> {
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, f(v)]));
}
