// Timing helpers for `npm run bench`: every figure is printed beside a bare baseline measured in
// the same run, because on a shared machine only ratios mean anything.

export interface Figure {
  name: string;
  /** What xpr took, in ms. */
  xprMs: number;
  /** The bare way of doing the same work, in ms, measured in the same run. */
  baselineMs: number;
  /** A target the figure should meet, in words (e.g. '< 1000 ms'). */
  target?: string;
  /** Whether the target is met, when it can be judged. */
  ok?: boolean;
  note?: string;
  /** Shown instead of the times when the figure is not a duration (e.g. a heap size). */
  xprText?: string;
  baselineText?: string;
}

export async function time(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Best of `n` runs: the least disturbed by whatever else the machine is doing. */
export async function bestOf(n: number, fn: () => unknown): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < n; i++) best = Math.min(best, await time(fn));
  return best;
}

export function printFigures(figures: readonly Figure[]): void {
  const rows = figures.map((f) => [
    f.name,
    f.xprText ?? `${f.xprMs.toFixed(0)} ms`,
    f.baselineText ?? `${f.baselineMs.toFixed(0)} ms`,
    f.xprText === undefined && f.baselineMs > 0 ? `${(f.xprMs / f.baselineMs).toFixed(2)}x` : '-',
    f.target ? `${f.target} ${f.ok === undefined ? '' : f.ok ? 'ok' : 'MISSED'}` : '',
    f.note ?? '',
  ]);
  const head = ['figure', 'xpr', 'bare baseline', 'ratio', 'target', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}
