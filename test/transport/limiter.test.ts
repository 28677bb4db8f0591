// The channel cap: never more than `max` at once, served in arrival order.
import { describe, expect, it } from 'vitest';
import { Limiter } from '../../src/transport/limiter.js';

describe('Limiter', () => {
  it('caps concurrency and serves waiters in order', async () => {
    const lim = new Limiter(3);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(Array.from({ length: 12 }, (_, i) => lim.run(async () => {
      running++;
      most = Math.max(most, running);
      order.push(i);
      await new Promise((r) => setTimeout(r, 5));
      running--;
    })));
    expect(most).toBe(3);
    expect(lim.peak).toBe(3);
    expect(lim.inUse).toBe(0);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it('releases the slot when the task throws, and ignores a second release', async () => {
    const lim = new Limiter(1);
    await expect(lim.run(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    const release = await lim.acquire();
    release();
    release();
    expect(lim.inUse).toBe(0);
  });
});
