// Locations: where an item sits in a (possibly nested) ConfigSet, as the indices from the outermost
// group down to the item. Outputs are placed by the location of the input they came from, which is
// what keeps results in input order and in the right file when they arrive out of order or are empty.

/** Indices from the outermost group down to an item, e.g. `[1, 3]` = 4th item of the 2nd group/file. */
export type Loc = readonly number[];

/** Items with their grouping: arrays are groups, everything else is an item. */
export type Nested<T> = Array<T | Nested<T>>;

/** An item as iterated from a ConfigSet, with its location. */
export interface Located<T> {
  item: T;
  loc: Loc;
}

/** Key that carries an item's in-file location when nesting must survive a flat file (wfl's name). */
export const LOC_KEY = '_ConfigSet_loc';

/** `[0, 3]` → `"/0/3"`, for messages and map keys. */
export function formatLoc(loc: Loc): string {
  return '/' + loc.join('/');
}

/** True when `loc` is a non-empty list of non-negative integers. */
export function isLoc(loc: unknown): loc is Loc {
  return Array.isArray(loc) && loc.length > 0 && loc.every((i) => Number.isSafeInteger(i) && i >= 0);
}

/** Orders locations as a depth-first walk visits them (a group's items before the next group's). */
export function compareLocs(a: Loc, b: Loc): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** `[0, 3]` → `" / 0 / 3"`: wfl's `_ConfigSet_loc` text, so files stay readable by wfl and back. */
export function locToMarker(loc: Loc): string {
  return loc.map((i) => ` / ${i}`).join('');
}

/** Parses wfl's `" / 0 / 3"` (or `"/0/3"`); undefined if it is not a location. */
export function markerToLoc(marker: unknown): number[] | undefined {
  if (typeof marker !== 'string') return undefined;
  const parts = marker.split('/').map((p) => p.trim());
  if (parts.shift() !== '') return undefined;
  if (parts.length === 0 || !parts.every((p) => /^\d+$/.test(p))) return undefined;
  return parts.map(Number);
}

/**
 * True when `next` is certainly the leaf that follows `prev` in a depth-first walk of a dense tree:
 * `prev`'s next sibling or that sibling's first descendant. With no `prev`, the all-zero location.
 * Lets writers stream results that arrive in order instead of holding all of them until close.
 */
export function isImmediateSuccessor(prev: Loc | undefined, next: Loc): boolean {
  if (prev === undefined) return next.every((i) => i === 0);
  const n = prev.length;
  if (next.length < n) return false;
  for (let i = 0; i < n - 1; i++) if (next[i] !== prev[i]) return false;
  if (next[n - 1] !== (prev[n - 1] as number) + 1) return false;
  for (let i = n; i < next.length; i++) if (next[i] !== 0) return false;
  return true;
}

/**
 * Turns a sequence of ordered location keys (which may skip indices, e.g. where an input gave no
 * result) into dense positions: the same indices the nested arrays holding those items would have.
 * Files only hold items, so writer and reader both compact this way and agree on every location.
 */
export class LocCompactor {
  private prevKey: Loc | undefined;
  private prevPos: number[] | undefined;

  /** Dense position of the item with `key`; throws if `key` is a group of an earlier item or repeats. */
  next(key: Loc): number[] {
    const prevKey = this.prevKey;
    const prevPos = this.prevPos;
    let pos: number[];
    if (prevKey === undefined || prevPos === undefined) {
      pos = key.map(() => 0);
    } else {
      let c = 0;
      while (c < key.length && c < prevKey.length && key[c] === prevKey[c]) c++;
      if (c >= key.length || c >= prevKey.length) {
        throw new Error(`location ${formatLoc(key)} clashes with ${formatLoc(prevKey)} (one contains the other)`);
      }
      pos = prevPos.slice(0, c);
      pos.push((prevPos[c] as number) + 1);
      while (pos.length < key.length) pos.push(0);
    }
    this.prevKey = key;
    this.prevPos = pos;
    return pos;
  }

  /** Top-level index of the last item seen, -1 before any. */
  get lastTop(): number {
    return this.prevKey?.[0] ?? -1;
  }
}

/** Places `item` at `loc` inside `root`, creating the enclosing groups. Locations must be dense. */
export function placeAt<T>(root: Nested<T>, loc: Loc, item: T): void {
  let container = root;
  for (let d = 0; d < loc.length - 1; d++) {
    const i = loc[d] as number;
    let sub = container[i];
    if (sub === undefined) {
      sub = [];
      container[i] = sub;
    }
    if (!Array.isArray(sub)) throw new Error(`location ${formatLoc(loc)} is inside an item, not a group`);
    container = sub;
  }
  container[loc[loc.length - 1] as number] = item;
}
