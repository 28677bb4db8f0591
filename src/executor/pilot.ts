// Workers as batch jobs: N pilot jobs on one of xpr's systems (SLURM, PBS, SGE over SSH, or the
// local queue), each running the remote worker, which connects back to the gateway over HTTP and
// serves one stage. They go through xpr's own Job API, so they are staged, submitted, listed
// (`xpr ls`) and cancelled like any job. A pilot stops leasing tasks a margin before its max_time:
// a task it holds when the scheduler kills it anyway loses its lease and goes back to the queue.
import crypto from 'node:crypto';
import { XprError } from '../errors.js';
import { Job } from '../job/job.js';
import type { Project } from '../job/project.js';
import { Resources, type ResourcesSpec } from '../resources/resources.js';
import { formatTime } from '../resources/units.js';
import { runRemoteWorker, type RemoteWorkerOptions } from './remote-worker.js';

export interface PilotOptions {
  /** A system of the project's config.json, or 'local'. */
  system: string;
  stage: string;
  /** Pilot jobs to submit. */
  count: number;
  /** Of each pilot job: `{ num_cores: 8, max_time: '12h' }`. */
  resources: ResourcesSpec;
  /** The gateway as the cluster's nodes reach it. */
  url: string;
  token: string;
  /** Cores each worker offers; default num_cores of the resources, else 'auto' (what the job got). */
  cores?: number | 'auto';
  /** Memory each worker offers, in kB; default the resources' memory. */
  maxMem?: number;
  /** Stop leasing this long before max_time; default 10% of it, at least 1 and at most 10 minutes. */
  marginMs?: number;
  project?: Project;
}

/** Submits the pilot jobs as one job array and returns them (their ids are what `xpr ls` shows). */
export async function submitPilotWorkers(options: PilotOptions): Promise<Job[]> {
  if (!Number.isInteger(options.count) || options.count < 1) {
    throw new XprError(`The number of pilot workers must be a positive integer, not ${JSON.stringify(options.count)}`);
  }
  const resources = Resources.parse(options.resources);
  const workerOptions = pilotWorkerOptions(options, resources);
  // Each pilot is its own call: identical calls would share one job (the restart hash).
  const batch = crypto.randomBytes(4).toString('hex');
  const calls = Array.from({ length: options.count }, (_, i) => ({
    name: `xpr-worker-${options.stage}`,
    fn: runRemoteWorker,
    args: [{ ...workerOptions, workerId: `pilot-${batch}-${i + 1}` }],
    ...(options.project ? { project: options.project } : {}),
  }));
  // A pilot is one worker process: it can use no more than one node, and a worker of a few cores
  // shares its node with other jobs, as `--resources '{"num_cores":8}'` on a 48-core node means.
  const start = { system: options.system, resources, partialNode: true };
  const jobs = await Job.createMany(calls, undefined, { checkStart: start });
  await Job.startMany(jobs, start);
  return jobs;
}

/** What each pilot's worker is told: only data, since it travels to the job as its arguments. */
export function pilotWorkerOptions(options: PilotOptions, resources: Resources): RemoteWorkerOptions {
  const maxTimeMs = resources.maxTime * 1000;
  const marginMs = options.marginMs ?? Math.min(600_000, Math.max(60_000, maxTimeMs / 10));
  const stopAfterMs = maxTimeMs - marginMs;
  if (stopAfterMs < 10_000) {
    throw new XprError(`A pilot worker with max_time ${formatTime(resources.maxTime)} would have no time to work: ` +
      `it stops taking tasks ${Math.round(marginMs / 1000)} s before its end, and needs 10 s of work at least`, {
      hint: 'Ask for a longer max_time in the resources.',
    });
  }
  const cores = options.cores ?? resources.numCores ?? 'auto';
  const maxMem = options.maxMem ?? memoryOf(resources, cores);
  return {
    url: options.url,
    token: options.token,
    stage: options.stage,
    cores,
    stopAfterMs,
    ...(maxMem === undefined ? {} : { maxMem }),
  };
}

function memoryOf(resources: Resources, cores: number | 'auto'): number | undefined {
  const mem = resources.maxMem;
  if (!mem) return undefined;
  if (mem.per === 'job') return mem.kB;
  return typeof cores === 'number' ? mem.kB * cores : undefined;
}
