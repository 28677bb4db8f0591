// A counting semaphore. sshd refuses session channels beyond its MaxSessions (10 by default), so
// each connection lets at most a few fewer run at once and queues the rest in arrival order.

export class Limiter {
  private active = 0;
  private highest = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly max: number) {
    if (!(max >= 1)) throw new Error(`Limiter needs max >= 1, got ${max}`);
  }

  /** Slots in use now. */
  get inUse(): number {
    return this.active;
  }

  /** Most slots ever in use at once (for tests and benchmarks). */
  get peak(): number {
    return this.highest;
  }

  /** Wait for a slot; the returned function gives it back (calling it twice is harmless). */
  async acquire(): Promise<() => void> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    this.highest = Math.max(this.highest, this.active);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      // Hand the slot straight to the next waiter, so a newcomer cannot overtake it.
      if (next) next();
      else this.active--;
    };
  }

  /** Run `fn` holding a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
