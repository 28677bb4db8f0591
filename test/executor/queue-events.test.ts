// followQueueEvents against a real Redis: an event added right after the follower was made, before
// its first read of the stream could be sent, still reaches it. A plain QueueEvents misses it, and
// a count of finished tasks waiting on it never ends.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followQueueEvents } from '../../src/executor/queue-events.js';
import { skipWithoutRedis, startTestRedis, type TestRedis } from './redis.js';

describe.skipIf(skipWithoutRedis('the queue-events tests'))('followQueueEvents', () => {
  let redis: TestRedis;
  let client: Redis;
  beforeAll(async () => {
    redis = await startTestRedis();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  /** The jobs it reports completed, for 1.5 s after `then` ran. */
  async function heard(queue: string, events: Awaited<ReturnType<typeof followQueueEvents>>, then: () => Promise<unknown>): Promise<string[]> {
    const seen: string[] = [];
    events.on('completed', ({ jobId }) => seen.push(jobId));
    try {
      await then();
      await new Promise((r) => setTimeout(r, 1500));
      return seen;
    } finally {
      await events.close();
    }
  }

  const completed = (queue: string, jobId: string) =>
    client.xadd(`test:${queue}:events`, '*', 'event', 'completed', 'jobId', jobId, 'returnvalue', '1', 'prev', 'active');

  it('hears an event added before its first read, on a stream that did not exist yet', async () => {
    const events = await followQueueEvents(client, 'fresh', { connection: { url: redis.url }, prefix: 'test' });
    expect(await heard('fresh', events, () => completed('fresh', 'at-once'))).toEqual(['at-once']);
  });

  it('on a stream with history, hears what comes after and nothing before', async () => {
    await completed('old', 'before');
    const events = await followQueueEvents(client, 'old', { connection: { url: redis.url }, prefix: 'test' });
    expect(await heard('old', events, () => completed('old', 'after'))).toEqual(['after']);
  });
});
