// What a job asks for (cores or nodes, time, memory, which partitions) and the choice of partition
// that satisfies it, following ExPyRe's `Resources.find_nodes` with its partial-node flaw fixed.
import { ConfigError, XprError, type ConfigIssue } from '../errors.js';
import type { NodeChoice, Partition } from './types.js';
import { formatMemory, formatTime, parseMemory, parseTime, MEMORY_FORMATS, TIME_FORMATS } from './units.js';

/** Resources as written in JSON: ExPyRe's keys. `queues` is ExPyRe's synonym of `partitions`. */
export interface ResourcesSpec {
  num_nodes?: number;
  num_cores?: number;
  max_time: number | string;
  max_mem_tot?: number | string;
  max_mem_per_core?: number | string;
  partitions?: string | string[];
  queues?: string | string[];
}

export const RESOURCES_KEYS = [
  'num_nodes', 'num_cores', 'max_time', 'max_mem_tot', 'max_mem_per_core', 'partitions', 'queues',
] as const;

/** Memory asked for, in kB: for the whole job, or for each core. */
export interface MemoryRequest {
  kB: number;
  per: 'job' | 'core';
}

export interface ResourcesParseOptions {
  /** Key path of the resources object, prefixed to every issue path ('' for none). */
  where?: string;
  /** File the object came from, for the issues. */
  file?: string;
}

export interface FindNodesOptions {
  /** Only whole nodes with no idle core (num_cores a multiple of cores per node). Default true. */
  exactFit?: boolean;
  /** Allow less than one node; such partitions are preferred when any can hold the job. Default false. */
  partialNode?: boolean;
}

export type ResourcesCheck =
  | { resources: Resources; issues: [] }
  | { resources: undefined; issues: ConfigIssue[] };

interface Fields {
  numNodes: number | undefined;
  numCores: number | undefined;
  maxTime: number;
  maxMem: MemoryRequest | undefined;
  partitions: string[] | undefined;
}

/** A partition that can take the job, with what the job would get there. */
interface Candidate extends NodeChoice {
  /** Cores of the allocated nodes that the job did not ask for. */
  waste: number;
  /** Holds the job within one node, sharing it (partial_node). */
  partial: boolean;
}

export class Resources {
  readonly numNodes: number | undefined;
  readonly numCores: number | undefined;
  /** Seconds. */
  readonly maxTime: number;
  readonly maxMem: MemoryRequest | undefined;
  /** Regexps as given; each must match a whole partition key. */
  readonly partitions: readonly string[] | undefined;
  readonly #patterns: readonly RegExp[] | undefined;

  private constructor(f: Fields) {
    this.numNodes = f.numNodes;
    this.numCores = f.numCores;
    this.maxTime = f.maxTime;
    this.maxMem = f.maxMem;
    this.partitions = f.partitions;
    // Grouped before anchoring: ExPyRe's '^' + re + '$' lets 'a|b' match any name starting with a.
    this.#patterns = f.partitions?.map((re) => new RegExp(`^(?:${re})$`));
  }

  /** Validates a resources object, reporting every problem at once. A Resources is returned as is. */
  static check(input: unknown, options: ResourcesParseOptions = {}): ResourcesCheck {
    if (input instanceof Resources) return { resources: input, issues: [] };
    const issues = new IssueList(options.where ?? 'resources', options.file);
    const fields = readFields(input, issues);
    if (!fields || issues.list.length > 0) return { resources: undefined, issues: issues.list };
    return { resources: new Resources(fields), issues: [] };
  }

  /** Like `check`, but throws a ConfigError listing every problem. */
  static parse(input: unknown, options: ResourcesParseOptions = {}): Resources {
    const { resources, issues } = Resources.check(input, options);
    if (resources) return resources;
    throw new ConfigError(issues, {
      what: 'Invalid resources',
      hint: 'Resources need max_time, exactly one of num_nodes/num_cores, and optionally one of ' +
        'max_mem_tot/max_mem_per_core and partitions (regexps matching whole partition names).',
    });
  }

  /** Back to ExPyRe's JSON keys, with time in seconds and memory in kB. */
  toSpec(): ResourcesSpec {
    return {
      ...(this.numNodes === undefined ? {} : { num_nodes: this.numNodes }),
      ...(this.numCores === undefined ? {} : { num_cores: this.numCores }),
      max_time: this.maxTime,
      ...(this.maxMem?.per === 'job' ? { max_mem_tot: this.maxMem.kB } : {}),
      ...(this.maxMem?.per === 'core' ? { max_mem_per_core: this.maxMem.kB } : {}),
      ...(this.partitions === undefined ? {} : { partitions: [...this.partitions] }),
    };
  }

  toString(): string {
    const parts = [
      this.numNodes === undefined ? `num_cores=${this.numCores}` : `num_nodes=${this.numNodes}`,
      `max_time=${formatTime(this.maxTime)}`,
    ];
    if (this.maxMem) {
      parts.push(`max_mem_${this.maxMem.per === 'job' ? 'tot' : 'per_core'}=${formatMemory(this.maxMem.kB, { style: 'pbs' })}`);
    }
    if (this.partitions) parts.push(`partitions=${JSON.stringify(this.partitions)}`);
    return parts.join(', ');
  }

  /**
   * Chooses the partition for this request (ExPyRe's find_nodes). A partition qualifies when its key
   * matches `partitions`, max_time fits, the cores fit (see FindNodesOptions) and the memory per node
   * fits. Among those, the one with the fewest idle cores on the allocated nodes wins; ties go to the
   * first in config order. With partialNode, partitions that hold the job in one node are chosen
   * over multi-node ones. Throws an XprError giving each partition's reason when none qualifies.
   */
  findNodes(partitions: Record<string, Partition>, options: FindNodesOptions = {}): NodeChoice {
    const exactFit = options.exactFit ?? true;
    const partialNode = options.partialNode ?? false;
    const keys = Object.keys(partitions);
    if (keys.length === 0) {
      throw new XprError('No partitions to choose from', {
        hint: 'Add "partitions" (or "queues") to the system in config.json.',
      });
    }

    const candidates: Candidate[] = [];
    const rejected: Array<{ key: string; reasons: string[] }> = [];
    for (const key of keys) {
      const partition = partitions[key];
      if (partition === undefined) continue;
      const { candidate, reasons } = this.#evaluate(key, partition, exactFit, partialNode);
      if (candidate) candidates.push(candidate);
      else rejected.push({ key, reasons });
    }

    const pool = candidates.some((c) => c.partial) ? candidates.filter((c) => c.partial) : candidates;
    // reduce keeps the earlier one on a tie, so config order breaks ties.
    const best = pool.reduce<Candidate | undefined>((a, c) => (a === undefined || c.waste < a.waste ? c : a), undefined);
    if (best === undefined) throw this.#noFit(rejected, exactFit, partialNode);
    const { waste: _waste, partial: _partial, ...choice } = best;
    return choice;
  }

  #evaluate(key: string, p: Partition, exactFit: boolean, partialNode: boolean): { candidate?: Candidate; reasons: string[] } {
    const reasons: string[] = [];
    // An unmatched partition's other reasons still tell whether widening the regexps would help.
    if (this.#patterns && !this.#patterns.some((re) => re.test(key))) {
      reasons.push(`not matched by partitions ${JSON.stringify(this.partitions)} (a regexp must match the whole name)`);
    }
    if (this.maxTime > p.max_time) {
      reasons.push(`max_time ${formatTime(this.maxTime)} is longer than its limit ${formatTime(p.max_time)}`);
    }

    const perNode = p.num_cores;
    let shape: { numNodes: number; numCoresPerNode: number; partial: boolean } | undefined;
    if (this.numNodes !== undefined) {
      // Whole nodes were asked for, so partial_node has nothing to do here (ExPyRe raises for >1 node).
      shape = { numNodes: this.numNodes, numCoresPerNode: perNode, partial: false };
    } else {
      const cores = this.numCores ?? 0;
      if (partialNode && cores <= perNode) {
        shape = { numNodes: 1, numCoresPerNode: cores, partial: true };
      } else if (exactFit && cores % perNode !== 0) {
        reasons.push(partialNode
          ? `${cores} cores neither fit in one ${perNode}-core node (partial_node) nor are a multiple of ${perNode} (exact_fit)`
          : `${cores} cores are not a multiple of its ${perNode} cores per node (exact_fit)`);
      } else {
        shape = { numNodes: Math.ceil(cores / perNode), numCoresPerNode: perNode, partial: false };
      }
    }

    // When the cores do not fit, memory is judged on the whole nodes that exact_fit: false would
    // give, so that every reason shows at once, not one per attempt.
    const memShape = shape ?? { numNodes: Math.max(1, Math.ceil((this.numCores ?? 0) / perNode)), numCoresPerNode: perNode };
    let maxMemPerNode: number | undefined;
    if (this.maxMem) {
      maxMemPerNode = this.maxMem.per === 'job'
        ? Math.ceil(this.maxMem.kB / memShape.numNodes)
        : this.maxMem.kB * memShape.numCoresPerNode;
      if (p.max_mem !== undefined && maxMemPerNode > p.max_mem) {
        const how = this.maxMem.per === 'core'
          ? `${fmtMem(this.maxMem.kB)} per core × ${memShape.numCoresPerNode} cores = ${fmtMem(maxMemPerNode)}`
          : fmtMem(maxMemPerNode);
        reasons.push(`needs ${how} per node, its nodes have ${fmtMem(p.max_mem)}`);
      }
    }

    if (!shape || reasons.length > 0) return { reasons };
    const numCores = shape.numNodes * shape.numCoresPerNode;
    return {
      reasons,
      candidate: {
        partitionKey: key,
        partition: p.partition ?? key,
        numNodes: shape.numNodes,
        numCores,
        numCoresPerNode: shape.numCoresPerNode,
        maxTime: this.maxTime,
        ...(maxMemPerNode === undefined ? {} : { maxMemPerNode }),
        waste: shape.numNodes * perNode - (this.numCores ?? numCores),
        partial: shape.partial,
      },
    };
  }

  #noFit(rejected: Array<{ key: string; reasons: string[] }>, exactFit: boolean, partialNode: boolean): XprError {
    const lines = rejected.map(({ key, reasons }) => `  ${key}: ${reasons.join('; ')}`);
    const all = rejected.flatMap((r) => r.reasons).join('\n');
    const hints: string[] = [];
    if (all.includes('max_time')) hints.push('ask for a shorter max_time');
    if (all.includes('exact_fit')) {
      hints.push(partialNode
        ? 'pass exact_fit: false to accept whole nodes with idle cores'
        : 'pass exact_fit: false to accept whole nodes with idle cores, or partial_node: true to share a node');
    }
    if (all.includes('per node')) hints.push('ask for less memory (max_mem_tot / max_mem_per_core)');
    // Widening helps only where nothing but the regexps stands in the way.
    if (rejected.some((r) => r.reasons.length === 1 && r.reasons[0]!.startsWith('not matched'))) {
      hints.push("widen the partitions regexps (e.g. 'std.*' to match 'std_long')");
    }
    return new XprError(
      `No partition fits ${this} (exact_fit=${exactFit}, partial_node=${partialNode}):\n${lines.join('\n')}`,
      hints.length > 0 ? { hint: `To fix: ${hints.join('; ')}.` } : {},
    );
  }
}

/** Validates and parses `resources`; a Resources when the issues are empty. */
export function checkResources(input: unknown, options: ResourcesParseOptions = {}): ResourcesCheck {
  return Resources.check(input, options);
}

function fmtMem(kB: number): string {
  return formatMemory(kB, { style: 'pbs' });
}

class IssueList {
  readonly list: ConfigIssue[] = [];
  constructor(private readonly where: string, private readonly file: string | undefined) {}

  add(key: string | undefined, message: string): void {
    const path = key === undefined ? this.where : this.where ? `${this.where}.${key}` : key;
    this.list.push({ ...(this.file === undefined ? {} : { file: this.file }), path, message });
  }
}

function show(v: unknown): string {
  if (Array.isArray(v)) return `an array ${JSON.stringify(v)}`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses every key, adding an issue for each problem; undefined when the shape is hopeless. */
function readFields(input: unknown, issues: IssueList): Fields | undefined {
  if (!isRecord(input)) {
    issues.add(undefined, `expected an object with keys ${RESOURCES_KEYS.join(', ')}; got ${show(input)}`);
    return undefined;
  }
  const known: readonly string[] = RESOURCES_KEYS;
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) {
      const near = known.find((k) => editDistance(k, key) <= 2);
      issues.add(key, `unknown key${near ? ` (did you mean "${near}"?)` : ''}; valid keys: ${known.join(', ')}`);
    }
  }
  // null counts as absent, as None does for ExPyRe's keyword arguments.
  const get = (key: string): unknown => (input[key] === null ? undefined : input[key]);

  const numNodes = get('num_nodes');
  const numCores = get('num_cores');
  if (numNodes !== undefined && numCores !== undefined) {
    issues.add(undefined, 'give exactly one of num_nodes and num_cores, not both');
  } else if (numNodes === undefined && numCores === undefined) {
    issues.add(undefined, 'missing num_nodes or num_cores (give exactly one)');
  }
  const count = (key: string, v: unknown): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
    issues.add(key, `expected a positive integer, got ${show(v)}`);
    return undefined;
  };

  const maxTime = parsePositive(issues, 'max_time', get('max_time'), parseTime, TIME_FORMATS, 's');
  if (get('max_time') === undefined) issues.add('max_time', `required: ${TIME_FORMATS}`);

  const memTot = parsePositive(issues, 'max_mem_tot', get('max_mem_tot'), parseMemory, MEMORY_FORMATS, 'kB');
  const memCore = parsePositive(issues, 'max_mem_per_core', get('max_mem_per_core'), parseMemory, MEMORY_FORMATS, 'kB');
  if (get('max_mem_tot') !== undefined && get('max_mem_per_core') !== undefined) {
    issues.add(undefined, 'give at most one of max_mem_tot and max_mem_per_core');
  }

  if (get('partitions') !== undefined && get('queues') !== undefined) {
    issues.add(undefined, 'give at most one of partitions and queues (they are synonyms)');
  }
  const partitionsKey = get('partitions') === undefined && get('queues') !== undefined ? 'queues' : 'partitions';
  const partitions = readRegexps(issues, partitionsKey, get(partitionsKey));

  return {
    numNodes: count('num_nodes', numNodes),
    numCores: count('num_cores', numCores),
    maxTime: maxTime ?? 0,
    maxMem: memTot !== undefined ? { kB: memTot, per: 'job' } : memCore !== undefined ? { kB: memCore, per: 'core' } : undefined,
    partitions,
  };
}

function parsePositive(
  issues: IssueList, key: string, v: unknown, parse: (v: number | string) => number, formats: string, unit: string,
): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' && typeof v !== 'string') {
    issues.add(key, `expected ${formats}; got ${show(v)}`);
    return undefined;
  }
  try {
    const n = parse(v);
    if (n > 0) return n;
    issues.add(key, `must be more than 0 ${unit}, got ${show(v)}`);
  } catch (e) {
    if (!(e instanceof XprError)) throw e;
    issues.add(key, e.message);
  }
  return undefined;
}

function readRegexps(issues: IssueList, key: string, v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s): s is string => typeof s === 'string' && s !== '')) {
    issues.add(key, `expected a regexp or a non-empty list of regexps matching whole partition names; got ${show(v)}`);
    return undefined;
  }
  list.forEach((re, i) => {
    try {
      new RegExp(re);
    } catch (e) {
      issues.add(typeof v === 'string' ? key : `${key}.${i}`, `invalid regexp ${JSON.stringify(re)}: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  return list;
}

/** Levenshtein distance, for "did you mean" on misspelt keys. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
