// A BullMQ queue's events, followed from the moment of asking. QueueEvents' own default ("entries
// added after my first read") misses what happens between construction and that first read, which
// waitUntilReady does not wait for: a task that finishes at once is then never heard of. Reading
// the event stream's current last id first and following from it closes that gap.
import { QueueEvents, type QueueEventsOptions } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * QueueEvents of `queue` that see every event added from now on. `redis` is any connection to the
 * same server, used for one read of the stream's end.
 */
export async function followQueueEvents(redis: Redis, queue: string, options: QueueEventsOptions & { prefix: string }): Promise<QueueEvents> {
  const [last] = await redis.xrevrange(`${options.prefix}:${queue}:events`, '+', '-', 'COUNT', 1);
  // '0-0' for a stream that does not exist yet: everything it will ever hold is new.
  return new QueueEvents(queue, { ...options, lastEventId: last?.[0] ?? '0-0' });
}
