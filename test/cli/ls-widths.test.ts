// Tables line up by the columns a terminal gives each character: CJK and emoji take two, combining
// accents none. Counting UTF-16 units (`.length`) misaligns every one of these names.
import path from 'node:path';
import stringWidth from 'string-width';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ls, lsText, renderLs } from '../../src/cli/commands/ls.js';
import { PLAIN, table } from '../../src/cli/format.js';
import { jobTableText } from '../../src/cli/ls-text.js';
import { cliProject, openStore, seed, type CliProject, type Seed } from './helpers.js';

const CAFE = 'cafe\u0301'; // "café" with a combining acute accent: 5 UTF-16 units, 4 columns

describe('table', () => {
  it('pads by display width', () => {
    const rows = [['日本語', '1'], [CAFE, '2'], ['🧪x', '3'], ['ab', '4']];
    expect(table([{ header: 'name' }, { header: 'n' }], rows, PLAIN).split('\n')).toEqual([
      'name    n',
      '日本語  1',
      `${CAFE}    2`,
      '🧪x     3',
      'ab      4',
    ]);
  });

  it('right-aligns by display width', () => {
    expect(table([{ header: 'n', right: true }], [['字'], ['abc']], PLAIN)).toBe('  n\n 字\nabc');
  });
});

// Names in several scripts, and a system name that is not ASCII either.
const JOBS: Seed[] = [
  { name: '計算_エネルギー', patch: { status: 'succeeded', system: 'クラスタ', remoteId: '17', remoteStatus: 'done' } },
  { name: `${CAFE}_fit`, patch: { status: 'started', system: 'cluster', remoteId: '4711', remoteStatus: 'running' } },
  { name: '🧪_trial', patch: { status: 'died', system: 'cluster', remoteId: '4712', remoteStatus: 'timeout', remoteReason: 'TIMEOUT' } },
  { name: 'plain' },
];

/** Display column at which each job line's status cell starts. */
function statusColumns(text: string): number[] {
  const lines = text.split('\n').slice(1, -1);
  return lines.map((line) => stringWidth(line.slice(0, line.search(/ {2}(succeeded|started|died|created) /) + 2)));
}

describe('xpr ls with names that are not ASCII', () => {
  let p: CliProject;
  beforeEach(() => {
    p = cliProject({ systems: { cluster: { host: null, scheduler: 'local', rundir: '/scratch/run' } } });
    seed(p, JOBS);
  });
  afterEach(async () => { await p.cleanup(); });

  it.each([false, true])('lines up every column (long: %s)', async (long) => {
    const text = renderLs(await ls({ ...p.ctx, long }), PLAIN);
    const starts = statusColumns(text);
    expect(starts).toHaveLength(JOBS.length);
    expect(new Set(starts).size).toBe(1);
    // The last column, after the system names, lines up too.
    const lines = text.split('\n').slice(1, -1);
    const lastColumn = lines.map((l) => stringWidth(l.slice(0, l.search(/ {2}[^ ]+$/) + 2)));
    expect(new Set(lastColumn).size).toBe(1);
  });

  it.each([false, true])('prints the same from the plain text path (long: %s)', async (long) => {
    expect(await lsText({ ...p.ctx, long }, PLAIN)).toBe(renderLs(await ls({ ...p.ctx, long }), PLAIN));
    expect(await lsText({ ...p.ctx, long, name: 'plain' }, PLAIN)).toBe(renderLs(await ls({ ...p.ctx, long, name: 'plain' }), PLAIN));
  });
});

describe('the table built in SQL', () => {
  let p: CliProject;
  afterEach(async () => { await p.cleanup(); });
  const columns = [{ header: 'name', field: 'name' }, { header: 'stage dir', field: 'stageDir' }] as const;

  it('leaves cells that are not printable ASCII to format.ts: padded ones, and control characters anywhere', () => {
    p = cliProject();
    seed(p, [{ name: 'a' }, { name: '計算' }, { name: 'tab\there' }, { name: 'new\nline' }]);
    const store = openStore(p);
    try {
      expect(jobTableText(store, { name: ['a'] }, columns)).toBe(`name  stage dir\na     ${path.join(p.root, 'run_')}${store.list()[0]!.id}`);
      expect(jobTableText(store, { name: ['計算'] }, columns)).toBeUndefined();
      expect(jobTableText(store, { name: ['tab.here'] }, columns)).toBeUndefined();
      expect(jobTableText(store, { name: ['new\\nline'] }, columns)).toBeUndefined();
      expect(jobTableText(store, { name: ['a', 'new\\nline'] }, columns)).toBeUndefined();
    } finally {
      store.close();
    }
  });

  it('builds the text when only the last column is not ASCII', () => {
    p = cliProject();
    seed(p, [{ name: 'a', id: 'a_1' }]);
    const store = openStore(p);
    try {
      const stageDir = path.join(p.root, 'run_a_1');
      expect(jobTableText(store, {}, columns)).toBe(`name  stage dir\na     ${stageDir}`);
      store.update('a_1', { stageDir: path.join(p.root, 'run_日本') });
      expect(jobTableText(store, {}, columns)).toBe(`name  stage dir\na     ${path.join(p.root, 'run_日本')}`);
    } finally {
      store.close();
    }
  });
});
