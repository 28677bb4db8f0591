// `xpr executor workers`: workers of one stage as batch jobs on one of xpr's systems (SLURM, PBS,
// SGE over SSH, or the local queue). Each is a pilot job that connects back to the gateway over
// HTTP and leases that stage's tasks until its time is nearly up; `xpr ls` lists them like any job.
import { XprError } from '../../../errors.js';
import { submitPilotWorkers } from '../../../executor/pilot.js';
import type { ResourcesSpec } from '../../../resources/resources.js';
import { parseCores, parseMaxMem } from '../../../executor/settings.js';
import { withProject } from '../../common.js';
import { itemTable, paint, type FormatOptions } from '../../format.js';
import { findExecutor, type ExecutorTarget } from './connect.js';

export interface WorkersOptions extends ExecutorTarget {
  system: string;
  stage: string;
  count: number;
  /** JSON: `{"num_cores":8,"max_time":"12h"}`. */
  resources: string;
  cores?: string;
  maxMem?: string;
  /** The gateway's URL as the cluster's nodes reach it (default: the one the executor printed). */
  url?: string;
}

export interface WorkersResult {
  system: string;
  stage: string;
  url: string;
  jobs: { id: string; name: string; status: string }[];
  warnings: string[];
}

export async function submitWorkers(opts: WorkersOptions): Promise<WorkersResult> {
  const resources = parseResources(opts.resources);
  const cores = opts.cores === undefined ? undefined : single(parseCores(opts.cores), '--cores');
  const maxMem = opts.maxMem === undefined ? undefined : single(parseMaxMem(opts.maxMem), '--max-mem');
  const found = findExecutor(opts);
  const url = opts.url ?? found.remoteUrl ?? found.client.url;
  const warnings: string[] = [];
  if (opts.system !== 'local' && /^https?:\/\/(127\.|localhost|\[::1\])/.test(url)) {
    warnings.push(`The executor listens at ${url}, on this machine only: the nodes of ${opts.system} reach it only if they are this machine. ` +
      'Launch it with --address 0.0.0.0, or pass --url with an address the nodes can reach.');
  }
  const jobs = await withProject(opts, (project) => submitPilotWorkers({
    system: opts.system, stage: opts.stage, count: opts.count, resources, url, token: found.token, project,
    ...(cores !== undefined ? { cores } : {}), ...(maxMem !== undefined ? { maxMem } : {}),
  }));
  return { system: opts.system, stage: opts.stage, url, jobs: jobs.map((j) => ({ id: j.id, name: j.name, status: j.status })), warnings };
}

function parseResources(text: string): ResourcesSpec {
  try {
    return JSON.parse(text) as ResourcesSpec;
  } catch (err) {
    throw new XprError(`--resources is not JSON: ${(err as Error).message}`, { hint: 'e.g. --resources \'{"num_cores":8,"max_time":"12h"}\'' });
  }
}

/** A `--cores 8` for one stage: a bare value (no `stage=`). */
function single<T>(values: Record<string, T>, flag: string): T {
  const v = values['*'];
  if (v === undefined || Object.keys(values).length > 1) throw new XprError(`${flag} takes one value here (the stage is --stage), e.g. ${flag} 8`);
  return v;
}

export function renderWorkers(r: WorkersResult, fmt: FormatOptions): string {
  return [
    ...r.warnings.map((w) => paint(`warning: ${w}`, 'yellow', fmt)),
    `Submitted ${r.jobs.length} worker job(s) for stage ${r.stage} on ${r.system}, connecting to ${r.url}:`,
    itemTable([{ header: 'id', cell: (j: WorkersResult['jobs'][number]) => j.id }, { header: 'status', cell: (j) => j.status }], r.jobs, fmt),
    'xpr ls shows them; xpr cancel stops them (their tasks go back to the queue).',
  ].join('\n');
}
