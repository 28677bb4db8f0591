// Encoding of call arguments and results as JSON, for the job's files on disk and over the wire.
// Plain JSON loses undefined, NaN, Infinity, -0, BigInt, Date, Map, Set, typed arrays and Buffers;
// those become `{"$xpr": TYPE, ...}` objects and come back as themselves. Everything here is pure
// and dependency-free because the remote runner bundles it.

const TAG = '$xpr';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const TYPED_ARRAYS = {
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array,
} as const;
type TypedArrayName = keyof typeof TYPED_ARRAYS;

function toBase64(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
}

/** Turn a value into JSON-safe data; throws on functions, symbols and cycles, naming where. */
export function encode(value: unknown, where = 'value', seen: Set<object> = new Set()): Json {
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
    case 'symbol':
      throw new TypeError(`${where}: a ${typeof value} cannot be sent to a job (pass data, not code)`);
    default:
      break;
  }
  if (value === null) return null;
  const obj = value as object;
  if (seen.has(obj)) throw new TypeError(`${where}: circular reference cannot be sent to a job`);
  seen.add(obj);
  try {
    if (Array.isArray(obj)) return obj.map((v, i) => encode(v, `${where}[${i}]`, seen));
    if (obj instanceof Date) return { [TAG]: 'Date', v: obj.toISOString() };
    if (Buffer.isBuffer(obj)) return { [TAG]: 'Buffer', v: obj.toString('base64') };
    if (ArrayBuffer.isView(obj) && !(obj instanceof DataView)) {
      return { [TAG]: 'TypedArray', t: obj.constructor.name, v: toBase64(obj) };
    }
    if (obj instanceof Map) {
      return { [TAG]: 'Map', v: [...obj].map(([k, v], i) => [encode(k, `${where}<key ${i}>`, seen), encode(v, `${where}.get(${i})`, seen)]) };
    }
    if (obj instanceof Set) return { [TAG]: 'Set', v: [...obj].map((v, i) => encode(v, `${where}<item ${i}>`, seen)) };
    if (obj instanceof Error) return { [TAG]: 'Error', v: serializeError(obj) as unknown as Json };
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = encode(v, `${where}.${k}`, seen);
    // An object that itself has a `$xpr` key is wrapped so decode never mistakes it for a tag.
    return TAG in out ? { [TAG]: 'object', v: out } : out;
  } finally {
    seen.delete(obj);
  }
}

/** Inverse of `encode`. */
export function decode(data: unknown): unknown {
  if (data === null || typeof data !== 'object') return data;
  if (Array.isArray(data)) return data.map(decode);
  const o = data as Record<string, unknown>;
  const tag = o[TAG];
  if (typeof tag !== 'string') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = decode(v);
    return out;
  }
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
      const bytes = Buffer.from(o.v as string, 'base64');
      const copy = new ArrayBuffer(bytes.byteLength);
      new Uint8Array(copy).set(bytes);
      return new Ctor(copy);
    }
    case 'Map': return new Map((o.v as [unknown, unknown][]).map(([k, v]) => [decode(k), decode(v)]));
    case 'Set': return new Set((o.v as unknown[]).map(decode));
    case 'Error': return reviveError(o.v as SerializedError);
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(o.v as Record<string, unknown>)) out[k] = decode(v);
      return out;
    }
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
