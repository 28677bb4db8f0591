import { describe, expect, it } from 'vitest';
import { PollRounds } from '../src/job/poll-rounds.js';
import type { RemoteState } from '../src/schedulers/types.js';

function recorder(delayMs = 20) {
  const calls: { ids: string[]; at: number }[] = [];
  const query = async (ids: string[]) => {
    calls.push({ ids: [...ids].sort(), at: Date.now() });
    await new Promise((r) => setTimeout(r, delayMs));
    return new Map<string, RemoteState>(ids.filter((id) => id !== 'gone').map((id) => [id, { status: 'running' }]));
  };
  return { calls, query };
}

describe('PollRounds', () => {
  it('answers many concurrent callers with one query', async () => {
    const { calls, query } = recorder();
    const rounds = new PollRounds(query, 0);
    const answers = await Promise.all(['a', 'b', 'c', 'gone'].map((id) => rounds.states([id])));
    expect(calls).toHaveLength(1);
    expect(calls[0]!.ids).toEqual(['a', 'b', 'c', 'gone']);
    expect(answers[0]!.get('a')?.status).toBe('running');
    expect(answers[3]!.has('gone')).toBe(false);
    expect(rounds.queries).toBe(1);
  });

  it('puts a caller that arrives during a query into the next round, spaced by the minimum interval', async () => {
    const { calls, query } = recorder(50);
    const rounds = new PollRounds(query, 200);
    const first = rounds.states(['a']);
    await new Promise((r) => setTimeout(r, 20)); // the first query is now running
    const second = rounds.states(['b']);
    const third = rounds.states(['c']);
    await Promise.all([first, second, third]);
    expect(calls.map((c) => c.ids)).toEqual([['a'], ['b', 'c']]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(195);
  });

  it('makes no query for no ids', async () => {
    const { calls, query } = recorder();
    const rounds = new PollRounds(query, 0);
    expect((await rounds.states([])).size).toBe(0);
    expect(calls).toHaveLength(0);
  });
});
