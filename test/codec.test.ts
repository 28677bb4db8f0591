import { describe, expect, it } from 'vitest';
import { decode, encode, serializeError } from '../src/util/codec.js';

const roundTrip = (v: unknown) => decode(JSON.parse(JSON.stringify(encode(v))));

describe('codec', () => {
  it.each([
    ['numbers', [1, -0, NaN, Infinity, -Infinity, 1.5e-300]],
    ['undefined in objects and arrays', { a: undefined, b: [undefined, null] }],
    ['bigint', 12345678901234567890n],
    ['Date', new Date('2020-01-02T03:04:05.678Z')],
    ['Map and Set', new Map<unknown, unknown>([['k', new Set([1, 'x'])], [2, { n: 1 }]])],
    ['typed arrays', [new Float32Array([1.5, -2]), new Int32Array([7]), new BigInt64Array([5n])]],
    ['Buffer', Buffer.from('bytes')],
    ['an object that has a $xpr key of its own', { $xpr: 'NaN', other: 1 }],
  ])('round-trips %s', (_label, value) => {
    expect(roundTrip(value)).toEqual(value);
  });

  it('keeps -0 distinct from 0', () => {
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
  });

  it('refuses functions and cycles, naming where', () => {
    expect(() => encode({ a: [1, () => 1] }, 'args[0]')).toThrow(/args\[0\]\.a\[1\]: a function cannot be sent/);
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => encode(cyc)).toThrow(/circular/);
  });

  it('serializes errors with name, stack and cause', () => {
    const err = new TypeError('outer', { cause: new RangeError('inner') });
    const s = serializeError(err);
    expect(s.name).toBe('TypeError');
    expect(s.cause?.name).toBe('RangeError');
    const back = roundTrip(err) as Error;
    expect(back.name).toBe('TypeError');
    expect((back.cause as Error).message).toBe('inner');
    expect(serializeError('just a string').name).toBe('NonErrorThrown');
  });
});
