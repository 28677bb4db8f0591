// Encoding of call arguments and results as JSON, for the job's files on disk and over the wire.
// Plain JSON loses undefined, NaN, Infinity, -0, BigInt, Date, Map, Set, typed arrays, Buffers,
// RegExps, URLs and more; those become `{"$xpr": TYPE, ...}` objects and come back as themselves.
// What has no faithful form (functions, symbols, weak collections, promises, instances of classes
// without toJSON, cycles) is refused with the path of the value and what to do: a value must
// never arrive as something else, e.g. a silent `{}`. Everything here is pure because the remote
// runner bundles it.
import { XprError } from '../errors.js';

const TAG = '$xpr';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const TYPED_ARRAYS = {
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array,
} as const;
type TypedArrayName = keyof typeof TYPED_ARRAYS;

// ---- where a value is, for error messages ----

/**
 * The path of a value inside the one being encoded. Kept as a chain of steps and turned into text
 * only when something is refused: building `args[0][123456]` for every element of a large array
 * would cost more than encoding it.
 */
type Where = string | { readonly up: Where; readonly key: string | number | symbol; readonly step: Step };
type Step = 'prop' | 'index' | 'mapKey' | 'mapValue' | 'setItem' | 'toJSON';

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function stepText(key: string | number | symbol, step: Step): string {
  switch (step) {
    case 'prop':
      if (typeof key === 'symbol') return `[${String(key)}]`;
      return typeof key === 'string' && IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
    case 'index': return `[${String(key)}]`;
    case 'mapKey': return `<key ${String(key)}>`;
    case 'mapValue': return `.get(${String(key)})`;
    case 'setItem': return `<item ${String(key)}>`;
    case 'toJSON': return '.toJSON()';
  }
}

function whereText(where: Where): string {
  const steps: string[] = [];
  let w = where;
  for (; typeof w !== 'string'; w = w.up) steps.push(stepText(w.key, w.step));
  return w + steps.reverse().join('');
}

function refuse(where: Where, what: string, todo: string): never {
  throw new XprError(`${whereText(where)}: ${what} cannot be sent to a job (${todo})`);
}

// ---- encode ----

/** Turn a value into JSON-safe data; throws an XprError naming where for what cannot be sent. */
export function encode(value: unknown, where = 'value'): Json {
  return encodeValue(value, where, new Set());
}

function encodeValue(value: unknown, where: Where, seen: Set<object>): Json {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isNaN(value)) return { [TAG]: 'NaN' };
      if (value === Infinity) return { [TAG]: 'Infinity' };
      if (value === -Infinity) return { [TAG]: '-Infinity' };
      if (Object.is(value, -0)) return { [TAG]: '-0' };
      return value;
    case 'undefined':
      return { [TAG]: 'undefined' };
    case 'bigint':
      return { [TAG]: 'bigint', v: value.toString() };
    case 'function':
      return refuse(where, 'a function', 'pass data, not code; a job imports its own code');
    case 'symbol':
      return refuse(where, 'a symbol', 'symbols are unique to one process; pass a string');
    default:
      break;
  }
  if (value === null) return null;
  const obj = value as object;
  if (seen.has(obj)) refuse(where, 'a circular reference', 'JSON holds trees; pass the data without the cycle');
  seen.add(obj);
  try {
    return encodeObject(obj, where, seen);
  } finally {
    seen.delete(obj);
  }
}

function encodeObject(obj: object, where: Where, seen: Set<object>): Json {
  if (Array.isArray(obj)) return encodeArray(obj, where, seen);
  const proto = Object.getPrototypeOf(obj) as object | null;
  // Plain objects first: they are most of what is sent.
  if (proto === Object.prototype || proto === null) {
    return hasToJSON(obj) ? encodeByToJSON(obj, where, seen) : encodeProps(obj, where, seen, proto === null);
  }
  return encodeTagged(obj, where, seen) ??
    (hasToJSON(obj) ? encodeByToJSON(obj, where, seen) : refuseInstance(obj, proto, where, seen));
}

function encodeArray(arr: readonly unknown[], where: Where, seen: Set<object>): Json[] {
  const out = new Array<Json>(arr.length);
  // A hole reads as undefined and is sent as undefined (JSON would make it null).
  for (let i = 0; i < arr.length; i++) out[i] = encodeValue(arr[i], { up: where, key: i, step: 'index' }, seen);
  return out;
}

/**
 * Own enumerable string-keyed properties. A `__proto__` key is defined, not assigned (assigning
 * would set the prototype and drop the key); a null prototype is kept, because
 * `dict.constructor` or `'toString' in dict` would answer differently without it.
 */
function encodeProps(obj: object, where: Where, seen: Set<object>, nullProto: boolean): Json {
  const out: Record<string, Json> = {};
  const src = obj as Record<string, unknown>;
  for (const k of Object.keys(obj)) setOwn(out, k, encodeValue(src[k], { up: where, key: k, step: 'prop' }, seen));
  refuseSymbolKeys(obj, where);
  // An object that itself has a `$xpr` key is wrapped so decode never mistakes it for a tag.
  if (nullProto) return { [TAG]: 'object', proto: null, v: out };
  return Object.hasOwn(out, TAG) ? { [TAG]: 'object', v: out } : out;
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function refuseSymbolKeys(obj: object, where: Where): void {
  for (const s of Object.getOwnPropertySymbols(obj)) {
    if (Object.prototype.propertyIsEnumerable.call(obj, s)) {
      refuse({ up: where, key: s, step: 'prop' }, 'a symbol-keyed property', 'JSON has string keys only; use a string key');
    }
  }
}

function bytesOf(view: ArrayBufferView | ArrayBuffer): string {
  const bytes = view instanceof ArrayBuffer ? Buffer.from(view) : Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  return bytes.toString('base64');
}

/** Built-in types JSON cannot hold that come back as themselves; undefined for anything else. */
function encodeTagged(obj: object, where: Where, seen: Set<object>): Json | undefined {
  if (obj instanceof Date) return { [TAG]: 'Date', v: obj.toISOString() };
  if (Buffer.isBuffer(obj)) return { [TAG]: 'Buffer', v: obj.toString('base64') };
  // A view is sent as the bytes it views (not its whole buffer) and comes back as a fresh view.
  if (obj instanceof DataView) return { [TAG]: 'DataView', v: bytesOf(obj) };
  if (ArrayBuffer.isView(obj)) return encodeTypedArray(obj, where);
  if (obj instanceof ArrayBuffer) return { [TAG]: 'ArrayBuffer', v: bytesOf(obj) };
  if (obj instanceof Map) {
    return {
      [TAG]: 'Map',
      v: [...obj].map(([k, v], i) => [
        encodeValue(k, { up: where, key: i, step: 'mapKey' }, seen), encodeValue(v, { up: where, key: i, step: 'mapValue' }, seen),
      ]),
    };
  }
  if (obj instanceof Set) return { [TAG]: 'Set', v: [...obj].map((v, i) => encodeValue(v, { up: where, key: i, step: 'setItem' }, seen)) };
  if (obj instanceof Error) return { [TAG]: 'Error', v: serializeError(obj) as unknown as Json };
  if (obj instanceof RegExp) {
    // lastIndex is state a global or sticky RegExp carries between matches.
    return { [TAG]: 'RegExp', source: obj.source, flags: obj.flags, ...(obj.lastIndex ? { lastIndex: obj.lastIndex } : {}) };
  }
  if (obj instanceof URL) return { [TAG]: 'URL', v: obj.href };
  return undefined;
}

function encodeTypedArray(view: ArrayBufferView, where: Where): Json {
  // The built-in kind, also for a subclass (whose constructor name the job would not know).
  const kind = (view as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag];
  if (!Object.hasOwn(TYPED_ARRAYS, kind)) refuse(where, `a ${kind}`, 'convert it to a Float64Array or another typed array every Node reads');
  return { [TAG]: 'TypedArray', t: kind, v: bytesOf(view) };
}

function hasToJSON(obj: object): boolean {
  return typeof (obj as { toJSON?: unknown }).toJSON === 'function';
}

/** An object that says how it is JSON (a toJSON method) is sent as that, as JSON.stringify would. */
function encodeByToJSON(obj: object, where: Where, seen: Set<object>): Json {
  const key = typeof where === 'string' ? '' : String(where.key);
  const json = (obj as { toJSON(key: string): unknown }).toJSON(key);
  if (json === obj) return encodeProps(obj, where, seen, false);
  return encodeValue(json, { up: where, key: '', step: 'toJSON' }, seen);
}

/** Built-ins whose contents cannot travel, and what to send instead. */
const UNSENDABLE: readonly (readonly [new (...a: never[]) => object, string, string])[] = [
  [WeakMap, 'a WeakMap', 'its keys are held weakly and cannot be listed; pass a Map, or leave it out'],
  [WeakSet, 'a WeakSet', 'its items are held weakly and cannot be listed; pass a Set or an array, or leave it out'],
  [WeakRef, 'a WeakRef', 'pass the value it refers to'],
  [Promise, 'a Promise', 'await it and pass the value'],
  [SharedArrayBuffer, 'a SharedArrayBuffer', 'a job cannot share memory with this process; pass a copy as a typed array'],
  [Number, 'a boxed Number', 'pass the primitive, x.valueOf()'],
  [String, 'a boxed String', 'pass the primitive, x.valueOf()'],
  [Boolean, 'a boxed Boolean', 'pass the primitive, x.valueOf()'],
  [BigInt as unknown as new () => object, 'a boxed BigInt', 'pass the primitive, x.valueOf()'],
  [Symbol as unknown as new () => object, 'a boxed Symbol', 'symbols are unique to one process; pass a string'],
];

function refuseInstance(obj: object, proto: object, where: Where, seen: Set<object>): Json {
  for (const [type, what, todo] of UNSENDABLE) if (obj instanceof type) refuse(where, what, todo);
  const ctor = Object.hasOwn(proto, 'constructor') ? (proto as { constructor: unknown }).constructor : undefined;
  const name = typeof ctor === 'function' && ctor.name ? ctor.name : undefined;
  // An object from another realm (a vm context) is still a plain object, with that realm's Object.
  if (name === 'Object' && Object.getPrototypeOf(proto) === null) return encodeProps(obj, where, seen, false);
  if (!name) {
    refuse(where, 'an object whose prototype is another object', 'its inherited properties would be lost; pass a plain object with its own properties');
  }
  // Private fields and prototype methods do not travel, and the job could not rebuild the class.
  return refuse(where, `an instance of class ${name}`, `pass a plain object, or give ${name} a toJSON()`);
}

// ---- decode ----

function bytesFrom(base64: string): ArrayBuffer {
  const bytes = Buffer.from(base64, 'base64');
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}

function decodeProps(data: Record<string, unknown>, nullProto: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = nullProto ? Object.create(null) as Record<string, unknown> : {};
  for (const k of Object.keys(data)) setOwn(out, k, decode(data[k]));
  return out;
}

/** Inverse of `encode`. */
export function decode(data: unknown): unknown {
  if (data === null || typeof data !== 'object') return data;
  if (Array.isArray(data)) return data.map(decode);
  const o = data as Record<string, unknown>;
  const tag = o[TAG];
  if (typeof tag !== 'string') return decodeProps(o, false);
  switch (tag) {
    case 'NaN': return NaN;
    case 'Infinity': return Infinity;
    case '-Infinity': return -Infinity;
    case '-0': return -0;
    case 'undefined': return undefined;
    case 'bigint': return BigInt(o.v as string);
    case 'Date': return new Date(o.v as string);
    case 'Buffer': return Buffer.from(o.v as string, 'base64');
    case 'TypedArray': {
      const Ctor = TYPED_ARRAYS[o.t as TypedArrayName];
      if (!Ctor) throw new TypeError(`unknown typed array type ${String(o.t)}`);
      return new Ctor(bytesFrom(o.v as string));
    }
    case 'DataView': return new DataView(bytesFrom(o.v as string));
    case 'ArrayBuffer': return bytesFrom(o.v as string);
    case 'Map': return new Map((o.v as [unknown, unknown][]).map(([k, v]) => [decode(k), decode(v)]));
    case 'Set': return new Set((o.v as unknown[]).map(decode));
    case 'Error': return reviveError(o.v as SerializedError);
    case 'RegExp': {
      const re = new RegExp(o.source as string, o.flags as string);
      if (typeof o.lastIndex === 'number') re.lastIndex = o.lastIndex;
      return re;
    }
    case 'URL': return new URL(o.v as string);
    case 'object': return decodeProps(o.v as Record<string, unknown>, o.proto === null);
    default: throw new TypeError(`unknown encoded type "${tag}"`);
  }
}

/** An error as it crosses from the job back to the caller. */
export interface SerializedError {
  name: string;
  message: string;
  stack: string;
  code?: string;
  cause?: SerializedError;
}

/** Name, message, stack and cause chain (depth-limited) of anything thrown. */
export function serializeError(err: unknown, depth = 0): SerializedError {
  if (err instanceof Error) {
    const out: SerializedError = { name: err.name, message: err.message, stack: err.stack ?? `${err.name}: ${err.message}` };
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
    if (err.cause !== undefined && depth < 5) out.cause = serializeError(err.cause, depth + 1);
    return out;
  }
  const text = typeof err === 'string' ? err : safeString(err);
  return { name: 'NonErrorThrown', message: text, stack: `(a non-Error value was thrown: ${text})` };
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** An Error object rebuilt from its serialized form (name and stack kept). */
export function reviveError(s: SerializedError): Error {
  const err = new Error(s.message, s.cause ? { cause: reviveError(s.cause) } : undefined);
  err.name = s.name;
  err.stack = s.stack;
  if (s.code) (err as Error & { code?: string }).code = s.code;
  return err;
}
