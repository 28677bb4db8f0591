// The trivial op of the pool benchmark: one result per item, no work.
export function touchAll(items) {
  return items;
}
