// The executor's HTTP gateway: the one door for clients (submit, watch, list, cancel, retry,
// cache), for workers on other machines (leases, code) and for people (the dashboard at /ui).
// Everything is behind the token. Requests are checked against JSON schemas before a handler runs,
// and every answer to a client's mistake is a 4xx that names what to fix: a 500 means a bug.
import fastifySwagger from '@fastify/swagger';
import type { ConnectionOptions } from 'bullmq';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { Redis, type RedisOptions } from 'ioredis';
import { XprError } from '../errors.js';
import { bearerToken, refuse, TokenCheck } from './gateway-auth.js';
import { registerDashboard } from './gateway-dashboard.js';
import { EventHub } from './gateway-events.js';
import { LeaseLost, LiveWorkers, StageLeases } from './gateway-leases.js';
import { registerTaskRoutes } from './gateway-routes.js';
import { registerWorkerRoutes } from './gateway-worker-routes.js';
import { describeValidation, type ValidationFinding } from './gateway-schemas.js';
import { BULL_PREFIX, EVENTS_CHANNEL, queueName } from './keys.js';
import type { CacheEntry, CacheRecord, CacheStats, Submission, SubmissionStatus, WorkflowRecord } from './types.js';

/** What the gateway reads from the executor's store (`ExecutorStore` in store.ts). */
export interface GatewayStore {
  getSubmission(id: string, options?: { results?: boolean }): Promise<Submission | undefined>;
  listSubmissions(query: { status?: SubmissionStatus; offset: number; limit: number }): Promise<{ total: number; items: Submission[] }>;
  /** The registered workflow; an unknown name throws an XprError naming the known ones. */
  requireWorkflow(name: string): Promise<WorkflowRecord>;
  getCode(hash: string): Promise<string | undefined>;
  /** Stores a stage result (a remote worker's) before its task completes. */
  putCache(key: string, entry: CacheEntry): Promise<void>;
  importCache(records: CacheRecord[]): Promise<{ inserted: number; total: number }>;
  exportCache(): AsyncIterable<CacheRecord>;
  cacheStats(): Promise<CacheStats>;
  /** Deletes every cache entry; returns how many there were. */
  clearCache(): Promise<number>;
}

/** What the gateway asks of the coordinator: the changes to submissions. */
export interface GatewayCoordinator {
  submit(workflow: string, input: unknown): Promise<string>;
  /** Many inputs of one workflow at once, ids in order (one round trip when the coordinator has it). */
  submitMany?(workflow: string, inputs: unknown[]): Promise<string[]>;
  cancel(id: string): Promise<unknown>;
  retry(id: string): Promise<unknown>;
}

export interface GatewayOptions {
  store: GatewayStore;
  coordinator: GatewayCoordinator;
  /** Redis: its URL (redis://:password@host:port), ioredis options, or a client whose options are copied. */
  connection: string | ConnectionOptions;
  token: string;
  /** Every stage name of the launched workflows: one queue, one lease worker and one board each. */
  stages: readonly string[];
  /** A lease lasts this long without a heartbeat (default 30 s). */
  lockDurationMs?: number;
  /** How often expired leases are looked for (default: half the lock duration). */
  stalledIntervalMs?: number;
  /** Times a task may lose its worker before it fails (default 10: pilot jobs run out of time). */
  maxStalledCount?: number;
  /** Fastify's logger (default off: the executor logs what matters itself). */
  logger?: boolean;
}

/** The parts of a running gateway its routes share. */
export interface GatewayContext {
  store: GatewayStore;
  coordinator: GatewayCoordinator;
  stages: readonly string[];
  leases: Map<string, StageLeases>;
  live: LiveWorkers;
  events: EventHub;
}

/** Largest request body: a cache import or a batch of inputs can be big. */
const BODY_LIMIT = 256 * 1024 * 1024;

/** Builds the gateway (not yet listening): `await app.listen({ port, host })`, `await app.close()`. */
export async function buildGateway(options: GatewayOptions): Promise<FastifyInstance> {
  const check = new TokenCheck(options.token);
  const redisOptions = toRedisOptions(options.connection);
  const lockDurationMs = options.lockDurationMs ?? 30_000;
  const leases = new Map<string, StageLeases>();
  for (const stage of new Set(options.stages)) {
    leases.set(stage, new StageLeases(stage, queueName(stage), {
      connection: bullConnection(redisOptions),
      prefix: BULL_PREFIX,
      lockDurationMs,
      stalledIntervalMs: options.stalledIntervalMs ?? Math.max(500, Math.floor(lockDurationMs / 2)),
      maxStalledCount: options.maxStalledCount ?? 10,
    }));
  }
  const events = new EventHub(new Redis({ ...redisOptions, maxRetriesPerRequest: null }), EVENTS_CHANNEL);
  const ctx: GatewayContext = {
    store: options.store,
    coordinator: options.coordinator,
    stages: [...leases.keys()],
    leases,
    live: new LiveWorkers(),
    events,
  };

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: BODY_LIMIT,
    // Reject unknown fields instead of dropping them silently: a typo should be a 400, not ignored.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    schemaErrorFormatter: (errors, dataVar) => new Error(describeValidation(errors as ValidationFinding[], dataVar)),
  });
  app.addContentTypeParser(['application/x-ndjson', 'application/jsonl'], { parseAs: 'string' }, (_req, body, done) => {
    done(null, body);
  });

  app.addHook('onRequest', async (request, reply) => {
    if (isDashboardPath(request.url)) return; // the dashboard's own check also accepts its cookie
    const given = bearerToken(request);
    if (!check.matches(given)) return refuse(reply, given !== undefined);
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { status, message, hint } = classify(error);
    if (status >= 500) request.log.error(error);
    return reply.code(status).send({ statusCode: status, error: httpReason(status), message, ...(hint ? { hint } : {}) });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({
      statusCode: 404,
      error: 'Not Found',
      message: `No route ${request.method} ${request.url.split('?')[0]}: see /api/v1/openapi.json for the API.`,
    });
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'xpr executor', version: '1', description: 'Submit inputs to multi-stage workflows, watch them, fetch results; lease tasks as a remote worker.' },
      components: { securitySchemes: { token: { type: 'http', scheme: 'bearer' } } },
      security: [{ token: [] }],
    },
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerTaskRoutes(app, ctx);
  registerWorkerRoutes(app, ctx);
  await registerDashboard(app, { check, queues: [...leases.values()].map((l) => l.queue) });

  app.addHook('onReady', async () => {
    await Promise.all([events.start(), ...[...leases.values()].map((l) => l.start())]);
  });
  // Open SSE streams and long-polled leases would hold `close()` up: end them first.
  app.addHook('preClose', async () => {
    await events.close();
    await Promise.all([...leases.values()].map((l) => l.close()));
  });
  return app;
}

function isDashboardPath(url: string): boolean {
  return url === '/ui' || url.startsWith('/ui/') || url.startsWith('/ui?');
}

/** ioredis options from what the caller gave: the gateway makes its own connections from them. */
function toRedisOptions(connection: string | ConnectionOptions): RedisOptions {
  if (typeof connection === 'string') return redisUrlOptions(connection);
  if (connection instanceof Redis) return { ...connection.options };
  return { ...(connection as RedisOptions) };
}

function redisUrlOptions(url: string): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new XprError(`The Redis URL ${JSON.stringify(url.replace(/:[^:@/]*@/, ':***@'))} is not a URL`, { hint: 'Use redis://:password@host:port' });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new XprError(`The Redis URL must start with redis:// or rediss://, not ${parsed.protocol}//`);
  }
  const db = Number(parsed.pathname.replace(/^\//, '') || 0);
  return {
    host: parsed.hostname || '127.0.0.1',
    port: Number(parsed.port || 6379),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** BullMQ's connection type for options the gateway built itself. */
function bullConnection(options: RedisOptions): ConnectionOptions {
  return { ...options, maxRetriesPerRequest: null } as ConnectionOptions;
}

/** Status, message and hint of an error that reached the error handler. */
function classify(error: FastifyError): { status: number; message: string; hint?: string } {
  if (error.validation) return { status: 400, message: error.message };
  if (error instanceof LeaseLost) return { status: error.status, message: error.message };
  if (error instanceof XprError) return { status: 400, message: error.message, ...(error.hint ? { hint: error.hint } : {}) };
  if (isRedisDown(error)) {
    return { status: 503, message: `The executor's Redis is not reachable (${error.message}); try again when it is back.` };
  }
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
  return { status, message: status === 500 ? `Internal error: ${error.message}` : error.message };
}

function isRedisDown(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || error.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|connect ECONNREFUSED/.test(error.message);
}

function httpReason(status: number): string {
  const reasons: Record<number, string> = {
    400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 409: 'Conflict', 413: 'Payload Too Large',
    415: 'Unsupported Media Type', 500: 'Internal Server Error', 503: 'Service Unavailable',
  };
  return reasons[status] ?? 'Error';
}
