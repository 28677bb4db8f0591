import { describe, expect, it } from 'vitest';
import { XprError } from '../src/errors.js';
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

// Values JSON has no form for must either come back as themselves or be refused at creation,
// naming where they are: never arrive as `{}`.
describe('codec: no silent loss', () => {
  it('round-trips a RegExp with its source, flags and lastIndex', () => {
    const re = /a+(b)?/giu;
    re.lastIndex = 3;
    const back = roundTrip(re) as RegExp;
    expect(back).toBeInstanceOf(RegExp);
    expect([back.source, back.flags, back.lastIndex]).toEqual([re.source, re.flags, 3]);
  });

  it('round-trips a URL as its href', () => {
    const back = roundTrip({ at: new URL('https://user@example.org:8443/a b?q=1#frag') }) as { at: URL };
    expect(back.at).toBeInstanceOf(URL);
    expect(back.at.href).toBe('https://user@example.org:8443/a%20b?q=1#frag');
  });

  it('round-trips a DataView as the bytes it views, in a fresh DataView', () => {
    const buf = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]).buffer;
    const back = roundTrip(new DataView(buf, 2, 3)) as DataView;
    expect(back).toBeInstanceOf(DataView);
    expect([back.byteOffset, back.byteLength, back.buffer.byteLength]).toEqual([0, 3, 3]);
    expect([...new Uint8Array(back.buffer)]).toEqual([2, 3, 4]);
  });

  it('round-trips an ArrayBuffer and a typed array of a subclass', () => {
    class Samples extends Float64Array {}
    const back = roundTrip([new Uint8Array([9, 8]).buffer, new Samples([0.5])]) as [ArrayBuffer, Float64Array];
    expect(back[0]).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(back[0])]).toEqual([9, 8]);
    expect(back[1]).toEqual(new Float64Array([0.5]));
  });

  it('round-trips a plain object with an own __proto__ key exactly', () => {
    const value = JSON.parse('{"a": 1, "__proto__": {"polluted": true}, "nested": {"__proto__": [1, 2]}}') as Record<string, unknown>;
    const back = roundTrip(value) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back)).toEqual(['a', '__proto__', 'nested']);
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toEqual({ polluted: true });
    expect((back as { polluted?: unknown }).polluted).toBeUndefined();
    const nested = back.nested as object;
    expect(Object.getPrototypeOf(nested)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(nested, '__proto__')?.value).toEqual([1, 2]);
  });

  it('round-trips a null-prototype object with its null prototype', () => {
    const dict = Object.assign(Object.create(null) as Record<string, unknown>, { constructor: 'c', x: 1 });
    const back = roundTrip({ dict }) as { dict: Record<string, unknown> };
    expect(Object.getPrototypeOf(back.dict)).toBeNull();
    expect({ ...back.dict }).toEqual({ constructor: 'c', x: 1 });
  });

  it('encodes a class instance that has toJSON as what toJSON returns, and keeps Date tagged', () => {
    class Point {
      #secret = 1;
      constructor(readonly x: number, readonly y: number) {}
      toJSON() { return { x: this.x, y: this.y, s: this.#secret }; }
    }
    expect(roundTrip([new Point(1, -0), new Date(5)])).toEqual([{ x: 1, y: -0, s: 1 }, new Date(5)]);
  });

  it.each([
    ['a WeakMap', () => new WeakMap(), /args\[1\]\.opts\.cache: a WeakMap cannot be sent to a job \(.+\)/],
    ['a WeakSet', () => new WeakSet(), /args\[1\]\.opts\.cache: a WeakSet cannot be sent to a job \(.+\)/],
    ['a Promise', () => Promise.resolve(1), /args\[1\]\.opts\.cache: a Promise cannot be sent to a job \(await it/],
    ['a symbol', () => Symbol('s'), /args\[1\]\.opts\.cache: a symbol cannot be sent to a job/],
    ['a boxed number', () => Object(1) as object, /args\[1\]\.opts\.cache: a boxed Number cannot be sent to a job/],
    ['a SharedArrayBuffer', () => new SharedArrayBuffer(4), /args\[1\]\.opts\.cache: a SharedArrayBuffer cannot be sent to a job/],
  ])('refuses %s, naming the argument path, with an XprError', (_label, make, message) => {
    const args = [1, { opts: { cache: make() } }];
    const attempt = () => args.map((a, i) => encode(a, `args[${i}]`));
    expect(attempt).toThrow(XprError);
    expect(attempt).toThrow(message);
  });

  it('refuses an instance of a class without toJSON, naming the class', () => {
    class Foo {
      #state = new Map([[1, 2]]);
      get size() { return this.#state.size; }
    }
    const attempt = () => encode(new Foo(), 'args[0]');
    expect(attempt).toThrow(XprError);
    expect(attempt).toThrow(/^args\[0\]: an instance of class Foo cannot be sent to a job.*pass a plain object, or give Foo a toJSON\(\)/);
  });

  it('refuses an object whose prototype is another plain object (its inherited keys would be lost)', () => {
    expect(() => encode({ inner: Object.create({ inherited: 1 }) as object }, 'kwargs')).toThrow(/^kwargs\.inner: an object whose prototype/);
  });

  it('refuses a symbol-keyed property, and names non-identifier keys readably', () => {
    expect(() => encode({ 'a b': { [Symbol('tag')]: 1 } }, 'args[0]')).toThrow(/^args\[0\]\["a b"\]\[Symbol\(tag\)\]: a symbol-keyed property/);
  });

  it('refuses functions and cycles with an XprError', () => {
    expect(() => encode([() => 1], 'args[0]')).toThrow(XprError);
    const cyc: unknown[] = [];
    cyc.push(new Map([[1, cyc]]));
    expect(() => encode(cyc, 'args[0]')).toThrow(/^args\[0\]\[0\]\.get\(0\): a circular reference cannot be sent/);
  });
});
