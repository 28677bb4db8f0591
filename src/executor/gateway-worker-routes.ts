// The gateway's routes for remote workers: lease a task (long-polled), keep the lease with
// heartbeats, report the outcome. A result is written to the cache before its task completes, as
// a local worker does, so that a crash between the two loses nothing.
import type { FastifyInstance } from 'fastify';
import { XprError } from '../errors.js';
import type { SerializedError } from '../util/codec.js';
import type { GatewayContext } from './gateway.js';
import type { StageLeases } from './gateway-leases.js';
import { completeBody, failBody, heartbeatBody, leaseBody, MAX_LEASE_WAIT_MS } from './gateway-schemas.js';
import type { TaskOutcome } from './types.js';

interface LeaseIds { stage: string; taskId: string; leaseToken: string; workerId?: string }

export function registerWorkerRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  const stageLeases = (stage: string): StageLeases => {
    const leases = ctx.leases.get(stage);
    if (!leases) {
      throw new XprError(`body.stage: unknown stage "${stage}" (known: ${ctx.stages.join(', ') || 'none'})`, {
        hint: 'Start the worker with --stage set to a stage of a workflow this executor was launched with.',
      });
    }
    return leases;
  };

  app.post<{ Body: { stage: string; workerId: string; cores?: number; waitMs?: number } }>('/api/v1/workers/lease', {
    schema: {
      summary: 'Lease the next task of a stage: 200 with the task, or 204 when none came within the wait (at most 20 s)',
      tags: ['workers'],
      body: leaseBody,
    },
  }, async (request, reply) => {
    const { stage, workerId } = request.body;
    const leases = stageLeases(stage);
    ctx.live.seen(stage, workerId);
    // A client that hangs up stops waiting: its task must not be leased to nobody.
    const gone = new AbortController();
    const onClose = (): void => gone.abort();
    reply.raw.once('close', onClose);
    try {
      const lease = await leases.lease(request.body.waitMs ?? MAX_LEASE_WAIT_MS, gone.signal);
      ctx.live.seen(stage, workerId);
      if (!lease) return reply.code(204).send();
      ctx.live.leased(stage, lease.leaseToken, workerId);
      // The worker cannot know the executor's lock duration otherwise, and must beat within it.
      return { ...lease, lockDurationMs: leases.lockDurationMs };
    } finally {
      reply.raw.off('close', onClose);
    }
  });

  app.post<{ Body: LeaseIds }>('/api/v1/workers/heartbeat', {
    schema: { summary: 'Extend a lease; 409 when it was lost, 404 when the task is gone', tags: ['workers'], body: heartbeatBody },
  }, async (request) => {
    const { stage, taskId, leaseToken, workerId } = request.body;
    await stageLeases(stage).heartbeat(taskId, leaseToken);
    ctx.live.heard(stage, leaseToken, workerId);
    return { ok: true };
  });

  app.post<{ Body: LeaseIds & { outcome: TaskOutcome } }>('/api/v1/workers/complete', {
    schema: { summary: "Report a leased task's result", tags: ['workers'], body: completeBody },
  }, async (request) => {
    const { stage, taskId, leaseToken, outcome } = request.body;
    const leases = stageLeases(stage);
    const job = await leases.leasedTask(taskId);
    // Under the shared key when the result does not depend on the submission's input.
    const key = outcome.readInput ? taskId : job.data.sharedKey;
    await ctx.store.putCache(key, { value: outcome.value, stage, at: Date.now() });
    await leases.complete(job, leaseToken, outcome);
    ctx.live.heard(stage, leaseToken, request.body.workerId, true);
    return { ok: true };
  });

  app.post<{ Body: LeaseIds & { error: SerializedError; transient: boolean } }>('/api/v1/workers/fail', {
    schema: { summary: "Report a leased task's failure: a stage error fails it, a transient one retries it", tags: ['workers'], body: failBody },
  }, async (request) => {
    const { stage, taskId, leaseToken, error, transient } = request.body;
    await stageLeases(stage).fail(taskId, leaseToken, error, transient);
    ctx.live.heard(stage, leaseToken, request.body.workerId, true);
    return { ok: true };
  });
}
