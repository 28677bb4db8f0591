// One identity for a call: the restart hash is taken over the arguments exactly as they are sent to
// the job (the codec's encoding, object keys in a canonical order), so two calls re-attach to each
// other exactly when the job would receive the same thing.
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Job } from '../src/job/job.js';
import { tempProject, type TempProject } from './helpers/project.js';
import * as ops from './fixtures/jobs/ops.js';

const OPS = path.resolve('test/fixtures/jobs/ops.js');

let t: TempProject;
beforeEach(() => { t = tempProject(); });
afterEach(async () => { await t.cleanup(); });

function create(args: unknown[], extra: Record<string, unknown> = {}): Promise<Job> {
  return Job.create({ name: 'same', fn: ops.envOf, module: OPS, project: t.project, args, ...extra });
}

/** Whether a call with `later` re-attaches to an earlier call with `first`. */
async function sameCall(first: unknown[], later: unknown[], extra: Record<string, unknown> = {}): Promise<boolean> {
  const a = await create(first, extra);
  const b = await create(later, extra);
  expect(a.reattached).toBe(false);
  return b.reattached;
}

describe('the args part of the restart hash', () => {
  it('tells 0 from -0, as the job does', async () => {
    expect(await sameCall([0], [-0])).toBe(false);
    expect(await sameCall([[1, -0]], [[1, -0]])).toBe(true);
  });

  it('tells a key set to undefined from a missing key', async () => {
    expect(await sameCall([{ a: 1, b: undefined }], [{ a: 1 }])).toBe(false);
  });

  it('gives NaN one identity', async () => {
    expect(await sameCall([{ x: NaN }], [{ x: Number('not a number') }])).toBe(true);
  });

  it('does not depend on the order object keys were set in', async () => {
    expect(await sameCall([{ a: 1, b: { c: 2, d: 3 } }], [{ b: { d: 3, c: 2 }, a: 1 }])).toBe(true);
  });

  it('keeps the order of a Map, which the job sees', async () => {
    expect(await sameCall([new Map([[1, 'a'], [2, 'b']])], [new Map([[2, 'b'], [1, 'a']])])).toBe(false);
  });

  it('tells a typed array from a plain array of the same numbers', async () => {
    expect(await sameCall([new Float64Array([1, 2])], [[1, 2]])).toBe(false);
  });

  it('tells an own __proto__ key apart, and a null prototype', async () => {
    expect(await sameCall([JSON.parse('{"__proto__": {"x": 1}}')], [{}])).toBe(false);
    expect(await sameCall([Object.assign(Object.create(null) as object, { k: 1 })], [{ k: 1 }])).toBe(false);
  });

  it('leaves the hashIgnore keys of kwargs out, and only those', async () => {
    const kw = (verbose: boolean, factor: number) => ({ kwargs: { factor, verbose }, hashIgnore: ['verbose'] });
    const a = await Job.create({ name: 'kw', fn: ops.scale, module: OPS, project: t.project, args: [[1]], ...kw(true, 2) });
    const b = await Job.create({ name: 'kw', fn: ops.scale, module: OPS, project: t.project, args: [[1]], ...kw(false, 2) });
    const c = await Job.create({ name: 'kw', fn: ops.scale, module: OPS, project: t.project, args: [[1]], ...kw(false, 3) });
    expect([a.reattached, b.reattached, c.reattached]).toEqual([false, true, false]);
    expect(c.missReason).toMatch(/differs .* in: args$/);
  });

  it('tells a call without kwargs from one with empty kwargs', async () => {
    const a = await Job.create({ name: 'kw0', fn: ops.envOf, module: OPS, project: t.project, args: [[]] });
    const b = await Job.create({ name: 'kw0', fn: ops.envOf, module: OPS, project: t.project, args: [[]], kwargs: {} });
    expect([a.reattached, b.reattached]).toEqual([false, false]);
  });

  it('refuses what cannot be sent before hashing, naming the argument', async () => {
    await expect(create([1, { opts: { cache: new WeakMap() } }])).rejects.toThrow(/^args\[1\]\.opts\.cache: a WeakMap cannot be sent/);
  });
});
