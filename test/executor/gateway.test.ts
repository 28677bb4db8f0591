// The gateway over real HTTP and a real Redis: auth, status codes and messages, listing, events,
// the OpenAPI document, and the lease protocol of remote workers (complete, fail, and a lease that
// lapses without heartbeats and goes to another worker).
import { Job, Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecutorClient, SubmissionFailed } from '../../src/executor/client.js';
import { BULL_PREFIX, queueName } from '../../src/executor/keys.js';
import { followQueueEvents } from '../../src/executor/queue-events.js';
import type { SubmissionEvent, TaskData } from '../../src/executor/types.js';
import { XprError } from '../../src/errors.js';
import { decode, encode } from '../../src/util/codec.js';
import { startHarness, TOKEN, WORKFLOW, type Harness } from './gateway-harness.js';
import { freePort, skipWithoutRedis } from './redis.js';

const skip = skipWithoutRedis('the gateway tests');

/**
 * Lease timing: short enough that a lapsed lease shows within seconds, long enough that a loaded
 * 2-core machine (the whole suite running beside it) never leaves a whole lock duration between two
 * heartbeats sent every fifth of it. At 2 s one full run did, and the lease was lost.
 */
const LOCK_MS = 5000;

describe.skipIf(skip)('gateway', () => {
  let h: Harness;
  let client: ExecutorClient;
  const queues: Queue[] = [];

  beforeAll(async () => {
    h = await startHarness({ lockDurationMs: LOCK_MS, stalledIntervalMs: 500 });
    client = ExecutorClient.connect(h.url, TOKEN);
  });
  afterAll(async () => {
    await Promise.all(queues.map((q) => q.close()));
    await h?.close();
  });

  const call = async (method: string, path: string, body?: unknown, token: string | null = TOKEN) => {
    const res = await fetch(`${h.url}${path}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: any;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, json, text };
  };

  const stageQueue = (stage: string): Queue => {
    const q = new Queue(queueName(stage), { connection: { host: '127.0.0.1', port: h.redis.port, password: h.redis.password }, prefix: BULL_PREFIX });
    queues.push(q);
    return q;
  };
  let taskCounter = 0;
  const addTask = async (q: Queue, stage: string, attempts = 3): Promise<{ id: string; data: TaskData }> => {
    const n = ++taskCounter;
    const id = n.toString(16).padStart(64, 'a');
    const data: TaskData = {
      workflow: WORKFLOW.name, stage, stageIndex: 0, codeHash: WORKFLOW.codeHash,
      input: { n }, submissionInput: { n }, sharedKey: n.toString(16).padStart(64, 'b'),
    };
    await q.add(stage, data, { jobId: id, attempts, backoff: { type: 'exponential', delay: 1000 }, removeOnFail: false });
    return { id, data };
  };

  describe('auth', () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/api/v1/health'],
      ['GET', '/api/v1/tasks'],
      ['POST', '/api/v1/tasks', { workflow: 'wordcount', input: 1 }],
      ['GET', '/api/v1/tasks/xs_aaaaaaaaaaaa'],
      ['GET', '/api/v1/openapi.json'],
      ['POST', '/api/v1/workers/lease', { stage: 'split', workerId: 'w', waitMs: 0 }],
      ['GET', '/api/v1/cache/stats'],
    ];
    it.each(routes)('%s %s is 401 without a token and with a wrong one', async (method, path, body) => {
      const none = await call(method, path, body, null);
      expect(none.status).toBe(401);
      expect(none.json.message).toMatch(/No executor token/);
      const wrong = await call(method, path, body, `${TOKEN}x`);
      expect(wrong.status).toBe(401);
      expect(wrong.json.message).toMatch(/token is wrong/);
    });

    it('nothing was submitted by refused requests', () => {
      expect(h.coordinator.submitted).toEqual([]);
    });

    it('the dashboard is 401 without a token, a wrong cookie or a wrong ?token', async () => {
      expect((await fetch(`${h.url}/ui`)).status).toBe(401);
      expect((await fetch(`${h.url}/ui`, { headers: { cookie: 'xpr_executor_token=nope' } })).status).toBe(401);
      expect((await fetch(`${h.url}/ui?token=nope`, { redirect: 'manual' })).status).toBe(401);
      expect((await fetch(`${h.url}/ui/api/queues`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    });

    it('/ui?token= sets an HttpOnly SameSite=Strict cookie, then the cookie or a Bearer header opens it', async () => {
      const first = await fetch(`${h.url}/ui?token=${encodeURIComponent(TOKEN)}`, { redirect: 'manual' });
      expect(first.status).toBe(303);
      expect(first.headers.get('location')).toBe('/ui');
      const cookie = first.headers.get('set-cookie')!;
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/SameSite=Strict/);
      const page = await fetch(`${h.url}/ui`, { headers: { cookie: cookie.split(';')[0]! } });
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<html/i);
      const api = await fetch(`${h.url}/ui/api/queues`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(api.status).toBe(200);
      const names = ((await api.json()) as { queues: { name: string }[] }).queues.map((q) => q.name).sort();
      expect(names).toEqual(['xpr-stage-score', 'xpr-stage-split', 'xpr-stage-total']);
    });
  });

  describe('submissions', () => {
    it('POST /api/v1/tasks answers 201 with ids, one per input, in order', async () => {
      const one = await call('POST', '/api/v1/tasks', { workflow: 'wordcount', input: { text: 'a b' } });
      expect(one.status).toBe(201);
      expect(one.json.ids).toHaveLength(1);
      const many = await call('POST', '/api/v1/tasks', { workflow: 'wordcount', inputs: ['x', 'y', 'z'] });
      expect(many.status).toBe(201);
      expect(many.json.ids).toHaveLength(3);
      const inputs = h.coordinator.submitted.filter((s) => many.json.ids.includes(s.id)).map((s) => s.input);
      expect(inputs).toEqual(['x', 'y', 'z']);
    });

    it('decodes encoded inputs (a Map arrives as a Map)', async () => {
      const [id] = await client.submitMany('wordcount', [new Map([['k', 1n]])]);
      const got = h.coordinator.submitted.find((s) => s.id === id)!.input as Map<string, bigint>;
      expect(got).toBeInstanceOf(Map);
      expect(got.get('k')).toBe(1n);
    });

    it('an unknown workflow is a 400 naming the known ones', async () => {
      const res = await call('POST', '/api/v1/tasks', { workflow: 'nope', input: 1 });
      expect(res.status).toBe(400);
      expect(res.json.message).toMatch(/Unknown workflow "nope" \(known: another, wordcount\)/);
    });

    it.each([
      [{}, /body\.workflow is required/],
      [{ workflow: { name: 'wordcount' }, input: 1 }, /body\.workflow must be string/],
      [{ workflow: 'wordcount', input: 1, colour: 'red' }, /body\.colour is not a known field/],
      [{ workflow: 'wordcount' }, /either "input".*or "inputs"/],
      [{ workflow: 'wordcount', input: 1, inputs: [1] }, /either "input".*or "inputs"/],
      [{ workflow: 'wordcount', inputs: [] }, /body\.inputs must NOT have fewer than 1 items/],
      [{ workflow: 'wordcount', input: { $xpr: 'Nonsense' } }, /body\.input: unknown encoded type/],
    ])('a bad body %j is a 400 naming the field', async (body, message) => {
      const res = await call('POST', '/api/v1/tasks', body);
      expect(res.status).toBe(400);
      expect(res.json.message).toMatch(message);
    });

    it('malformed JSON is a 400, not a 500', async () => {
      const res = await fetch(`${h.url}/api/v1/tasks`, {
        method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"workflow":',
      });
      expect(res.status).toBe(400);
    });

    it.each([
      ['?limit=0', /query\.limit must be >= 1/],
      ['?limit=5000', /query\.limit must be <= 1000/],
      ['?offset=-1', /query\.offset must be >= 0/],
      ['?offset=abc', /query\.offset must be integer/],
      ['?status=done', /query\.status must be one of: waiting, running, errored, success, cancelled/],
    ])('GET /api/v1/tasks%s is a 400 naming the parameter', async (qs, message) => {
      const res = await call('GET', `/api/v1/tasks${qs}`);
      expect(res.status).toBe(400);
      expect(res.json.message).toMatch(message);
    });

    it('filters by status and paginates in one request, newest first', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push(await client.submit('another', i));
      const successes = [ids[0]!, ids[2]!, ids[4]!, ids[6]!];
      for (const id of successes) await h.coordinator.settle(id, 'success', { result: id });
      const page = await client.list({ status: 'success', offset: 1, limit: 2 });
      expect(page.total).toBe(4);
      expect(page.items.map((s) => s.id)).toEqual([ids[4], ids[2]]);
      expect(page.items.every((s) => s.status === 'success' && s.result === undefined)).toBe(true);
      const all = await client.list({ limit: 1000 });
      expect(all.total).toBe(h.coordinator.submitted.length);
    });

    it('GET /api/v1/tasks/:id gives the submission; its result only with ?results=true; 404 when unknown', async () => {
      const id = await client.submit('wordcount', 'text');
      await h.coordinator.settle(id, 'success', { result: new Set([1, 2]) });
      const plain = await call('GET', `/api/v1/tasks/${id}`);
      expect(plain.status).toBe(200);
      expect(plain.json.id).toBe(id);
      expect(plain.json.stages.map((s: { stage: string }) => s.stage)).toEqual(['split', 'score', 'total']);
      expect(plain.json).not.toHaveProperty('result');
      const sub = await client.get(id, { results: true });
      expect(sub.result).toEqual(new Set([1, 2]));
      const missing = await call('GET', '/api/v1/tasks/xs_doesnotexist');
      expect(missing.status).toBe(404);
      expect(missing.json.message).toMatch(/No submission "xs_doesnotexist"/);
    });

    it('DELETE cancels, POST retry resumes; both 404 for an unknown id', async () => {
      const id = await client.submit('wordcount', 'c');
      expect((await client.cancel(id)).status).toBe('cancelled');
      expect((await client.retry(id)).status).toBe('waiting');
      expect((await call('DELETE', '/api/v1/tasks/xs_doesnotexist')).status).toBe(404);
      expect((await call('POST', '/api/v1/tasks/xs_doesnotexist/retry')).status).toBe(404);
      expect((await call('GET', '/api/v1/tasks/xs_doesnotexist/events')).status).toBe(404);
    });

    it('an unknown route is a 404 pointing at the API document', async () => {
      const res = await call('GET', '/api/v1/nothing');
      expect(res.status).toBe(404);
      expect(res.json.message).toMatch(/openapi\.json/);
    });
  });

  describe('events', () => {
    it('streams the current status first, then events in order, and ends after a final status', async () => {
      const id = await client.submit('wordcount', 'watch me');
      const events: SubmissionEvent[] = [];
      let first!: () => void;
      const gotFirst = new Promise<void>((r) => { first = r; });
      const watching = (async () => {
        for await (const e of client.watch(id)) {
          events.push(e);
          if (events.length === 1) first();
        }
      })();
      await gotFirst;
      const sent: SubmissionEvent[] = [
        { type: 'stage', id, stage: 'split', status: 'running' },
        ...[1, 2, 3, 4, 5].map((done): SubmissionEvent => ({ type: 'progress', id, stage: 'score', done, total: 5 })),
        { type: 'stage', id, stage: 'score', status: 'success' },
      ];
      for (const e of sent) await h.store.publish(e);
      // Another submission's events never reach this stream.
      await h.store.publish({ type: 'progress', id: 'xs_someoneelse', stage: 'score', done: 9, total: 9 });
      await h.coordinator.settle(id, 'success', { result: 42 });
      await watching;
      expect(events).toEqual([{ type: 'status', id, status: 'waiting' }, ...sent, { type: 'status', id, status: 'success' }]);
    });

    it('waitUntilComplete returns the decoded result, or throws the stage error', async () => {
      const ok = await client.submit('wordcount', 'fine');
      const waiting = client.waitUntilComplete(ok);
      await h.coordinator.settle(ok, 'success', { result: new Map([['words', 2]]) });
      expect(await waiting).toEqual(new Map([['words', 2]]));

      const bad = await client.submit('wordcount', 'broken');
      const failing = client.waitUntilComplete(bad);
      const error = { stage: 'score', type: 'RangeError', message: 'word too long', stack: 'RangeError: word too long\n    at score (workflow.js:3:9)' };
      await h.coordinator.settle(bad, 'errored', { error });
      const err = await failing.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SubmissionFailed);
      expect((err as Error).message).toBe(`Submission ${bad} failed in stage "score": RangeError: word too long`);
      expect((err as Error).stack).toContain('workflow.js:3:9');
    });
  });

  describe('client errors', () => {
    it('a wrong token names the URL, the status and the token', async () => {
      const wrong = ExecutorClient.connect(h.url, 'wrong');
      const err = await wrong.health().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(XprError);
      expect((err as XprError).message).toContain(`${h.url}/api/v1/health answered 401`);
      expect((err as XprError).hint).toMatch(/token/);
    });

    it('nobody listening: "is the executor running?"', async () => {
      const port = await freePort();
      const err = await ExecutorClient.connect(`http://127.0.0.1:${port}`, TOKEN).list().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(XprError);
      expect((err as XprError).message).toContain(`http://127.0.0.1:${port}`);
      expect((err as XprError).message).toContain('ECONNREFUSED');
      expect((err as XprError).hint).toMatch(/Is the executor running\? Start it with `xpr executor launch`/);
    });

    it('a 400 keeps the gateway message', async () => {
      const err = await client.submit('nope', 1).catch((e: unknown) => e);
      expect((err as XprError).message).toMatch(/answered 400: Unknown workflow "nope"/);
    });
  });

  describe('OpenAPI', () => {
    it('lists every route of the API and not the dashboard', async () => {
      const doc = (await call('GET', '/api/v1/openapi.json')).json as { openapi: string; paths: Record<string, Record<string, unknown>> };
      expect(doc.openapi).toMatch(/^3\./);
      const routes = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort();
      expect(routes).toEqual([
        'DELETE /api/v1/cache', 'DELETE /api/v1/tasks/{id}',
        'GET /api/v1/cache/export', 'GET /api/v1/cache/stats', 'GET /api/v1/code/{hash}', 'GET /api/v1/health',
        'GET /api/v1/tasks', 'GET /api/v1/tasks/{id}', 'GET /api/v1/tasks/{id}/events',
        'POST /api/v1/cache/import', 'POST /api/v1/tasks', 'POST /api/v1/tasks/{id}/retry',
        'POST /api/v1/workers/complete', 'POST /api/v1/workers/fail', 'POST /api/v1/workers/heartbeat', 'POST /api/v1/workers/lease',
      ]);
      const submit = doc.paths['/api/v1/tasks']!['post'] as { requestBody: { content: Record<string, { schema: { required: string[] } }> } };
      expect(submit.requestBody.content['application/json']!.schema.required).toEqual(['workflow']);
    });
  });

  describe('code and cache', () => {
    it('serves a code bundle by hash; 404 for an unknown one; 400 for a malformed one', async () => {
      const hash = 'd'.repeat(64);
      await h.store.putCode(hash, 'export const x = 1;\n');
      const res = await call('GET', `/api/v1/code/${hash}`);
      expect(res.status).toBe(200);
      expect(res.text).toBe('export const x = 1;\n');
      expect((await call('GET', `/api/v1/code/${'e'.repeat(64)}`)).status).toBe(404);
      const bad = await call('GET', '/api/v1/code/a.b');
      expect(bad.status).toBe(400);
      expect(bad.json.message).toMatch(/params\.hash must match pattern/);
    });

    it('imports JSON Lines and { records }, exports, counts and clears', async () => {
      const rec = (i: number, stage: string) => ({ key: i.toString(16).padStart(64, '0'), stage, at: 1, value: { i } });
      const lines = [rec(1, 'split'), rec(2, 'score')].map((r) => JSON.stringify(r)).join('\n');
      expect(await client.cacheImport(lines)).toEqual({ inserted: 2, total: 2 });
      expect(await client.cacheImport([rec(2, 'score'), rec(3, 'score')])).toEqual({ inserted: 1, total: 2 });
      const stats = await client.cacheStats();
      expect(stats.stages).toMatchObject({ split: 1, score: 2 });
      const exported = (await client.cacheRecords()).filter((r) => r.at === 1).sort((a, b) => a.key.localeCompare(b.key));
      expect(exported).toEqual([rec(1, 'split'), rec(2, 'score'), rec(3, 'score')]);
      const bad = await call('POST', '/api/v1/cache/import', { records: [{ key: 'short', stage: 's', at: 1, value: 1 }] });
      expect(bad.status).toBe(400);
      expect(bad.json.message).toMatch(/not a sha256/);
      const notJson = await fetch(`${h.url}/api/v1/cache/import`, {
        method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-ndjson' }, body: '{"key":\n',
      });
      expect(notJson.status).toBe(400);
      expect(((await notJson.json()) as { message: string }).message).toMatch(/body line 1: not JSON/);
      const cleared = await client.cacheClear();
      expect(cleared.removed).toBeGreaterThanOrEqual(3);
      expect((await client.cacheStats()).entries).toBe(0);
    });
  });

  describe('leases', () => {
    const lease = (stage: string, workerId: string, waitMs = 20_000) =>
      call('POST', '/api/v1/workers/lease', { stage, workerId, cores: 2, waitMs });

    it('an unknown stage is a 400 naming the known ones; a missing field is named', async () => {
      const res = await lease('nope', 'w');
      expect(res.status).toBe(400);
      expect(res.json.message).toMatch(/unknown stage "nope" \(known: split, score, total\)/);
      const missing = await call('POST', '/api/v1/workers/lease', { stage: 'split' });
      expect(missing.status).toBe(400);
      expect(missing.json.message).toBe('body.workerId is required');
    });

    it('answers 204 when no task comes within the wait', async () => {
      const res = await lease('total', 'idle', 200);
      expect(res.status).toBe(204);
    });

    it('lease → heartbeats → complete: the result is cached first, then the job completes', async () => {
      const q = stageQueue('split');
      const task = await addTask(q, 'split');
      const got = await lease('split', 'remote-1');
      expect(got.status).toBe(200);
      expect(got.json.taskId).toBe(task.id);
      expect(got.json.data).toEqual(task.data);
      const ids = { stage: 'split', taskId: task.id, leaseToken: got.json.leaseToken };
      // Held past several lock durations by heartbeats alone: the stalled check runs meanwhile.
      const until = Date.now() + 3 * LOCK_MS;
      while (Date.now() < until) {
        expect((await call('POST', '/api/v1/workers/heartbeat', ids)).status).toBe(200);
        await new Promise((r) => setTimeout(r, LOCK_MS / 5));
      }
      const health = (await call('GET', '/api/v1/health')).json;
      expect(health).toMatchObject({ redis: 'ok' });
      expect(health.workers.split).toBe(1);
      const outcome = { value: { words: ['a', 'b'] }, readInput: false };
      const done = await call('POST', '/api/v1/workers/complete', { ...ids, outcome });
      expect(done.status).toBe(200);
      const job = (await Job.fromId(q, task.id))!;
      expect(await job.getState()).toBe('completed');
      expect(job.returnvalue).toEqual(outcome);
      expect(await h.store.getCache(task.data.sharedKey)).toMatchObject({ stage: 'split', value: outcome.value });
      // A second report of the same lease is refused: the task is no longer leased.
      expect((await call('POST', '/api/v1/workers/complete', { ...ids, outcome })).status).toBe(409);
    });

    it('a task that arrives after its waiter gave up goes to the next lease', async () => {
      const q = stageQueue('score');
      expect((await lease('score', 'hasty', 50)).status).toBe(204);
      const task = await addTask(q, 'score');
      const next = await lease('score', 'patient');
      expect(next.status).toBe(200);
      expect(next.json.taskId).toBe(task.id);
      await call('POST', '/api/v1/workers/complete', { stage: 'score', taskId: task.id, leaseToken: next.json.leaseToken, outcome: { value: 1, readInput: false } });
      expect(await (await Job.fromId(q, task.id))!.getState()).toBe('completed');
    });

    it('a result that read ctx.input is cached under the task id', async () => {
      const q = stageQueue('split');
      const task = await addTask(q, 'split');
      const got = await lease('split', 'remote-1');
      expect(got.json.taskId).toBe(task.id);
      const outcome = { value: 7, readInput: true };
      await call('POST', '/api/v1/workers/complete', { stage: 'split', taskId: task.id, leaseToken: got.json.leaseToken, outcome });
      expect(await h.store.getCache(task.id)).toMatchObject({ value: 7 });
      expect(await h.store.getCache(task.data.sharedKey)).toBeUndefined();
    });

    it('lease → no heartbeat → stalled → leased again by another worker; the first lease is refused', async () => {
      const q = stageQueue('score');
      const connection = { host: '127.0.0.1', port: h.redis.port, password: h.redis.password };
      const events = await followQueueEvents(h.store.redis, queueName('score'), { connection, prefix: BULL_PREFIX });
      await events.waitUntilReady();
      try {
        const task = await addTask(q, 'score');
        const first = await lease('score', 'doomed');
        expect(first.json.taskId).toBe(task.id);
        const stalled = new Promise<string>((r) => events.on('stalled', ({ jobId }) => r(jobId)));
        // The first worker goes silent; the second is already waiting when the task comes back.
        const second = await lease('score', 'rescuer');
        expect(await stalled).toBe(task.id);
        expect(second.status).toBe(200);
        expect(second.json.taskId).toBe(task.id);
        expect(second.json.leaseToken).not.toBe(first.json.leaseToken);
        const old = { stage: 'score', taskId: task.id, leaseToken: first.json.leaseToken };
        const beat = await call('POST', '/api/v1/workers/heartbeat', old);
        expect(beat.status).toBe(409);
        expect(beat.json.message).toMatch(/lease on task .* has expired/);
        const outcome = { value: 'scored', readInput: false };
        expect((await call('POST', '/api/v1/workers/complete', { ...old, outcome })).status).toBe(409);
        const done = await call('POST', '/api/v1/workers/complete', { ...old, leaseToken: second.json.leaseToken, outcome });
        expect(done.status).toBe(200);
        expect(await (await Job.fromId(q, task.id))!.getState()).toBe('completed');
      } finally {
        await events.close();
      }
    });

    it('a stage error fails the task at once; a transient error retries it', async () => {
      const q = stageQueue('total');
      const stageError = await addTask(q, 'total');
      const a = await lease('total', 'w');
      expect(a.json.taskId).toBe(stageError.id);
      const error = { name: 'TypeError', message: 'x is not a function', stack: 'TypeError: x is not a function\n    at total (w.js:1:1)' };
      const failed = await call('POST', '/api/v1/workers/fail', { stage: 'total', taskId: stageError.id, leaseToken: a.json.leaseToken, error, transient: false });
      expect(failed.status).toBe(200);
      const job = (await Job.fromId(q, stageError.id))!;
      expect(await job.getState()).toBe('failed');
      expect(job.attemptsMade).toBe(1);
      expect(JSON.parse(job.failedReason)).toEqual(error);

      const transient = await addTask(q, 'total');
      const b = await lease('total', 'w');
      expect(b.json.taskId).toBe(transient.id);
      const lost = { name: 'Error', message: 'code fetch failed', stack: 'Error: code fetch failed' };
      await call('POST', '/api/v1/workers/fail', { stage: 'total', taskId: transient.id, leaseToken: b.json.leaseToken, error: lost, transient: true });
      expect(await (await Job.fromId(q, transient.id))!.getState()).toBe('delayed');
      // After its backoff it is leased again.
      const again = await lease('total', 'w');
      expect(again.json.taskId).toBe(transient.id);
      expect(again.json.attemptsMade).toBe(1);
    });

    it('clearing failures removes the failed tasks kept in the stage queues, not the cache', async () => {
      const q = stageQueue('total');
      const failedBefore = await q.getFailedCount();
      expect(failedBefore).toBeGreaterThan(0);
      const entries = (await client.cacheStats()).entries;
      const cleared = await client.cacheClear({ failed: true });
      expect(cleared).toEqual({ removed: failedBefore, failed: true });
      expect(await q.getFailedCount()).toBe(0);
      expect((await client.cacheStats()).entries).toBe(entries);
    });

    it('an unknown task is a 404 for heartbeat, complete and fail', async () => {
      const ids = { stage: 'split', taskId: 'f'.repeat(64), leaseToken: 'x' };
      expect((await call('POST', '/api/v1/workers/heartbeat', ids)).status).toBe(404);
      expect((await call('POST', '/api/v1/workers/complete', { ...ids, outcome: { value: 1, readInput: false } })).status).toBe(404);
      expect((await call('POST', '/api/v1/workers/fail', { ...ids, error: { name: 'E', message: 'm' }, transient: false })).status).toBe(404);
      const bad = await call('POST', '/api/v1/workers/complete', { ...ids, outcome: { value: 1 } });
      expect(bad.status).toBe(400);
      expect(bad.json.message).toBe('body.outcome.readInput is required');
    });

    it('health counts the queues\' own workers and remote ones, not the gateway\'s lease workers', async () => {
      const before = (await call('GET', '/api/v1/health')).json;
      // The remote workers of the tests above ("idle" and "w"), seen in the last 30 s.
      expect(before.workers.total).toBe(2);
      const local = new Worker(queueName('total'), async () => 1, { connection: { host: '127.0.0.1', port: h.redis.port, password: h.redis.password, maxRetriesPerRequest: null }, prefix: BULL_PREFIX });
      await local.waitUntilReady();
      try {
        const after = (await call('GET', '/api/v1/health')).json;
        expect(after.workers.total).toBe(3);
      } finally {
        await local.close();
      }
    });
  });
});

describe.skipIf(skip)('gateway with the executor coordinator', () => {
  let h: Harness;
  let client: ExecutorClient;

  beforeAll(async () => {
    h = await startHarness({ realCoordinator: true });
    client = ExecutorClient.connect(h.url, TOKEN);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Acts as a remote worker of `stage` for `count` tasks, over HTTP only. */
  async function serve(stage: string, count: number, run: (input: unknown) => unknown): Promise<void> {
    for (let i = 0; i < count; i++) {
      const res = await fetch(`${h.url}/api/v1/workers/lease`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ stage, workerId: `remote-${stage}` }),
      });
      expect(res.status).toBe(200);
      const lease = (await res.json()) as { taskId: string; leaseToken: string; data: TaskData };
      const value = encode(run(decode(lease.data.input)));
      const done = await fetch(`${h.url}/api/v1/workers/complete`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ stage, taskId: lease.taskId, leaseToken: lease.leaseToken, outcome: { value, readInput: false } }),
      });
      expect(done.status).toBe(200);
    }
  }

  it('a submission runs through three stages of remote workers; watch sees it, waitUntilComplete gets the result', async () => {
    const id = await client.submit('wordcount', 'a bb ccc');
    const events: SubmissionEvent[] = [];
    const watching = (async () => {
      for await (const e of client.watch(id)) events.push(e);
    })();
    const result = client.waitUntilComplete(id);
    result.catch(() => {}); // awaited below; a failure before that must not be an unhandled rejection
    await serve('split', 1, (text) => (text as string).split(' '));
    await serve('score', 3, (word) => (word as string).length);
    await serve('total', 1, (scores) => (scores as number[]).reduce((a, b) => a + b, 0));
    expect(await result).toBe(6);
    await watching;
    expect(events[0]).toMatchObject({ type: 'status', id });
    expect(events.at(-1)).toEqual({ type: 'status', id, status: 'success' });
    const scoreProgress = events.filter((e) => e.type === 'progress' && e.stage === 'score').map((e) => (e as { done: number }).done);
    expect(scoreProgress.at(-1)).toBe(3);
    expect(scoreProgress).toEqual([...scoreProgress].sort((a, b) => a - b));
    // Each stage's result is in the cache, shared by later submissions of the same input.
    expect((await client.cacheStats()).stages).toMatchObject({ split: 1, score: 3, total: 1 });
  });
});

describe.skipIf(skip)('gateway when things go away', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('health says Redis is down while it is, and ok once it is back', async () => {
    const client = ExecutorClient.connect(h.url, TOKEN);
    expect((await client.health()).redis).toBe('ok');
    h.redis.kill();
    expect((await client.health()).redis).toBe('down');
    await h.redis.restart();
    // ioredis reconnects with backoff: ask until it has.
    let health = await client.health();
    for (let i = 0; i < 50 && health.redis !== 'ok'; i++) health = await client.health();
    expect(health.redis).toBe('ok');
  });

  it('close() ends open event streams and long-polled leases instead of waiting for them', async () => {
    const client = ExecutorClient.connect(h.url, TOKEN);
    const id = await client.submit('wordcount', 'open');
    const events: SubmissionEvent[] = [];
    let first!: () => void;
    const gotFirst = new Promise<void>((r) => { first = r; });
    const watching = (async () => {
      for await (const e of client.watch(id)) { events.push(e); first(); }
    })();
    const polling = fetch(`${h.url}/api/v1/workers/lease`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ stage: 'split', workerId: 'patient' }),
    });
    await gotFirst;
    const started = Date.now();
    await h.app.close();
    expect(Date.now() - started).toBeLessThan(10_000);
    await watching;
    expect(events).toEqual([{ type: 'status', id, status: 'waiting' }]);
    expect((await polling).status).toBe(204);
  });
});
