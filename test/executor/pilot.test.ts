// Pilot workers: batch jobs submitted through xpr's Job API whose function is the remote worker.
// On the built-in `local` system, a real job on the local queue connects back to a test server that
// speaks the gateway's worker protocol, completes a task, and ends before its max_time.
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XprError } from '../../src/errors.js';
import { pilotWorkerOptions, submitPilotWorkers } from '../../src/executor/pilot.js';
import type { TaskData } from '../../src/executor/types.js';
import { bundleModule } from '../../src/job/code.js';
import { Resources } from '../../src/resources/resources.js';
import { encode } from '../../src/util/codec.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startFakeGateway, type FakeGateway } from './fake-gateway.js';

const BASE = { system: 'local', stage: 'double', count: 1, url: 'http://gw:8000', token: 't' };

describe('what each pilot worker is told', () => {
  it('stops leasing a margin before max_time: 10% of it, at least a minute, at most ten', () => {
    const at = (max_time: string) => pilotWorkerOptions({ ...BASE, resources: { num_cores: 1, max_time } }, Resources.parse({ num_cores: 1, max_time })).stopAfterMs;
    expect(at('12h')).toBe(12 * 3600_000 - 600_000);
    expect(at('1h')).toBe(3600_000 - 360_000);
    expect(at('5m')).toBe(300_000 - 60_000);
  });

  it('offers the cores and memory the job asks for, else what it gets', () => {
    const spec = { num_cores: 4, max_time: '1h', max_mem_per_core: '2GB' };
    const opts = pilotWorkerOptions({ ...BASE, resources: spec }, Resources.parse(spec));
    expect(opts).toMatchObject({ cores: 4, maxMem: 4 * 2 * 1024 * 1024, url: 'http://gw:8000', token: 't', stage: 'double' });
    const nodes = { num_nodes: 1, max_time: '1h' };
    expect(pilotWorkerOptions({ ...BASE, resources: nodes }, Resources.parse(nodes)).cores).toBe('auto');
  });

  it('refuses a max_time that leaves no time to work, naming it', () => {
    const spec = { num_cores: 1, max_time: '60s' };
    let err: unknown;
    try { pilotWorkerOptions({ ...BASE, resources: spec }, Resources.parse(spec)); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(XprError);
    expect((err as XprError).message).toBe('A pilot worker with max_time 00:01:00 would have no time to work: ' +
      'it stops taking tasks 60 s before its end, and needs 10 s of work at least');
    expect((err as XprError).hint).toBe('Ask for a longer max_time in the resources.');
  });
});

describe('pilot jobs on the local system', () => {
  let t: TempProject;
  let gw: FakeGateway;
  beforeEach(async () => {
    t = tempProject();
    gw = await startFakeGateway();
  });
  afterEach(async () => {
    await gw.close();
    await t.cleanup();
  });

  it('run the remote worker as a job: it connects back, completes a task, and ends before max_time', async () => {
    const bundle = await bundleModule(path.resolve('test/fixtures/executor/stages.mjs'));
    gw.code.set(bundle.hash, bundle.code);
    const data: TaskData = {
      workflow: 'demo', stage: 'double', stageIndex: 0, codeHash: bundle.hash,
      input: encode(21), submissionInput: encode(null), sharedKey: 'sk',
    };
    gw.add('task-1', data);
    const jobs = await submitPilotWorkers({
      ...BASE, url: gw.url, token: gw.token, project: t.project,
      // 30 s of job, of which 20 s are the margin: it leases for 10 s, then ends on its own.
      resources: { num_cores: 1, max_time: '30s' }, marginMs: 20_000,
    });
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.status).toBe('submitted');
    const complete = await gw.waitFor('/api/v1/workers/complete');
    expect(complete.body).toMatchObject({ stage: 'double', taskId: 'task-1', outcome: { value: 42, readInput: false } });
    const { result } = await jobs[0]!.getResults({ timeout: 60 });
    expect(result).toMatchObject({ tasks: 1, failed: 0, stopped: 'time', cores: 1 });
    expect((result as { workerId: string }).workerId).toMatch(/^pilot-[0-9a-f]{8}-1$/);
    const lease = gw.requests.find((r) => r.path === '/api/v1/workers/lease')!;
    expect(lease.body).toMatchObject({ stage: 'double', cores: 1 });
  });

  it('submits each of N pilots as its own job', async () => {
    const jobs = await submitPilotWorkers({
      ...BASE, count: 2, url: gw.url, token: gw.token, project: t.project,
      resources: { num_cores: 1, max_time: '30s' }, marginMs: 20_000,
    });
    expect(new Set(jobs.map((j) => j.id)).size).toBe(2);
    await Promise.all(jobs.map((j) => j.getResults({ timeout: 60 })));
    const workers = new Set(gw.requests.filter((r) => r.path === '/api/v1/workers/lease').map((r) => r.body.workerId));
    expect(workers.size).toBe(2);
  });

  it('refuses a count that is not a positive integer', async () => {
    await expect(submitPilotWorkers({ ...BASE, count: 0, resources: { num_cores: 1, max_time: '1h' }, project: t.project }))
      .rejects.toThrow('The number of pilot workers must be a positive integer, not 0');
  });
});
