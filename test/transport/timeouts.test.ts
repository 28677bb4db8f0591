// The keepalive's and the watchdog's timing, on fake timers; the real thing against a stopped sshd
// is in ssh.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UnreachableError, XprError } from '../../src/errors.js';
import { Keepalive } from '../../src/transport/keepalive.js';
import { CommandTimeoutError, commandTimeouts, GaveUp, Watchdog } from '../../src/transport/timeouts.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Keepalive', () => {
  it('asks after each interval of silence and gives up after interval × count', () => {
    const asked: number[] = [];
    const dead: number[] = [];
    const start = Date.now();
    const k = new Keepalive(1000, 3, () => asked.push(Date.now() - start), (silent) => dead.push(silent));
    vi.advanceTimersByTime(2999);
    expect(asked).toEqual([1000, 2000]);
    expect(dead).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(dead).toEqual([3000]);
    vi.advanceTimersByTime(10_000);
    expect(dead).toHaveLength(1);
    k.stop();
  });

  it('counts silence from the last byte heard: a server that answers stays alive', () => {
    const dead = vi.fn();
    const ask = vi.fn();
    const k = new Keepalive(1000, 3, ask, dead);
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(1250);
      k.heard(); // the answer to the ping, or any data
    }
    expect(dead).not.toHaveBeenCalled();
    expect(ask).toHaveBeenCalled();
    k.stop();
  });

  it('does not keep the process alive', () => {
    const k = new Keepalive(15_000, 3, () => undefined, () => undefined);
    const timer = (k as unknown as { timer: NodeJS.Timeout }).timer;
    expect(timer.hasRef()).toBe(false);
    k.stop();
  });
});

describe('Watchdog', () => {
  it('ends any wait after its limit, and hands a late value to undo', async () => {
    const w = new Watchdog(1000);
    let resolveLate: (v: string) => void = () => undefined;
    const late = new Promise<string>((r) => { resolveLate = r; });
    const undone: string[] = [];
    const raced = w.race(late, (v) => undone.push(v)).then(() => 'resolved', (e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await raced).toBeInstanceOf(GaveUp);
    resolveLate('slot');
    await Promise.resolve();
    expect(undone).toEqual(['slot']);
    // Already expired: a new wait gives up at once.
    await expect(w.race(Promise.resolve(1))).rejects.toBeInstanceOf(GaveUp);
    w.stop();
  });

  it('counts from the last kick for a stall limit', async () => {
    const w = new Watchdog(1000);
    const gaveUp = vi.fn();
    w.whenExpired(gaveUp);
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(900);
      w.kick();
    }
    expect(gaveUp).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1000);
    expect(gaveUp).toHaveBeenCalledOnce();
  });

  it('never expires without a limit', async () => {
    const w = new Watchdog(undefined);
    const p = Promise.resolve('v');
    expect(w.race(p)).toBe(p);
  });
});

describe('commandTimeouts', () => {
  it('defaults to 2 min per status query and 10 min without progress per transfer; XPR_SSH_COMMAND_TIMEOUT sets both', () => {
    expect(commandTimeouts({})).toEqual({ statusMs: 120_000, transferStallMs: 600_000 });
    expect(commandTimeouts({ XPR_SSH_COMMAND_TIMEOUT: '30' })).toEqual({ statusMs: 30_000, transferStallMs: 30_000 });
    expect(commandTimeouts({ XPR_SSH_COMMAND_TIMEOUT: '0' })).toEqual({ statusMs: 0, transferStallMs: 0 });
    expect(() => commandTimeouts({ XPR_SSH_COMMAND_TIMEOUT: '2m' })).toThrow(XprError);
  });

  it('a timeout is an UnreachableError naming the host, the command and what to do', () => {
    const e = new CommandTimeoutError('cluster', 'squeue -h', 120_000, false);
    expect(e).toBeInstanceOf(UnreachableError);
    expect(e.host).toBe('cluster');
    expect(e.message).toBe('A command on cluster did not finish within 120 s, so xpr stopped waiting (it may still be running there): squeue -h');
    expect(e.hint).toContain('ssh cluster true');
    expect(e.hint).toContain('XPR_SSH_COMMAND_TIMEOUT=<seconds>');
    expect(new CommandTimeoutError('c', 'tar', 600_000, true).message).toContain('moved no data for 600 s');
  });
});
