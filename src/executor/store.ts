// The executor's records in Redis: submissions and their listing, the tasks each stage of a
// submission waits for, the waiters of each task, the result cache, stage code, the workflow
// registry and the event channel. Every key comes from keys.ts. Nothing here is kept in process:
// any number of gateways and a restarted coordinator see the same state.
import { randomBytes } from 'node:crypto';
import { Redis, type ChainableCommander } from 'ioredis';
import { XprError } from '../errors.js';
import { EVENTS_CHANNEL, keys } from './keys.js';
import type {
  CacheEntry, CacheRecord, CacheStats, Submission, SubmissionEvent, SubmissionStatus, WorkflowRecord,
} from './types.js';

/** `xs_` + 12 random base32 characters: short to type, 60 random bits. */
export function newSubmissionId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let id = 'xs_';
  for (const byte of randomBytes(12)) id += alphabet[byte & 31];
  return id;
}

export interface ListOptions {
  status?: SubmissionStatus;
  offset?: number;
  limit?: number;
}

/** Changes to a submission's hash made together with its record (one MULTI). */
export interface SubmissionFields {
  set?: Record<string, string>;
  del?: string[];
  /** Published once the change is stored. */
  events?: SubmissionEvent[];
}

// One round trip for a page of the listing, however long the page: the count, the ids and the
// records are read inside Redis.
const LIST_SCRIPT = `
local total = redis.call('ZCARD', KEYS[1])
local ids = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[2])
local out = {total}
for _, id in ipairs(ids) do
  out[#out + 1] = redis.call('HGET', ARGV[3] .. id, 'json') or ''
end
return out`;

export class ExecutorStore {
  /** A store over `redis`; the caller keeps owning the connection unless `owned`. */
  constructor(readonly redis: Redis, private readonly owned = false) {}

  /** A store with its own connection to `url` (closed by `close()`). */
  static connect(url: string): ExecutorStore {
    return new ExecutorStore(new Redis(url, { maxRetriesPerRequest: null }), true);
  }

  async close(): Promise<void> {
    if (this.owned) await this.redis.quit().catch(() => this.redis.disconnect());
  }

  // ---------------------------------------------------------------- submissions

  async createSubmission(sub: Submission, encodedInput: unknown): Promise<void> {
    await this.redis.multi()
      .hset(keys.submission(sub.id), 'json', JSON.stringify(sub), 'input', JSON.stringify(encodedInput))
      .zadd(keys.submissions, sub.createdAt, sub.id)
      .zadd(keys.submissionsIn(sub.status), sub.createdAt, sub.id)
      .exec().then(checkExec);
  }

  /** Many submissions in one round trip (a batch from one request). */
  async createSubmissions(items: { sub: Submission; input: unknown }[]): Promise<void> {
    const m = this.redis.multi();
    for (const { sub, input } of items) {
      m.hset(keys.submission(sub.id), 'json', JSON.stringify(sub), 'input', JSON.stringify(input))
        .zadd(keys.submissions, sub.createdAt, sub.id)
        .zadd(keys.submissionsIn(sub.status), sub.createdAt, sub.id);
    }
    await m.exec().then(checkExec);
  }

  /** The submission, or undefined when the id is unknown; `results` adds its result when it succeeded. */
  async getSubmission(id: string, opts: { results?: boolean } = {}): Promise<Submission | undefined> {
    const [json, result] = await this.redis.hmget(keys.submission(id), 'json', 'result');
    if (!json) return undefined;
    const sub = JSON.parse(json) as Submission;
    if (opts.results && sub.status === 'success' && result != null) sub.result = JSON.parse(result) as unknown;
    return sub;
  }

  /**
   * Writes the submission's record, moves it between the status sets when its status changed from
   * `previous`, applies `fields` to its hash and publishes `events`, all in one transaction: a
   * crash never leaves it listed under a status it does not have, and watchers never hear of a
   * change that was not stored.
   */
  async saveSubmission(sub: Submission, previous: SubmissionStatus, fields: SubmissionFields = {}): Promise<void> {
    const m = this.redis.multi();
    this.#save(m, sub, previous, fields);
    await m.exec().then(checkExec);
  }

  #save(m: ChainableCommander, sub: Submission, previous: SubmissionStatus, fields: SubmissionFields): void {
    const key = keys.submission(sub.id);
    m.hset(key, 'json', JSON.stringify(sub), ...Object.entries(fields.set ?? {}).flat());
    if (fields.del?.length) m.hdel(key, ...fields.del);
    if (previous !== sub.status) {
      m.zrem(keys.submissionsIn(previous), sub.id).zadd(keys.submissionsIn(sub.status), sub.createdAt, sub.id);
    }
    for (const e of fields.events ?? []) m.publish(EVENTS_CHANNEL, JSON.stringify(e));
  }

  /** The submission and the index of the stage whose tasks are queued (the coordinator's every look). */
  async submissionState(id: string): Promise<{ sub: Submission; entered: number | undefined } | undefined> {
    const [json, entered] = await this.redis.hmget(keys.submission(id), 'json', 'entered');
    if (!json) return undefined;
    return { sub: JSON.parse(json) as Submission, entered: entered == null ? undefined : Number(entered) };
  }

  /** The submission's encoded input, and the encoded output of the stage before the current one. */
  async stageInputs(id: string): Promise<{ input: unknown; prev: unknown }> {
    const [input, prev] = await this.redis.hmget(keys.submission(id), 'input', 'prev');
    return { input: input == null ? undefined : (JSON.parse(input) as unknown), prev: prev == null ? undefined : (JSON.parse(prev) as unknown) };
  }

  /** An encoded field of a submission's hash (`input`, `prev`, `result`), parsed. */
  async submissionField(id: string, field: 'input' | 'prev' | 'result'): Promise<unknown> {
    const text = await this.redis.hget(keys.submission(id), field);
    return text == null ? undefined : (JSON.parse(text) as unknown);
  }

  /** Newest first, filtered by status; one round trip. */
  async listSubmissions(opts: ListOptions = {}): Promise<{ total: number; items: Submission[] }> {
    const offset = Math.max(0, Math.floor(opts.offset ?? 0));
    const limit = Math.max(0, Math.floor(opts.limit ?? 50));
    if (limit === 0) {
      return { total: await this.redis.zcard(opts.status ? keys.submissionsIn(opts.status) : keys.submissions), items: [] };
    }
    const set = opts.status ? keys.submissionsIn(opts.status) : keys.submissions;
    const reply = (await this.redis.eval(LIST_SCRIPT, 1, set, String(offset), String(offset + limit - 1), keys.submission(''))) as [number, ...string[]];
    const [total, ...records] = reply;
    return { total, items: records.filter((r) => r !== '').map((r) => JSON.parse(r) as Submission) };
  }

  /** Ids of the submissions in the given statuses (the coordinator's work list after a restart). */
  async submissionIds(statuses: SubmissionStatus[]): Promise<string[]> {
    const p = this.redis.pipeline();
    for (const s of statuses) p.zrange(keys.submissionsIn(s), '0', '-1');
    const replies = checkExec(await p.exec()) as string[][];
    return [...new Set(replies.flat())];
  }

  // ---------------------------------------------------------------- tasks of a stage

  /** The tasks of stage `k` of a submission, once they have been queued. */
  async getStageTasks(id: string, k: number): Promise<{ taskIds: string[]; sharedKeys: string[] } | undefined> {
    const [tasks, shared] = await this.redis.mget(keys.stageTasks(id, k), keys.stageSharedKeys(id, k));
    if (tasks == null || shared == null) return undefined;
    return { taskIds: JSON.parse(tasks) as string[], sharedKeys: JSON.parse(shared) as string[] };
  }

  /**
   * The first look at stage `k`'s tasks (unique), in one round trip: the submission joins their
   * waiters, and gets which of them have finished for it and which are cached.
   */
  /**
   * Adds submission `id` to the waiters of `tasks` (of its stage `k`), and reads what is known of
   * each: its cache entry (by shared key, else by task id) and whether its BullMQ job exists
   * (`jobKeys`, in the same order); with `withFinished`, also the stage's finished tasks. One round trip.
   */
  async joinTasks(id: string, k: number, tasks: { taskId: string; sharedKey: string }[], jobKeys: string[], withFinished: boolean): Promise<{ finished: Set<string>; cached: (CacheEntry | undefined)[]; exists: boolean[] }> {
    const p = this.redis.pipeline();
    if (withFinished) p.hkeys(keys.stageResults(id, k));
    for (const t of tasks) p.sadd(keys.waiters(t.taskId), id);
    if (tasks.length > 0) p.mget(...tasks.flatMap((t) => [keys.cache(t.sharedKey), keys.cache(t.taskId)]));
    for (const key of jobKeys) p.exists(key);
    const replies = checkExec(await p.exec());
    const finished = new Set(withFinished ? replies.shift() as string[] : []);
    const found = (tasks.length > 0 ? replies[tasks.length] : []) as (string | null)[];
    return {
      finished,
      cached: tasks.map((_, i) => parseCache(found[2 * i] ?? found[2 * i + 1])),
      exists: (replies.slice(tasks.length + 1) as number[]).map((n) => n > 0),
    };
  }

  /**
   * Marks stage `k` as queued: its task lists, the results found on the way (cache hits), and the
   * submission's record, in one transaction. Until this is stored, the stage is entered again.
   */
  async enterStage(sub: Submission, previous: SubmissionStatus, k: number, tasks: { taskIds: string[]; sharedKeys: string[] }, results: Map<string, unknown>, events: SubmissionEvent[]): Promise<void> {
    const m = this.redis.multi();
    if (results.size > 0) m.hset(keys.stageResults(sub.id, k), ...resultFields(results));
    m.mset(keys.stageTasks(sub.id, k), JSON.stringify(tasks.taskIds), keys.stageSharedKeys(sub.id, k), JSON.stringify(tasks.sharedKeys));
    this.#save(m, sub, previous, { set: { entered: String(k) }, events });
    await m.exec().then(checkExec);
  }

  /** Forget that stage `k` was queued, so that advancing queues it again (retry); its results stay. */
  async unsetStageTasks(id: string, k: number): Promise<void> {
    await this.redis.multi().del(keys.stageTasks(id, k), keys.stageSharedKeys(id, k)).hdel(keys.submission(id), 'entered').exec().then(checkExec);
  }

  /** Which of `names` exist, in one round trip (EXISTS is O(1): far cheaper than a BullMQ script per key). */
  async existing(names: string[]): Promise<boolean[]> {
    if (names.length === 0) return [];
    const p = this.redis.pipeline();
    for (const n of names) p.exists(n);
    return (checkExec(await p.exec()) as number[]).map((n) => n > 0);
  }

  /** The ids of the finished tasks of stage `k`. */
  async finishedTasks(id: string, k: number): Promise<Set<string>> {
    return new Set(await this.redis.hkeys(keys.stageResults(id, k)));
  }

  /** Records results of stage `k`'s tasks; returns how many of its tasks have finished now. */
  async recordResults(id: string, k: number, results: Map<string, unknown>): Promise<number> {
    const p = this.redis.pipeline();
    if (results.size > 0) p.hset(keys.stageResults(id, k), ...resultFields(results));
    p.hlen(keys.stageResults(id, k));
    return checkExec(await p.exec()).at(-1) as number;
  }

  /** Encoded results of stage `k`'s finished tasks, by task id. */
  async stageResults(id: string, k: number): Promise<Map<string, unknown>> {
    const all = await this.redis.hgetall(keys.stageResults(id, k));
    return new Map(Object.entries(all).map(([t, v]) => [t, JSON.parse(v) as unknown]));
  }

  /**
   * Completes stage `k`: the submission's record (moved on), the stage's gathered output (the next
   * stage's input, or the result), and the stage's own records dropped, in one transaction.
   */
  async finishStage(sub: Submission, previous: SubmissionStatus, k: number, output: unknown, last: boolean, taskIds: string[], events: SubmissionEvent[]): Promise<void> {
    const m = this.redis.multi();
    this.#save(m, sub, previous, last
      ? { set: { result: JSON.stringify(output) }, del: ['prev', 'entered'], events }
      : { set: { prev: JSON.stringify(output) }, del: ['entered'], events });
    m.del(keys.stageTasks(sub.id, k), keys.stageSharedKeys(sub.id, k), keys.stageResults(sub.id, k));
    for (const t of taskIds) m.srem(keys.waiters(t), sub.id);
    await m.exec().then(checkExec);
  }

  // ---------------------------------------------------------------- waiters

  async addWaiter(subId: string, taskIds: Iterable<string>): Promise<void> {
    const p = this.redis.pipeline();
    for (const t of taskIds) p.sadd(keys.waiters(t), subId);
    checkExec(await p.exec());
  }

  /** Removes the submission from the waiters of the tasks; returns how many waiters each has left. */
  async removeWaiter(subId: string, taskIds: string[]): Promise<number[]> {
    if (taskIds.length === 0) return [];
    const p = this.redis.pipeline();
    for (const t of taskIds) p.srem(keys.waiters(t), subId).scard(keys.waiters(t));
    const replies = checkExec(await p.exec()) as number[];
    return taskIds.map((_, i) => replies[2 * i + 1] ?? 0);
  }

  /** The submissions waiting for each task, in one round trip. */
  async waitersOf(taskIds: string[]): Promise<string[][]> {
    if (taskIds.length === 0) return [];
    const p = this.redis.pipeline();
    for (const t of taskIds) p.smembers(keys.waiters(t));
    return checkExec(await p.exec()) as string[][];
  }

  // ---------------------------------------------------------------- cache

  /** For each task, its cached result: under its shared key first, then under its id. */
  async cachedResults(tasks: { taskId: string; sharedKey: string }[]): Promise<(CacheEntry | undefined)[]> {
    if (tasks.length === 0) return [];
    const names: string[] = [];
    for (const t of tasks) names.push(keys.cache(t.sharedKey), keys.cache(t.taskId));
    const found = await this.redis.mget(...names);
    return tasks.map((_, i) => parseCache(found[2 * i] ?? found[2 * i + 1]));
  }

  async getCache(key: string): Promise<CacheEntry | undefined> {
    const text = await this.redis.get(keys.cache(key));
    return text == null ? undefined : (JSON.parse(text) as CacheEntry);
  }

  /** Stores a result; `stage` comes first in the JSON so that stats can read it without the value. */
  async putCache(key: string, entry: CacheEntry): Promise<void> {
    await this.redis.set(keys.cache(key), cacheJson(entry));
  }

  /** Adds records whose key is not cached yet; existing entries win (they are the same computation). */
  async importCache(records: CacheRecord[]): Promise<{ inserted: number; total: number }> {
    for (const r of records) checkRecord(r);
    let inserted = 0;
    for (let i = 0; i < records.length; i += 500) {
      const p = this.redis.pipeline();
      for (const r of records.slice(i, i + 500)) p.set(keys.cache(r.key), cacheJson(r), 'NX');
      inserted += (checkExec(await p.exec()) as (string | null)[]).filter((x) => x === 'OK').length;
    }
    return { inserted, total: records.length };
  }

  /** Every cache entry, a batch at a time (SCAN: Redis is never blocked by a big cache). */
  async *exportCache(): AsyncGenerator<CacheRecord> {
    for await (const batch of this.redis.scanStream({ match: keys.cachePattern, count: 500 }) as AsyncIterable<string[]>) {
      if (batch.length === 0) continue;
      const values = await this.redis.mget(...batch);
      for (let i = 0; i < batch.length; i++) {
        const text = values[i];
        if (text == null) continue; // cleared meanwhile
        const entry = JSON.parse(text) as CacheEntry;
        yield { key: batch[i]!.slice(keys.cachePrefix.length), stage: entry.stage, at: entry.at, value: entry.value };
      }
    }
  }

  async cacheStats(): Promise<CacheStats> {
    const stats: CacheStats = { entries: 0, stages: {} };
    for await (const batch of this.redis.scanStream({ match: keys.cachePattern, count: 500 }) as AsyncIterable<string[]>) {
      if (batch.length === 0) continue;
      // The stage is at the start of the JSON: read a prefix, not results that may be megabytes.
      const p = this.redis.pipeline();
      for (const k of batch) p.getrange(k, 0, 300);
      const heads = checkExec(await p.exec()) as string[];
      for (const [i, head] of heads.entries()) {
        if (!head) continue; // cleared meanwhile
        const stage = /^\{"stage":("(?:[^"\\]|\\.)*")/.exec(head)?.[1];
        // An entry written in another field order (not by putCache) is read whole.
        const name = stage ? (JSON.parse(stage) as string) : ((await this.getCache(batch[i]!.slice(keys.cachePrefix.length)))?.stage ?? '?');
        stats.entries++;
        stats.stages[name] = (stats.stages[name] ?? 0) + 1;
      }
    }
    return stats;
  }

  /** Deletes every cache entry; returns how many there were. */
  async clearCache(): Promise<number> {
    let removed = 0;
    for await (const batch of this.redis.scanStream({ match: keys.cachePattern, count: 500 }) as AsyncIterable<string[]>) {
      if (batch.length > 0) removed += await this.redis.unlink(...batch);
    }
    return removed;
  }

  // ---------------------------------------------------------------- code and workflows

  async putCode(hash: string, text: string): Promise<void> {
    await this.redis.set(keys.code(hash), text, 'NX');
  }

  async getCode(hash: string): Promise<string | undefined> {
    return (await this.redis.get(keys.code(hash))) ?? undefined;
  }

  async putWorkflow(record: WorkflowRecord): Promise<void> {
    await this.redis.multi().set(keys.workflow(record.name), JSON.stringify(record)).sadd(keys.workflows, record.name).exec().then(checkExec);
  }

  async getWorkflow(name: string): Promise<WorkflowRecord | undefined> {
    const text = await this.redis.get(keys.workflow(name));
    return text == null ? undefined : (JSON.parse(text) as WorkflowRecord);
  }

  async listWorkflows(): Promise<WorkflowRecord[]> {
    const names = (await this.redis.smembers(keys.workflows)).sort();
    if (names.length === 0) return [];
    const texts = await this.redis.mget(...names.map((n) => keys.workflow(n)));
    return texts.filter((t): t is string => t != null).map((t) => JSON.parse(t) as WorkflowRecord);
  }

  /** The registered workflow called `name`; an unknown name is answered with the known ones. */
  async requireWorkflow(name: string): Promise<WorkflowRecord> {
    const found = await this.getWorkflow(name);
    if (found) return found;
    const known = (await this.redis.smembers(keys.workflows)).sort();
    throw new XprError(`Unknown workflow "${name}" (known: ${known.length ? known.join(', ') : 'none registered'})`, {
      hint: 'Workflows are the workflow(...) exports of the module given to `xpr executor launch --workflow`.',
    });
  }

  // ---------------------------------------------------------------- events

  async publish(event: SubmissionEvent): Promise<void> {
    await this.redis.publish(EVENTS_CHANNEL, JSON.stringify(event));
  }
}

function parseCache(text: string | null | undefined): CacheEntry | undefined {
  return text == null ? undefined : (JSON.parse(text) as CacheEntry);
}

function resultFields(results: Map<string, unknown>): string[] {
  const flat: string[] = [];
  for (const [t, v] of results) flat.push(t, JSON.stringify(v));
  return flat;
}

function cacheJson(entry: CacheEntry): string {
  return JSON.stringify({ stage: entry.stage, at: entry.at, value: entry.value });
}

/** Records come from a user's file: each must be what `cache export` writes. */
function checkRecord(r: CacheRecord): void {
  const rec = r as unknown as Record<string, unknown> | null;
  if (typeof rec !== 'object' || rec === null) throw new XprError('cache import: every record must be an object { key, value, stage, at }');
  const key = rec.key;
  if (typeof key !== 'string' || !/^[0-9a-f]{64}$/.test(key)) {
    throw new XprError(`cache import: record key ${JSON.stringify(key)} is not a sha256 hex digest`, { hint: 'Import files written by `xpr executor cache export`.' });
  }
  if (typeof rec.stage !== 'string') throw new XprError(`cache import: record ${key} has no "stage" name`);
  if (!('value' in rec)) throw new XprError(`cache import: record ${key} has no "value"`);
  if (typeof rec.at !== 'number') rec.at = Date.now();
}

/** The replies of a MULTI or pipeline; the first failed command's error is thrown. */
function checkExec(replies: [Error | null, unknown][] | null): unknown[] {
  if (replies === null) throw new Error('Redis aborted a transaction');
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
