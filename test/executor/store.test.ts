// The executor's records in a real Redis: listing filtered and paginated, the cache's import,
// export, stats and clear, and the workflow registry's answer to an unknown name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecutorStore, newSubmissionId } from '../../src/executor/store.js';
import type { CacheRecord, Submission, SubmissionStatus } from '../../src/executor/types.js';
import { skipWithoutRedis, startTestRedis, type TestRedis } from './redis.js';

describe.skipIf(skipWithoutRedis('the executor store tests'))('executor store', () => {
  let redis: TestRedis;
  let store: ExecutorStore;
  beforeAll(async () => {
    redis = await startTestRedis();
    store = ExecutorStore.connect(redis.url);
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  const submission = (status: SubmissionStatus, createdAt: number): Submission => ({
    id: newSubmissionId(), workflow: 'w', codeHash: 'c'.repeat(64), status, stageIndex: 0,
    stages: [{ stage: 's', total: 0, done: 0, status: 'waiting' }], createdAt, updatedAt: createdAt,
  });

  it('lists newest first, filtered by status and paginated, and moves a submission between statuses', async () => {
    const subs = Array.from({ length: 7 }, (_, i) => submission(i % 2 ? 'running' : 'waiting', 1000 + i));
    await store.createSubmissions(subs.map((sub) => ({ sub, input: { i: sub.createdAt } })));
    const all = await store.listSubmissions({ offset: 1, limit: 3 });
    expect(all.total).toBe(7);
    expect(all.items.map((s) => s.createdAt)).toEqual([1005, 1004, 1003]);
    const running = await store.listSubmissions({ status: 'running' });
    expect(running.total).toBe(3);
    expect(running.items.map((s) => s.createdAt)).toEqual([1005, 1003, 1001]);

    const moved = { ...subs[1]!, status: 'success' as const };
    await store.saveSubmission(moved, 'running', { set: { result: JSON.stringify(42) } });
    expect((await store.listSubmissions({ status: 'running' })).total).toBe(2);
    expect((await store.listSubmissions({ status: 'success' })).items.map((s) => s.id)).toEqual([moved.id]);
    expect((await store.getSubmission(moved.id))?.result).toBeUndefined();
    expect((await store.getSubmission(moved.id, { results: true }))?.result).toBe(42);
    expect(await store.getSubmission('xs_nosuchthing0')).toBeUndefined();
  });

  it('imports, exports, counts and clears the cache', async () => {
    const key = (n: number) => n.toString(16).padStart(64, '0');
    const records: CacheRecord[] = [
      { key: key(1), stage: 'qc', at: 1, value: { e: -1.5 } },
      { key: key(2), stage: 'qc', at: 2, value: [1, 2] },
      { key: key(3), stage: 'fit', at: 3, value: 'x'.repeat(5000) },
    ];
    expect(await store.importCache(records)).toEqual({ inserted: 3, total: 3 });
    // Existing entries win: importing again inserts nothing.
    expect(await store.importCache([{ ...records[0]!, value: 'other' }])).toEqual({ inserted: 0, total: 1 });
    expect((await store.getCache(key(1)))?.value).toEqual({ e: -1.5 });
    expect(await store.cacheStats()).toEqual({ entries: 3, stages: { qc: 2, fit: 1 } });
    const exported: CacheRecord[] = [];
    for await (const r of store.exportCache()) exported.push(r);
    expect(exported.sort((a, b) => a.at - b.at)).toEqual(records);
    await expect(store.importCache([{ key: 'short', stage: 'qc', at: 1, value: 1 }])).rejects.toThrow(/record key "short" is not a sha256 hex digest/);
    expect(await store.clearCache()).toBe(3);
    expect((await store.cacheStats()).entries).toBe(0);
  });

  it('answers an unknown workflow with the registered ones', async () => {
    await store.putWorkflow({ name: 'bespoke', codeHash: 'd'.repeat(64), exportName: 'bespoke', stages: [{ stage: 'a', each: false }] });
    expect((await store.requireWorkflow('bespoke')).codeHash).toBe('d'.repeat(64));
    await expect(store.requireWorkflow('bespok')).rejects.toThrow('Unknown workflow "bespok" (known: bespoke)');
    await store.putCode('e'.repeat(64), 'export const x = 1;');
    expect(await store.getCode('e'.repeat(64))).toBe('export const x = 1;');
    expect(await store.getCode('f'.repeat(64))).toBeUndefined();
  });
});
