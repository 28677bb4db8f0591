// Leaf-wise merge of config layers (shallowest file first), as ExPyRe's `update_dict_leaves`:
// objects merge key by key, arrays and scalars replace, and the string "_DELETE_" removes a key.
// Every value remembers the file it came from, so a validation error can name that file.

/** The value that removes a key inherited from a shallower config file. */
export const DELETE_MARKER = '_DELETE_';

export type JsonObject = { [key: string]: unknown };

export function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Key paths are arrays internally (system or partition names may hold dots); dotted for people. */
export type KeyPath = readonly (string | number)[];

export function dotted(path: KeyPath): string {
  return path.join('.');
}

/** Which file each key path came from. Objects are recorded too: the last file that touched them. */
export class Origins {
  private readonly byPath = new Map<string, { path: KeyPath; file: string }>();

  private static key(path: KeyPath): string {
    return JSON.stringify(path);
  }

  set(path: KeyPath, file: string): void {
    this.byPath.set(Origins.key(path), { path, file });
  }

  get(path: KeyPath): string | undefined {
    return this.byPath.get(Origins.key(path))?.file;
  }

  /** Forget `path` and everything below it (the value was replaced or deleted). */
  dropSubtree(path: KeyPath): void {
    for (const [k, v] of this.byPath) {
      if (v.path.length >= path.length && path.every((p, i) => v.path[i] === p)) this.byPath.delete(k);
    }
  }

  /** File of `path`, else of its nearest recorded ancestor (for a missing key: its parent object). */
  locate(path: KeyPath): string | undefined {
    for (let n = path.length; n >= 0; n--) {
      const file = this.get(path.slice(0, n));
      if (file !== undefined) return file;
    }
    return undefined;
  }
}

/** Merge `layer` (read from `file`) into `into`, in place, recording origins. */
export function mergeLayer(into: JsonObject, layer: JsonObject, file: string, origins: Origins, at: KeyPath = []): void {
  origins.set(at, file);
  for (const [key, value] of Object.entries(layer)) {
    const path = [...at, key];
    if (value === DELETE_MARKER) {
      // Deleting a key nobody set is a no-op (ExPyRe would store the marker itself as the value).
      delete into[key];
      origins.dropSubtree(path);
      continue;
    }
    if (isPlainObject(value)) {
      // A new object is merged into an empty one, so markers nested in it are dropped as well.
      const existing = own(into, key);
      const target: JsonObject = isPlainObject(existing) ? existing : {};
      if (target !== existing) {
        origins.dropSubtree(path);
        setOwn(into, key, target);
      }
      mergeLayer(target, value, file, origins, path);
      continue;
    }
    origins.dropSubtree(path);
    setOwn(into, key, structuredClone(value));
    origins.set(path, file);
  }
}

// Keys come from user files, so a key like "__proto__" must stay an ordinary own property (it is
// then reported as an unknown key) instead of reaching Object.prototype.
function own(obj: JsonObject, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function setOwn(obj: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
