// The test Redis itself: it needs its password, and keeps its data across a crash and a restart.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutRedis, startTestRedis, type TestRedis } from './redis.js';

describe.skipIf(skipWithoutRedis('the test Redis'))('test Redis', () => {
  let redis: TestRedis;
  beforeAll(async () => { redis = await startTestRedis(); });
  afterAll(async () => { await redis?.stop(); });

  it('refuses a client without the password', async () => {
    const anon = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    anon.on('error', () => undefined); // the refusal is what this test expects
    await anon.connect().catch(() => undefined);
    await expect(anon.get('x')).rejects.toThrow(/NOAUTH/);
    anon.disconnect();
  });

  it('keeps acknowledged writes across kill() and restart() on the same port', async () => {
    const client = new Redis(redis.url, { lazyConnect: true });
    await client.set('kept', 'yes');
    client.disconnect();
    redis.kill();
    await redis.restart();
    const again = new Redis(redis.url);
    expect(await again.get('kept')).toBe('yes');
    again.disconnect();
  });
});
