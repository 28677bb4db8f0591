// A real gateway over a real Redis for the gateway and dashboard tests: the store is the
// executor's own, the coordinator a small stand-in that records submissions and publishes their
// events the way the real one does, so these tests exercise the HTTP side alone.
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Coordinator } from '../../src/executor/coordinator.js';
import { buildGateway } from '../../src/executor/gateway.js';
import { ExecutorStore, newSubmissionId } from '../../src/executor/store.js';
import type { Submission, SubmissionStatus, WorkflowRecord } from '../../src/executor/types.js';
import { encode } from '../../src/util/codec.js';
import { startTestRedis, type TestRedis } from './redis.js';

export const TOKEN = 'test-token-0123456789';
export const STAGES = ['split', 'score', 'total'];
export const WORKFLOW: WorkflowRecord = {
  name: 'wordcount',
  codeHash: 'c'.repeat(64),
  stages: [{ stage: 'split', each: false }, { stage: 'score', each: true }, { stage: 'total', each: false }],
  exportName: 'wordcount',
};

/** Stands in for the coordinator: submissions are recorded and announced, nothing runs. */
export class RecordingCoordinator {
  readonly submitted: { workflow: string; input: unknown; id: string }[] = [];
  #clock = 1_000_000;

  constructor(private readonly store: ExecutorStore) {}

  async submit(workflow: string, input: unknown): Promise<string> {
    const record = await this.store.requireWorkflow(workflow);
    const id = newSubmissionId();
    const now = ++this.#clock; // distinct, increasing creation times: a stable listing order
    const sub: Submission = {
      id, workflow, codeHash: record.codeHash, status: 'waiting', stageIndex: 0, createdAt: now, updatedAt: now,
      stages: record.stages.map((s) => ({ stage: s.stage, total: 0, done: 0, status: 'waiting' })),
    };
    await this.store.createSubmission(sub, encode(input));
    this.submitted.push({ workflow, input, id });
    return id;
  }

  /** Moves a submission to `status` (with a result or an error) and publishes it, as the coordinator would. */
  async settle(id: string, status: SubmissionStatus, extra: { result?: unknown; error?: Submission['error'] } = {}): Promise<void> {
    const sub = (await this.store.getSubmission(id))!;
    const previous = sub.status;
    sub.status = status;
    sub.updatedAt = Date.now();
    if (extra.error) sub.error = extra.error;
    const set: Record<string, string> = extra.result === undefined ? {} : { result: JSON.stringify(encode(extra.result)) };
    await this.store.saveSubmission(sub, previous, { set });
    await this.store.publish({ type: 'status', id, status, ...(extra.error ? { error: extra.error } : {}) });
  }

  async cancel(id: string): Promise<void> {
    await this.settle(id, 'cancelled');
  }

  async retry(id: string): Promise<void> {
    await this.settle(id, 'waiting');
  }
}

export interface Harness {
  redis: TestRedis;
  store: ExecutorStore;
  coordinator: RecordingCoordinator;
  /** The executor's own coordinator, when asked for instead of the recording one. */
  real?: Coordinator;
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

export async function startHarness(
  options: { lockDurationMs?: number; stalledIntervalMs?: number; realCoordinator?: boolean } = {},
): Promise<Harness> {
  const { realCoordinator, ...timing } = options;
  const redis = await startTestRedis();
  const store = ExecutorStore.connect(redis.url);
  store.redis.on('error', () => {}); // a test stops Redis on purpose; ioredis reconnects by itself
  await store.putWorkflow(WORKFLOW);
  await store.putWorkflow({ ...WORKFLOW, name: 'another' });
  const coordinator = new RecordingCoordinator(store);
  // Loaded only when asked for: the other tests exercise the gateway whatever state it is in.
  const real = realCoordinator
    ? await (await import('../../src/executor/coordinator.js')).Coordinator.start({ redis: redis.url })
    : undefined;
  const app = await buildGateway({ store, coordinator: real ?? coordinator, connection: redis.url, token: TOKEN, stages: STAGES, ...timing });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return {
    redis, store, coordinator, app, ...(real ? { real } : {}),
    url: `http://127.0.0.1:${port}`,
    async close() {
      await app.close();
      await real?.close();
      await store.close();
      await redis.stop();
    },
  };
}
