// What a start asks for, checked before any job is touched (the system exists, the resources are
// valid and fit a partition), and how it compares with what a died job
// asked for when it was submitted: a job that died of its limits is only worth re-attaching to when
// the new call asks for the same again.
import { Resources, type ResourcesSpec } from '../resources/resources.js';
import type { NodeChoice } from '../resources/types.js';
import { formatMemory } from '../resources/units.js';
import type { JobRecord } from '../store/jobstore.js';
import type { Json } from '../util/codec.js';
import { canonicalJson } from './identity.js';
import type { Project } from './project.js';
import type { System } from './system.js';

export interface StartOptions {
  /** System name from config.json, or the built-in 'local'. */
  system?: string;
  resources: ResourcesSpec | Resources;
  headerExtra?: readonly string[];
  exactFit?: boolean;
  partialNode?: boolean;
}

/** What a start asks of a system; recorded on every job it submits (`info`), with the system. */
export interface Ask {
  system: string;
  /** As `Resources.toSpec` gives it: seconds and kB, so equal requests compare equal. */
  resources: ResourcesSpec;
  node: NodeChoice;
  headerExtra: readonly string[];
}

export interface StartPlan {
  system: System;
  resources: Resources;
  ask: Ask;
}

/**
 * Check a start's options against the project without touching any job: the system exists, the
 * resources are valid and fit a partition. (Whether the rundir can be made is `System.ensureRundir`,
 * asked only when there is something to submit.)
 */
export function planStart(project: Project, options: StartOptions): StartPlan {
  const system = project.system(options.system ?? 'local');
  const resources = options.resources instanceof Resources ? options.resources : Resources.parse(options.resources);
  // On the local scheduler the machine is one node that jobs share, so a part of it is the norm.
  const node = resources.findNodes(system.config.partitions, {
    exactFit: options.exactFit ?? true, partialNode: options.partialNode ?? system.config.scheduler === 'local',
  });
  return { system, resources, ask: { system: system.name, resources: resources.toSpec(), node, headerExtra: [...(options.headerExtra ?? [])] } };
}

/** The part of an Ask a job's record keeps in its `info` (the system has its own column). */
export function askInfo(ask: Ask): Record<string, unknown> {
  return { resources: ask.resources, node: ask.node, headerExtra: [...ask.headerExtra] };
}

/** What a submitted job asked for; undefined for one recorded without it (never submitted). */
export function recordedAsk(r: JobRecord): Ask | undefined {
  const { resources, node, headerExtra } = r.info;
  if (!r.system || !isObject(resources) || !isObject(node)) return undefined;
  return {
    system: r.system,
    resources: resources as unknown as ResourcesSpec,
    node: node as unknown as NodeChoice,
    // Jobs submitted by an older xpr did not record it.
    headerExtra: Array.isArray(headerExtra) ? headerExtra.filter((h): h is string => typeof h === 'string') : [],
  };
}

export function sameAsk(a: Ask, b: Ask): boolean {
  return canonical(a) === canonical(b);
}

/** As recorded: through JSON, which drops keys whose value is undefined, with keys in a fixed order. */
const canonical = (ask: Ask): string => canonicalJson(JSON.parse(JSON.stringify(ask)) as Json);

/**
 * What changed between two asks, as a user reads it: `{ was: 'with max_time 60 s', now: 'with max_time 120 s' }`.
 * Resources first; then the system, the extra header lines, and last the node choice alone (the
 * config's partitions changed).
 */
export function describeChange(was: Ask, now: Ask): { was: string; now: string } {
  const keys = [...new Set([...Object.keys(was.resources), ...Object.keys(now.resources)])];
  const differ = keys.filter((k) => canonicalJson(field(was.resources, k)) !== canonicalJson(field(now.resources, k)));
  if (differ.length > 0) {
    const show = (r: ResourcesSpec) => `with ${differ.map((k) => `${k} ${showValue(k, field(r, k))}`).join(', ')}`;
    return { was: show(was.resources), now: show(now.resources) };
  }
  if (was.system !== now.system) return { was: `on system ${was.system}`, now: `on system ${now.system}` };
  if (canonicalJson([...was.headerExtra]) !== canonicalJson([...now.headerExtra])) {
    return { was: `with header_extra ${JSON.stringify(was.headerExtra)}`, now: `with header_extra ${JSON.stringify(now.headerExtra)}` };
  }
  const node = (n: NodeChoice) => `on partition ${n.partition} (${n.numNodes} node(s) of ${n.numCoresPerNode} cores)`;
  return { was: node(was.node), now: node(now.node) };
}

function field(r: ResourcesSpec, key: string): Json {
  return ((r as unknown as Record<string, Json>)[key]) ?? null;
}

function showValue(key: string, v: Json): string {
  if (v === null) return 'unset';
  if (key === 'max_time' && typeof v === 'number') return `${v} s`;
  if (key.startsWith('max_mem') && typeof v === 'number' && Number.isSafeInteger(v)) return formatMemory(v, { style: 'pbs' });
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
