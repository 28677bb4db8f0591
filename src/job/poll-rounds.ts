// Batched status polling for one system. However many callers wait on however many jobs, the
// scheduler sees one status query per round, and rounds are at least `minIntervalMs` apart: a
// caller joins the round that has not started yet, or, if one is running, the next one.
import type { RemoteState } from '../schedulers/types.js';

export type QueryStates = (ids: string[]) => Promise<Map<string, RemoteState>>;

interface Round {
  ids: Set<string>;
  result: Promise<Map<string, RemoteState>>;
}

export class PollRounds {
  private next: Round | undefined;
  private lastStart = 0;
  /** Scheduler queries made so far (for tests and the benchmark). */
  queries = 0;

  constructor(private readonly query: QueryStates, private readonly minIntervalMs: number) {}

  /** States of `ids`, from the next round (absent ids have left the queue). */
  async states(ids: readonly string[]): Promise<Map<string, RemoteState>> {
    if (ids.length === 0) return new Map();
    let round = this.next;
    if (!round) {
      const r: Round = { ids: new Set(), result: Promise.resolve(new Map()) };
      r.result = this.run(r);
      this.next = round = r;
    }
    for (const id of ids) round.ids.add(id);
    const all = await round.result;
    return new Map(ids.filter((id) => all.has(id)).map((id) => [id, all.get(id)!]));
  }

  private async run(round: Round): Promise<Map<string, RemoteState>> {
    // Let callers of this tick (and of the rate-limit wait) join before the ids are taken.
    const wait = Math.max(0, this.lastStart + this.minIntervalMs - Date.now());
    await new Promise((r) => setTimeout(r, wait));
    if (this.next === round) this.next = undefined;
    this.lastStart = Date.now();
    this.queries++;
    return this.query([...round.ids]);
  }
}
