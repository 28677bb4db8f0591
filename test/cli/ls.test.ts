// xpr ls: golden output (short, long, JSON), the empty cases, and the filters as a table.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ls, lsJson, lsText, renderLs } from '../../src/cli/commands/ls.js';
import { exitCodeOf } from '../../src/cli/exit.js';
import { localOffsetSteps, PLAIN } from '../../src/cli/format.js';
import type { SelectOptions } from '../../src/cli/common.js';
import { cliProject, openStore, seed, type CliProject, type Seed } from './helpers.js';

const GOLDEN = path.resolve('test/fixtures/golden/cli');

// Names that regexps treat specially (+, space, quote, $) beside ones they match by accident.
const JOBS: Seed[] = [
  { name: 'a+b', patch: { status: 'succeeded', system: 'local', remoteId: '17', remoteStatus: 'done' } },
  { name: 'ab', patch: { status: 'started', system: 'cluster', remoteId: '4711', remoteStatus: 'running' } },
  { name: 'aab', patch: { status: 'died', system: 'cluster', remoteId: '4712', remoteStatus: 'timeout', remoteReason: 'TIMEOUT' } },
  { name: 'fit x', patch: { status: 'submitted', system: 'cluster', remoteId: '4713_0', remoteStatus: 'queued' } },
  { name: "it's $HOME", patch: { status: 'failed', system: 'local', remoteId: '18', remoteStatus: 'done' } },
  { name: 'fresh' },
  { name: 'old', patch: { status: 'processed', system: 'local', remoteId: '3', remoteStatus: 'done' } },
];

let p: CliProject;
let ids: string[];
beforeEach(() => {
  p = cliProject({ systems: { cluster: { host: null, scheduler: 'local', rundir: '/scratch/run' } } });
});
afterEach(async () => { await p.cleanup(); });

describe('xpr ls on an empty database', () => {
  it('says so and names the database, without creating it', async () => {
    const r = await ls(p.ctx);
    expect(renderLs(r, PLAIN)).toBe(`No matching jobs in JobsDB at ${p.dbPath}`);
    expect(lsJson(r)).toEqual({ db: p.dbPath, jobs: [] });
    expect(fs.existsSync(p.dbPath)).toBe(false);
  });

  it('says the same for a database with no jobs, and for --dbfile', async () => {
    seed(p, []);
    expect(renderLs(await ls(p.ctx), PLAIN)).toBe(`No matching jobs in JobsDB at ${p.dbPath}`);
    const other = path.join(p.dir, 'other.db');
    expect(renderLs(await ls({ ...p.ctx, dbFile: other }), PLAIN)).toBe(`No matching jobs in JobsDB at ${other}`);
  });

  it('says the same when filters match nothing', async () => {
    seed(p, JOBS);
    expect(renderLs(await ls({ ...p.ctx, name: 'nothing' }), PLAIN)).toBe(`No matching jobs in JobsDB at ${p.dbPath}`);
  });
});

describe('xpr ls output', () => {
  beforeEach(() => { ids = seed(p, JOBS); });

  it('short form (golden)', async () => {
    await expect(p.scrub(renderLs(await ls(p.ctx), PLAIN)) + '\n').toMatchFileSnapshot(path.join(GOLDEN, 'ls.txt'));
  });

  it('long form, -l (golden)', async () => {
    await expect(p.scrub(renderLs(await ls({ ...p.ctx, long: true }), PLAIN)) + '\n').toMatchFileSnapshot(path.join(GOLDEN, 'ls-long.txt'));
  });

  it('--json (golden)', async () => {
    const json = JSON.stringify(lsJson(await ls({ ...p.ctx, long: true })), null, 2);
    await expect(p.scrub(json) + '\n').toMatchFileSnapshot(path.join(GOLDEN, 'ls.json'));
  });

  it('colours statuses only when asked', async () => {
    const r = await ls(p.ctx);
    expect(renderLs(r, { ...PLAIN, color: true })).toContain('\x1b[32msucceeded\x1b[0m');
    expect(renderLs(r, PLAIN)).not.toContain('\x1b[');
  });

  it('lists oldest first and ends with counts by status', async () => {
    const text = renderLs(await ls(p.ctx), PLAIN);
    expect(text.split('\n').at(-1)).toBe('7 jobs: 1 created, 1 submitted, 1 started, 1 succeeded, 1 failed, 1 died, 1 processed');
    expect((await ls(p.ctx)).jobs.map((j) => j.name)).toEqual(JOBS.map((j) => j.name));
  });
});

// Regexps are anchored at both ends (^(?:…)$), so `+` is a quantifier unless escaped.
const FILTERS: { opts: SelectOptions; names: string[]; why: string }[] = [
  { opts: { name: 'a\\+b' }, names: ['a+b'], why: 'an escaped + is literal' },
  { opts: { name: 'a+b' }, names: ['ab', 'aab'], why: 'a bare + is a quantifier: a+b is "one or more a, then b"' },
  { opts: { name: 'a' }, names: [], why: 'anchored: a does not match ab' },
  { opts: { name: 'a.*' }, names: ['a+b', 'ab', 'aab'], why: 'a prefix needs .*' },
  { opts: { name: 'a|ab' }, names: ['ab'], why: 'alternation stays inside the anchors (not ^a or ab$)' },
  { opts: { name: 'ab,aab' }, names: ['ab', 'aab'], why: 'a comma list is OR-ed' },
  { opts: { name: ['a\\+b', 'old'] }, names: ['a+b', 'old'], why: 'an array is OR-ed too' },
  { opts: { name: 'fit x' }, names: ['fit x'], why: 'spaces are literal' },
  { opts: { name: "it's \\$HOME" }, names: ["it's $HOME"], why: 'a quote and an escaped $' },
  { opts: { status: 'ongoing' }, names: ['ab', 'fit x', 'fresh'], why: 'a group' },
  { opts: { status: 'failed,died' }, names: ['aab', "it's $HOME"], why: 'a status list' },
  { opts: { status: '*' }, names: JOBS.map((j) => j.name), why: '* is every status' },
  { opts: { system: 'clu.*' }, names: ['ab', 'aab', 'fit x'], why: 'system names are regexps too' },
  { opts: { system: 'local' }, names: ['a+b', "it's $HOME", 'old'], why: 'a plain system name' },
  { opts: { system: 'loc' }, names: [], why: 'system regexps are anchored' },
  { opts: { system: 'nowhere' }, names: [], why: 'an unknown system selects nothing' },
  { opts: { name: 'a.*', status: 'started,died' }, names: ['ab', 'aab'], why: 'filters are AND-ed' },
  { opts: { id: 'a\\+b_.*' }, names: ['a+b'], why: 'ids are anchored regexps' },
];

describe('xpr ls filters', () => {
  beforeEach(() => { ids = seed(p, JOBS); });

  it.each(FILTERS)('$why: $opts', async ({ opts, names }) => {
    expect((await ls({ ...p.ctx, ...opts })).jobs.map((j) => j.name)).toEqual(names);
  });

  it('selects one job by its whole id', async () => {
    expect((await ls({ ...p.ctx, id: ids[3]! })).jobs.map((j) => j.name)).toEqual(['fit x']);
  });

  it.each([
    [{ status: 'runing' }, /Unknown job status "runing" \(known: created, .*groups: ongoing, can_produce_results\)/],
    [{ name: 'a(' }, /Invalid regular expression "a\("/],
    [{ system: '*x' }, /Invalid regular expression "\*x"/],
  ] as const)('rejects %j with a message (exit 1)', async (opts, message) => {
    const err = await ls({ ...p.ctx, ...opts }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(message);
    expect(exitCodeOf(err)).toBe(1);
  });
});

// `xpr ls` prints plain text straight from the database (lsText); it must be what renderLs makes
// from the data, for every form and filter, in UTC and in a zone with daylight saving.
describe('the fast text path (lsText) prints what renderLs prints', () => {
  beforeEach(() => { ids = seed(p, JOBS); });

  const cases: { what: string; opts: SelectOptions & { long?: boolean } }[] = [
    { what: 'all', opts: {} },
    { what: 'long', opts: { long: true } },
    { what: 'a filter', opts: { name: 'a.*', status: 'started,died' } },
    { what: 'long with a system filter', opts: { long: true, system: 'clu.*' } },
    { what: 'no match', opts: { name: 'nothing' } },
  ];

  it.each(cases)('$what (UTC)', async ({ opts }) => {
    expect(await lsText({ ...p.ctx, ...opts }, PLAIN)).toBe(renderLs(await ls({ ...p.ctx, ...opts }), PLAIN));
  });

  it('in local time across a daylight saving change (Europe/Berlin)', async () => {
    const tz = process.env.TZ;
    process.env.TZ = 'Europe/Berlin';
    try {
      // Move some jobs into summer time, one to the second before the change and one at it.
      const store = openStore(p);
      const change = Date.UTC(2024, 2, 31, 1, 0, 0) / 1000; // 02:00 CET -> 03:00 CEST
      const times = [change - 1, change, change + 86400 * 100, Date.UTC(2024, 9, 27, 0, 59, 59) / 1000, Date.UTC(2024, 9, 27, 1, 0, 0) / 1000];
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        times.forEach((t, i) => {
          vi.setSystemTime(t * 1000 + 250); // a fraction of a second: shown truncated, as formatTime does
          store.update(ids[i]!, {});
        });
      } finally {
        vi.useRealTimers();
        store.close();
      }
      const fmt = { color: false, utc: false };
      for (const long of [false, true]) {
        const fast = await lsText({ ...p.ctx, long }, fmt);
        expect(fast).toBe(renderLs(await ls({ ...p.ctx, long }), fmt));
        expect(fast).toContain('2024-03-31 01:59:59');
        expect(fast).toContain('2024-03-31 03:00:00');
        expect(fast).toContain('2024-10-27 02:59:59');
      }
      expect(localOffsetSteps(2024, 2024).map((s) => s.offset)).toEqual([3600, 7200, 3600]);
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('leaves colour to renderLs', async () => {
    expect(await lsText(p.ctx, { ...PLAIN, color: true })).toBeUndefined();
  });
});
