import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XprError } from '../src/errors.js';
import {
  ConfigSet, expandGlob, formatJsonLines, OutputSpec, OutputWriteError, parseExtxyz, parseJsonLines, type Frame, type Loc,
  type Located,
} from '../src/configset/index.js';
import { thrown } from './helpers/thrown.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'configset');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xpr-configset-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const p = (...parts: string[]): string => join(dir, ...parts);
const writeJsonl = (name: string, items: unknown[]): string => {
  mkdirSync(join(dir, name, '..'), { recursive: true });
  writeFileSync(p(name), formatJsonLines(items));
  return p(name);
};
const readJsonl = (path: string): unknown[] => parseJsonLines(readFileSync(path, 'utf8'), path);

async function located<T>(cs: ConfigSet<T>): Promise<Array<[T, Loc]>> {
  const out: Array<[T, Loc]> = [];
  for await (const { item, loc } of cs) out.push([item, loc]);
  return out;
}


async function thrownAsync(fn: () => Promise<unknown>): Promise<XprError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(XprError);
    return e as XprError;
  }
  throw new Error('expected an XprError');
}

describe('JSON Lines', () => {
  it('skips blank lines and names file:line in errors', async () => {
    expect(parseJsonLines('{"a":1}\n\n  \n[2]\n')).toEqual([{ a: 1 }, [2]]);
    const bad = join(FIXTURES, 'bad.jsonl');
    expect(thrown(() => parseJsonLines(readFileSync(bad, 'utf8'), bad)).message).toMatch(/bad\.jsonl:3: invalid JSON/);
    const err = await thrownAsync(() => new ConfigSet(bad).toArray());
    expect(err.message).toMatch(/bad\.jsonl:3: invalid JSON/);
  });
});

describe('ConfigSet', () => {
  it('iterates a flat array with [i] locations', async () => {
    const cs = new ConfigSet([{ x: 1 }, { x: 2 }]);
    expect(await located(cs)).toEqual([[{ x: 1 }, [0]], [{ x: 2 }, [1]]]);
    expect(cs.kind).toBe('items');
    expect(cs.files).toEqual([]);
  });

  it('keeps nested groups, including empty ones', async () => {
    const items = [['a', 'b'], [], [['c'], 'd']];
    const cs = new ConfigSet(items);
    expect(await located(cs)).toEqual([['a', [0, 0]], ['b', [0, 1]], ['c', [2, 0, 0]], ['d', [2, 1]]]);
    expect(await cs.toArray()).toEqual(['a', 'b', 'c', 'd']);
    expect(await cs.groups()).toEqual(items);
    expect(await cs.count()).toBe(4);
  });

  it('takes array items as items with nested: false', async () => {
    const cs = new ConfigSet([[1, 2], [3, 4]], { nested: false });
    expect(await located(cs)).toEqual([[[1, 2], [0]], [[3, 4], [1]]]);
  });

  it('reads one file lazily with [i] locations', async () => {
    const cs = new ConfigSet(join(FIXTURES, 'items.jsonl'));
    expect(cs.kind).toBe('file');
    expect(await located(cs)).toEqual([[{ x: 1 }, [0]], [{ x: 2 }, [1]], [{ x: 3 }, [2]]]);
    const xyz = new ConfigSet<Frame>('ase-style.xyz', { fileRoot: FIXTURES });
    const frames = await xyz.toArray();
    expect(frames.map((f) => f.natoms)).toEqual([2, 3]);
  });

  it('expands globs (sorted, no dot files, ** for subdirs) into file groups', async () => {
    writeJsonl('b.jsonl', [{ f: 'b' }]);
    writeJsonl('a.jsonl', [{ f: 'a' }, { f: 'a2' }]);
    writeJsonl('.hidden.jsonl', [{ f: 'hidden' }]);
    writeJsonl('sub/c.jsonl', [{ f: 'c' }]);
    writeFileSync(p('notes.txt'), 'x');
    expect(expandGlob(p('*.jsonl'))).toEqual([p('a.jsonl'), p('b.jsonl')]);
    expect(expandGlob(p('?.json[l]'))).toEqual([p('a.jsonl'), p('b.jsonl')]);
    expect(expandGlob(p('**', '*.jsonl'))).toEqual([p('a.jsonl'), p('b.jsonl'), p('sub', 'c.jsonl')]);

    const cs = new ConfigSet('*.jsonl', { fileRoot: dir });
    expect(cs.kind).toBe('files');
    expect(cs.files).toEqual([p('a.jsonl'), p('b.jsonl')]);
    expect(await located(cs)).toEqual([[{ f: 'a' }, [0, 0]], [{ f: 'a2' }, [0, 1]], [{ f: 'b' }, [1, 0]]]);
    expect(await cs.groups()).toEqual([[{ f: 'a' }, { f: 'a2' }], [{ f: 'b' }]]);
  });

  it('reads several files as groups, one file per group, even a single one', async () => {
    writeJsonl('one.jsonl', [1, 2]);
    writeJsonl('two.jsonl', []);
    writeJsonl('three.jsonl', [3]);
    const cs = ConfigSet.fromFiles(['one.jsonl', 'two.jsonl', 'three.jsonl'], { fileRoot: dir });
    expect(await located(cs)).toEqual([[1, [0, 0]], [2, [0, 1]], [3, [2, 0]]]);
    expect(await cs.groups()).toEqual([[1, 2], [], [3]]);
    const single = new ConfigSet({ files: p('one.jsonl') });
    expect(await located(single)).toEqual([[1, [0, 0]], [2, [0, 1]]]);
  });

  it('explains missing files, empty globs and unknown extensions', () => {
    expect(thrown(() => new ConfigSet(p('nope.jsonl'))).message).toMatch(/Input file not found: .*nope\.jsonl/);
    expect(thrown(() => new ConfigSet(p('*.xyz'))).message).toMatch(/matched no files/);
    writeFileSync(p('data.csv'), '');
    const err = thrown(() => new ConfigSet(p('data.csv')));
    expect(err.message).toMatch(/Cannot tell the format/);
    expect(err.hint).toMatch(/\.jsonl.*\.xyz/);
  });
});

/** Runs `op` over `inputs` the way the autoparallelize wrapper will: in chunks, stored out of order. */
async function runChunked<T, R>(
  inputs: ConfigSet<T>, outputs: OutputSpec<R>, op: (item: T) => R | R[] | null, chunk = 2,
): Promise<void> {
  const all: Array<Located<T>> = [];
  for await (const x of inputs) all.push(x);
  const chunks: Array<Array<Located<T>>> = [];
  for (let i = 0; i < all.length; i += chunk) chunks.push(all.slice(i, i + chunk));
  // Later chunks finish first.
  for (const c of chunks.reverse()) for (const { item, loc } of c) outputs.store(op(item), loc);
  outputs.close();
}

describe('OutputSpec in memory', () => {
  it('mirrors the input nesting, with several or no results per input', async () => {
    const inputs = new ConfigSet([[1, 2, 3], [4], [5, 6]]);
    const outputs = new OutputSpec<number>();
    expect(outputs.mode).toBe('memory');
    expect(outputs.isDone()).toBe(false);
    await runChunked(inputs, outputs, (x) => (x === 2 ? null : x === 3 ? [30, 31] : x === 4 ? null : x * 10));
    const out = outputs.toConfigSet();
    expect(await out.groups()).toEqual([[10, [30, 31]], [], [50, 60]]);
    expect(await out.toArray()).toEqual([10, 30, 31, 50, 60]);
  });

  it('refuses a location stored twice and store after close', () => {
    const outputs = new OutputSpec();
    outputs.store(1, [0]);
    expect(thrown(() => outputs.store(2, [0])).message).toMatch(/stored twice/);
    outputs.close();
    expect(thrown(() => outputs.store(3, [1])).message).toMatch(/after close/);
  });
});

describe('OutputSpec to one file', () => {
  it('writes under a temporary name and renames on close', async () => {
    const inputs = new ConfigSet([{ x: 1 }, { x: 2 }, { x: 3 }]);
    const out = p('out', 'results.jsonl');
    const outputs = new OutputSpec(out);
    expect(outputs.isDone()).toBe(false);
    for await (const { item, loc } of inputs) outputs.store({ y: (item as { x: number }).x * 3 }, loc);
    expect(existsSync(out)).toBe(false);
    const temps = readdirSync(p('out'));
    expect(temps).toHaveLength(1);
    expect(temps[0]).toMatch(/^\.results\.jsonl\.tmp-/);
    expect(expandGlob(p('out', '*'))).toEqual([]);
    outputs.close();
    expect(readdirSync(p('out'))).toEqual(['results.jsonl']);
    expect(readJsonl(out)).toEqual([{ y: 3 }, { y: 6 }, { y: 9 }]);
    expect(await outputs.toConfigSet().toArray()).toEqual([{ y: 3 }, { y: 6 }, { y: 9 }]);
    expect(outputs.isDone()).toBe(true);
  });

  it('writes out-of-order results in input order, skipping null results', async () => {
    const inputs = new ConfigSet([1, 2, 3, 4, 5, 6, 7].map((x) => ({ x })));
    const outputs = new OutputSpec<{ x: number }>(p('r.jsonl'));
    await runChunked(inputs, outputs, (it) => (it.x % 3 === 0 ? null : { x: it.x * 10 }), 3);
    expect(readJsonl(p('r.jsonl'))).toEqual([10, 20, 40, 50, 70].map((x) => ({ x })));
  });

  it('streams results that arrive in order, buffering only the ones that come early', () => {
    const outputs = new OutputSpec(p('s.jsonl'));
    const temp = (): string => {
      const [name] = readdirSync(dir).filter((n) => n.startsWith('.s.jsonl.tmp-'));
      return name === undefined ? '' : readFileSync(p(name), 'utf8');
    };
    outputs.store(1, [0]);
    expect(temp()).toBe('1\n');
    outputs.store(3, [2]);
    outputs.store(4, [3]);
    expect(temp()).toBe('1\n');
    outputs.store(null, [1]);
    expect(temp()).toBe('1\n3\n4\n');
    outputs.close();
    expect(readJsonl(p('s.jsonl'))).toEqual([1, 3, 4]);
  });

  it('keeps groups and several results per input with _ConfigSet_loc markers', async () => {
    const inputs = new ConfigSet([[{ n: 1 }, { n: 2 }], [{ n: 3 }]]);
    const op = (it: { n: number }) => (it.n === 2 ? [{ n: 20 }, { n: 21 }] : { n: it.n * 10 });
    const mem = new OutputSpec<{ n: number }>();
    await runChunked(inputs as ConfigSet<{ n: number }>, mem, op);
    const file = new OutputSpec<{ n: number }>(p('nested.jsonl'));
    await runChunked(inputs as ConfigSet<{ n: number }>, file, op);
    expect(readFileSync(p('nested.jsonl'), 'utf8')).toBe(
      '{"n":10,"_ConfigSet_loc":" / 0 / 0"}\n{"n":20,"_ConfigSet_loc":" / 0 / 1 / 0"}\n' +
      '{"n":21,"_ConfigSet_loc":" / 0 / 1 / 1"}\n{"n":30,"_ConfigSet_loc":" / 1 / 0"}\n',
    );
    const fromFile = file.toConfigSet();
    expect(await fromFile.groups()).toEqual(await mem.toConfigSet().groups());
    expect(await located(fromFile)).toEqual(await located(mem.toConfigSet()));
  });

  it('keeps nesting of frames in an extxyz file, readable as plain frames', async () => {
    const frame = (e: number): Frame => ({ natoms: 1, info: { e }, arrays: { species: ['H'], pos: [[0, 0, e]] } });
    const outputs = new OutputSpec<Frame>(p('frames.xyz'));
    outputs.store([frame(1), frame(2)], [0]);
    outputs.store(frame(3), [1]);
    outputs.close();
    const frames = parseExtxyz(readFileSync(p('frames.xyz'), 'utf8'));
    expect(frames.map((f) => f.info)).toEqual([
      { e: 1, _ConfigSet_loc: ' / 0 / 0' }, { e: 2, _ConfigSet_loc: ' / 0 / 1' }, { e: 3 },
    ]);
    const groups = await outputs.toConfigSet().groups();
    expect((groups as Frame[][])[0]?.map((f) => f.info)).toEqual([{ e: 1 }, { e: 2 }]);
    expect((groups[1] as Frame).info).toEqual({ e: 3 });
  });

  it('refuses to write a non-frame to extxyz when stored, naming the input', () => {
    const outputs = new OutputSpec(p('x.xyz'));
    const err = thrown(() => outputs.store({ y: 1 }, [0]));
    expect(err.message).toMatch(/^result for \/0: Cannot write extended XYZ: expected a frame/);
    // Nothing changed: the location can still be stored.
    outputs.store({ natoms: 0, info: {}, arrays: {} }, [0]);
    outputs.close();
    expect(readFileSync(p('x.xyz'), 'utf8')).toBe('0\nProperties=species:S:1:pos:R:3\n');
  });

  it('drops the output when a nested result cannot be marked (non-object JSON items)', () => {
    const outputs = new OutputSpec(p('n.jsonl'));
    const err = thrown(() => outputs.store([1, 2], [0]));
    expect(err.message).toMatch(/result for \/0: Cannot keep the grouping of a number items/);
    expect(readdirSync(dir)).toEqual([]);
    expect(thrown(() => outputs.close()).message).toMatch(/after abort/);
  });
});

describe('OutputSpec with one file per input file', () => {
  function makeInputs(): ConfigSet<{ id: string }> {
    writeJsonl('in/a.jsonl', [{ id: 'a0' }, { id: 'a1' }, { id: 'a2' }]);
    writeJsonl('in/b.jsonl', [{ id: 'b0' }, { id: 'b1' }]);
    writeJsonl('in/c.jsonl', [{ id: 'c0' }, { id: 'c1' }]);
    return new ConfigSet<{ id: string }>(p('in', '*.jsonl'));
  }

  it('puts results in the right file when a result is null mid-file and at the end of a file', async () => {
    const inputs = makeInputs();
    const outputs = new OutputSpec<{ id: string }>(['out/a.jsonl', 'out/b.jsonl', 'out/c.jsonl'], { fileRoot: dir }).bind(inputs);
    expect(outputs.mode).toBe('perInput');
    // a1 (middle of a) and a2 (end of a) give nothing; b1 (end of b) too.
    const none = new Set(['a1', 'a2', 'b1']);
    await runChunked(inputs, outputs, (it) => (none.has(it.id) ? null : { id: it.id.toUpperCase() }), 2);
    expect(readJsonl(p('out/a.jsonl'))).toEqual([{ id: 'A0' }]);
    expect(readJsonl(p('out/b.jsonl'))).toEqual([{ id: 'B0' }]);
    expect(readJsonl(p('out/c.jsonl'))).toEqual([{ id: 'C0' }, { id: 'C1' }]);
    expect(await outputs.toConfigSet().groups()).toEqual([[{ id: 'A0' }], [{ id: 'B0' }], [{ id: 'C0' }, { id: 'C1' }]]);
  });

  it('writes an empty file for an input whose results are all null', async () => {
    const inputs = makeInputs();
    const outputs = new OutputSpec<{ id: string }>((f) => f.replace('/in/', '/out/')).bind(inputs);
    await runChunked(inputs, outputs, (it) => (it.id.startsWith('b') ? null : it));
    expect(outputs.outputFiles).toEqual(['a', 'b', 'c'].map((n) => p('out', `${n}.jsonl`)));
    expect(readFileSync(p('out/b.jsonl'), 'utf8')).toBe('');
    expect(await outputs.toConfigSet().groups()).toEqual([
      [{ id: 'a0' }, { id: 'a1' }, { id: 'a2' }], [], [{ id: 'c0' }, { id: 'c1' }],
    ]);
  });

  it('maps input names to output names with an object', async () => {
    const inputs = makeInputs();
    const outputs = new OutputSpec({
      'in/a.jsonl': 'o/1.jsonl', 'in/b.jsonl': 'o/2.jsonl', 'in/c.jsonl': 'o/3.xyz',
    }, { fileRoot: dir }).bind(inputs);
    expect(outputs.outputFiles).toEqual([p('o/1.jsonl'), p('o/2.jsonl'), p('o/3.xyz')]);
    const unbound = new OutputSpec({ 'x.jsonl': 'y.jsonl' });
    expect(thrown(() => unbound.isDone()).hint).toMatch(/bind\(inputs\)/);
    expect(thrown(() => unbound.bind(inputs)).message).toMatch(/no output file for input .*a\.jsonl/);
  });

  it('checks the number of output files against the inputs', () => {
    const inputs = makeInputs();
    expect(thrown(() => new OutputSpec([p('x.jsonl'), p('y.jsonl')]).bind(inputs)).message)
      .toMatch(/2 output file\(s\) for 3 input file\(s\)/);
  });

  it('per-input list with one input file maps that file whole', async () => {
    writeJsonl('single.jsonl', [1, 2, 3]);
    const inputs = new ConfigSet(p('single.jsonl'));
    const outputs = new OutputSpec([p('single.out.jsonl')]).bind(inputs);
    await runChunked(inputs, outputs, (x) => (x === 2 ? null : x));
    expect(readJsonl(p('single.out.jsonl'))).toEqual([1, 3]);
  });

  it('writes per-group files for nested in-memory inputs', async () => {
    const inputs = new ConfigSet([[1, 2], [3]]);
    const outputs = new OutputSpec([p('g0.jsonl'), p('g1.jsonl')]).bind(inputs);
    await runChunked(inputs, outputs, (x) => x);
    expect(readJsonl(p('g0.jsonl'))).toEqual([1, 2]);
    expect(readJsonl(p('g1.jsonl'))).toEqual([3]);
  });
});

describe('OutputSpec restart and overwrite', () => {
  it('is done when every output exists; refuses to clobber without overwrite', async () => {
    const inputs = new ConfigSet([1, 2]);
    const first = new OutputSpec(p('o.jsonl'));
    await runChunked(inputs, first, (x) => x);

    const again = new OutputSpec(p('o.jsonl'));
    expect(again.isDone()).toBe(true);
    expect(await again.toConfigSet().toArray()).toEqual([1, 2]);
    const err = thrown(() => again.store(5, [0]));
    expect(err.message).toMatch(/already exist/);
    expect(err.hint).toMatch(/isDone\(\) is true/);

    const redo = new OutputSpec(p('o.jsonl'), { overwrite: true });
    expect(redo.isDone()).toBe(false);
    redo.store(7, [0]);
    expect(readJsonl(p('o.jsonl'))).toEqual([1, 2]);
    redo.close();
    expect(readJsonl(p('o.jsonl'))).toEqual([7]);
  });

  it('is not done while some per-input outputs are missing, and says so', () => {
    writeJsonl('a.out.jsonl', [1]);
    const outputs = new OutputSpec([p('a.out.jsonl'), p('b.out.jsonl')]);
    expect(outputs.isDone()).toBe(false);
    const err = thrown(() => outputs.store(1, [1, 0]));
    expect(err.message).toMatch(/a\.out\.jsonl/);
    expect(err.hint).toMatch(/delete them, or pass \{ overwrite: true \}/);
  });

  it('a killed run leaves only a temporary file, so the next run is not done', () => {
    const outputs = new OutputSpec(p('k.jsonl'));
    outputs.store({ a: 1 }, [0]);
    // The process "dies" here: no close().
    const next = new OutputSpec(p('k.jsonl'));
    expect(next.isDone()).toBe(false);
    expect(thrown(() => next.toConfigSet()).message).toMatch(/before close/);
    outputs.abort();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('OutputSpec checks that it can write before any work', () => {
  it('names an output path that is a directory, and such an output is not done', () => {
    mkdirSync(p('out.jsonl'));
    const outputs = new OutputSpec(p('out.jsonl'));
    expect(outputs.isDone()).toBe(false);
    const err = thrown(() => outputs.checkWritable());
    expect(err).toBeInstanceOf(OutputWriteError);
    expect(err.message).toBe(`Cannot write the output file ${p('out.jsonl')}: it is a directory`);
    expect(err.hint).toMatch(/Name a file/);
  });

  it('names a parent that is a file, and lists every output that cannot be written', () => {
    writeFileSync(p('f'), '');
    mkdirSync(p('d.jsonl'));
    const err = thrown(() => new OutputSpec([p('f', 'x', 'a.jsonl'), p('d.jsonl'), p('ok.jsonl')]).checkWritable());
    expect(err.message).toBe(`Cannot write 2 output files:\n  ${p('f', 'x', 'a.jsonl')}: ${p('f')} is a file, not a directory\n  ${p('d.jsonl')}: it is a directory`);
  });

  it('accepts a missing dir under a writable one without creating anything', () => {
    new OutputSpec(p('new', 'deeper', 'o.jsonl')).checkWritable();
    new OutputSpec().checkWritable();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses partly existing outputs up front, not at the first result', () => {
    writeJsonl('a.jsonl', [1]);
    const err = thrown(() => new OutputSpec([p('a.jsonl'), p('b.jsonl')]).checkWritable());
    expect(err.message).toMatch(/already exist: .*a\.jsonl/);
  });

  it('reports the write error itself when the output cannot be written, not a cleanup error', () => {
    writeFileSync(p('f'), 'keep');
    const outputs = new OutputSpec(p('f', 'o.jsonl'));
    const err = thrown(() => outputs.store({ a: 1 }, [0]));
    expect(err).toBeInstanceOf(OutputWriteError);
    expect(err.message).toBe(`Cannot write the output file ${p('f', 'o.jsonl')}: ${p('f')} is a file, not a directory`);
    expect((err as OutputWriteError).path).toBe(p('f', 'o.jsonl'));
    outputs.abort();
    expect(readdirSync(dir)).toEqual(['f']);
    expect(readFileSync(p('f'), 'utf8')).toBe('keep');
  });
});
