// The gateway's routes for clients: submissions (submit, list, get, watch, cancel, retry), the
// executor's health and the result cache.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Readable } from 'node:stream';
import { XprError } from '../errors.js';
import { decode } from '../util/codec.js';
import type { GatewayContext } from './gateway.js';
import { LEASE_WORKER_NAME } from './gateway-leases.js';
import {
  cacheImportBody, clearQuery, codeParams, getQuery, idParams, listQuery, submitBody,
} from './gateway-schemas.js';
import type { CacheRecord, Submission, SubmissionEvent, SubmissionStatus } from './types.js';

/** Statuses after which a submission's stream of events ends. */
const FINAL: ReadonlySet<SubmissionStatus> = new Set(['success', 'errored', 'cancelled']);
/** A comment line this often keeps proxies from closing a quiet event stream. */
const KEEPALIVE_MS = 15_000;
/** Submissions created at once from one request; more would hold the coordinator in one go. */
const SUBMIT_CHUNK = 64;

function notFound(reply: FastifyReply, id: string): FastifyReply {
  return reply.code(404).send({
    statusCode: 404,
    error: 'Not Found',
    message: `No submission "${id}" in this executor: check the id (\`xpr executor list\` shows them).`,
  });
}

export function registerTaskRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  const { store, coordinator } = ctx;

  app.post<{ Body: { workflow: string; input?: unknown; inputs?: unknown[] } }>('/api/v1/tasks', {
    schema: { summary: 'Submit one input (input) or many (inputs) to a workflow', tags: ['tasks'], body: submitBody },
  }, async (request, reply) => {
    const body = request.body;
    const hasOne = Object.prototype.hasOwnProperty.call(body, 'input');
    if (hasOne === (body.inputs !== undefined)) {
      throw new XprError('body must have either "input" (one submission) or "inputs" (an array, one submission each), not both or neither');
    }
    await store.requireWorkflow(body.workflow);
    const inputs = hasOne ? [decodeField(body.input, 'body.input')] : body.inputs!.map((v, i) => decodeField(v, `body.inputs[${i}]`));
    const ids: string[] = [];
    for (let i = 0; i < inputs.length; i += SUBMIT_CHUNK) {
      const chunk = inputs.slice(i, i + SUBMIT_CHUNK);
      ids.push(...await (coordinator.submitMany
        ? coordinator.submitMany(body.workflow, chunk)
        : Promise.all(chunk.map((input) => coordinator.submit(body.workflow, input)))));
    }
    return reply.code(201).send({ ids });
  });

  app.get<{ Querystring: { status?: SubmissionStatus; offset: number; limit: number } }>('/api/v1/tasks', {
    schema: { summary: 'List submissions, newest first, filtered by status and paginated', tags: ['tasks'], querystring: listQuery },
  }, async (request) => {
    const { status, offset, limit } = request.query;
    return store.listSubmissions({ ...(status ? { status } : {}), offset, limit });
  });

  app.get<{ Params: { id: string }; Querystring: { results: boolean } }>('/api/v1/tasks/:id', {
    schema: { summary: 'A submission: status, stages, progress, error; its result with ?results=true', tags: ['tasks'], params: idParams, querystring: getQuery },
  }, async (request, reply) => {
    const sub = await store.getSubmission(request.params.id, { results: request.query.results });
    return sub ?? notFound(reply, request.params.id);
  });

  app.delete<{ Params: { id: string } }>('/api/v1/tasks/:id', {
    schema: { summary: 'Cancel a submission', tags: ['tasks'], params: idParams },
  }, async (request, reply) => {
    const { id } = request.params;
    if (!(await store.getSubmission(id))) return notFound(reply, id);
    await coordinator.cancel(id);
    return (await store.getSubmission(id)) ?? notFound(reply, id);
  });

  app.post<{ Params: { id: string } }>('/api/v1/tasks/:id/retry', {
    schema: { summary: 'Run an errored or cancelled submission again from the stage that failed', tags: ['tasks'], params: idParams },
  }, async (request, reply) => {
    const { id } = request.params;
    if (!(await store.getSubmission(id))) return notFound(reply, id);
    await coordinator.retry(id);
    return (await store.getSubmission(id)) ?? notFound(reply, id);
  });

  app.get<{ Params: { id: string } }>('/api/v1/tasks/:id/events', {
    schema: { summary: 'Server-sent events of a submission; the first is its current status', tags: ['tasks'], params: idParams },
  }, async (request, reply) => {
    const { id } = request.params;
    await ctx.events.start();
    // Listen before reading the current state, so that nothing happening in between is missed.
    const early: SubmissionEvent[] = [];
    let deliver: (event: SubmissionEvent) => void = (event) => early.push(event);
    const unlisten = ctx.events.listen(id, (event) => deliver(event));
    let sub: Submission | undefined;
    try {
      sub = await store.getSubmission(id);
    } catch (err) {
      unlisten();
      throw err;
    }
    if (!sub) {
      unlisten();
      return notFound(reply, id);
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    let seq = 0;
    let ended = false;
    const keepalive = setInterval(() => raw.write(': keep-alive\n\n'), KEEPALIVE_MS);
    let forgetClose = (): void => {};
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearInterval(keepalive);
      unlisten();
      forgetClose();
      raw.end();
    };
    const send = (event: SubmissionEvent): void => {
      if (ended) return;
      raw.write(`id: ${++seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      if (event.type === 'status' && FINAL.has(event.status)) end();
    };
    request.raw.once('close', end);
    forgetClose = ctx.events.onClose(end);

    send({ type: 'status', id, status: sub.status, ...(sub.error ? { error: sub.error } : {}) });
    for (const stage of sub.stages) {
      if (stage.total > 0) send({ type: 'progress', id, stage: stage.stage, done: stage.done, total: stage.total });
    }
    for (const event of early.splice(0)) send(event);
    deliver = send;
  });

  app.get('/api/v1/health', {
    schema: { summary: "Redis reachable, and live workers per stage (the queues' own and remote ones seen in the last 30 s)", tags: ['executor'] },
  }, async () => {
    let redis: 'ok' | 'down' = 'ok';
    const workers: Record<string, number> = {};
    for (const [stage, lease] of ctx.leases) {
      let local = 0;
      try {
        const clients = await withTimeout(lease.queue.getWorkers(), 2000);
        local = clients.filter((c) => !String(c.rawname ?? '').endsWith(`:w:${LEASE_WORKER_NAME}`)).length;
      } catch {
        redis = 'down';
      }
      workers[stage] = local + ctx.live.count(stage);
    }
    return { redis, workers };
  });

  app.get<{ Params: { hash: string } }>('/api/v1/code/:hash', {
    schema: { summary: "A workflow module's code bundle, for remote workers", tags: ['workers'], params: codeParams },
  }, async (request, reply) => {
    const code = await store.getCode(request.params.hash);
    if (code === undefined) {
      return reply.code(404).send({
        statusCode: 404,
        error: 'Not Found',
        message: `No code bundle ${request.params.hash} in this executor: was it relaunched with another workflow module?`,
      });
    }
    return reply.type('text/javascript; charset=utf-8').send(code);
  });

  app.post<{ Body: string | { records: unknown[] } }>('/api/v1/cache/import', {
    schema: { summary: 'Add cache records (JSON Lines, or { records })', tags: ['cache'], body: cacheImportBody },
  }, async (request) => {
    const body = request.body;
    const records = typeof body === 'string' ? parseJsonLines(body) : body.records;
    return store.importCache(records as CacheRecord[]);
  });

  app.get('/api/v1/cache/export', {
    schema: { summary: 'Every cache record, as JSON Lines', tags: ['cache'] },
  }, async (_request, reply) => {
    const lines = Readable.from((async function* () {
      for await (const record of store.exportCache()) yield `${JSON.stringify(record)}\n`;
    })());
    return reply.type('application/x-ndjson; charset=utf-8').send(lines);
  });

  app.get('/api/v1/cache/stats', { schema: { summary: 'Cache entries, per stage', tags: ['cache'] } }, async () => store.cacheStats());

  app.delete<{ Querystring: { failed: boolean } }>('/api/v1/cache', {
    schema: {
      summary: 'Clear the result cache; with failed=true, clear the failed tasks kept in the stage queues instead (they run again when submitted)',
      tags: ['cache'],
      querystring: clearQuery,
    },
  }, async (request) => {
    // Failures are never cached: what "clearing failures" can mean is forgetting failed tasks.
    if (!request.query.failed) return { removed: await store.clearCache(), failed: false };
    let removed = 0;
    for (const lease of ctx.leases.values()) removed += (await lease.queue.clean(0, 0, 'failed')).length;
    return { removed, failed: true };
  });
}

/** An encoded value of the request, decoded; a malformed one is the client's mistake, named. */
function decodeField(value: unknown, field: string): unknown {
  try {
    return decode(value);
  } catch (err) {
    throw new XprError(`${field}: ${(err as Error).message} (values are JSON, or encoded with xpr's value codec)`);
  }
}

function parseJsonLines(text: string): unknown[] {
  const records: unknown[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    try {
      records.push(JSON.parse(line));
    } catch (err) {
      throw new XprError(`body line ${i + 1}: not JSON (${(err as Error).message})`, { hint: 'A cache file has one JSON record per line, as `xpr executor cache export` writes it.' });
    }
  }
  return records;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}
