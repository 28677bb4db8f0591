// Submission events for the gateway's watchers. One Redis subscriber connection serves every
// open SSE stream: a thousand watchers cost one connection, and an event is parsed once and handed
// to the listeners of its submission only.
import type { Redis } from 'ioredis';
import type { SubmissionEvent } from './types.js';

export type EventListener = (event: SubmissionEvent) => void;

export class EventHub {
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #listeners = new Map<string, Set<EventListener>>();
  readonly #closers = new Set<() => void>();
  #ready: Promise<unknown> | undefined;

  /** `subscriber` becomes this hub's own: it is put in subscriber mode and closed by `close()`. */
  constructor(subscriber: Redis, channel: string) {
    this.#subscriber = subscriber;
    this.#channel = channel;
    // ioredis re-subscribes by itself after a reconnect; errors are logged by whoever made it.
    subscriber.on('error', () => {});
    subscriber.on('message', (channelName: string, message: string) => {
      if (channelName === this.#channel) this.#dispatch(message);
    });
  }

  /** Subscribes to the channel (once); resolves when Redis has confirmed it. */
  start(): Promise<unknown> {
    this.#ready ??= this.#subscriber.subscribe(this.#channel);
    return this.#ready;
  }

  /** Calls `listener` with every event of submission `id` until the returned function is called. */
  listen(id: string, listener: EventListener): () => void {
    let set = this.#listeners.get(id);
    if (!set) this.#listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      const current = this.#listeners.get(id);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.#listeners.delete(id);
    };
  }

  /** Calls `closer` when the hub closes (the gateway stops), until the returned function is called. */
  onClose(closer: () => void): () => void {
    this.#closers.add(closer);
    return () => this.#closers.delete(closer);
  }

  #dispatch(message: string): void {
    let event: SubmissionEvent;
    try {
      event = JSON.parse(message) as SubmissionEvent;
    } catch {
      return; // not ours: the channel is public to anything holding the Redis password
    }
    if (typeof event?.id !== 'string') return;
    const set = this.#listeners.get(event.id);
    if (!set) return;
    for (const listener of [...set]) listener(event);
  }

  async close(): Promise<void> {
    for (const closer of [...this.#closers]) closer();
    this.#closers.clear();
    this.#listeners.clear();
    this.#subscriber.disconnect();
  }
}
