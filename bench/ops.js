// The trivial op the benchmarks stage and run.
export function touch(item) {
  return item;
}
