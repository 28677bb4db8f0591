// FOR TESTS ONLY. Named points in the code where a test can make this process die as abruptly as a
// `kill -9` would, to check that a rerun recovers from exactly that moment. Without the variable
// XPR_TEST_CRASH_AT, or with any other value than a point's name, a crash point does nothing.
//
//   XPR_TEST_CRASH_AT=after-submit      die the first time `after-submit` is reached
//   XPR_TEST_CRASH_AT=after-submit:3    die the third time

//
// The points: before-intent, after-intent, after-submit (src/job/engine.ts), upload and fetch (while
// a tar stream moves over SSH, src/transport/remote-tar.ts), output-write (an output file half
// written, src/configset/outputspec.ts).

const reached = new Map<string, number>();
/** Read once: some points are on paths taken once per item. */
const target = process.env['XPR_TEST_CRASH_AT'] ? parseTarget(process.env['XPR_TEST_CRASH_AT']) : undefined;

/** Kill this process with SIGKILL if XPR_TEST_CRASH_AT names this point (and this is the N-th time). */
export function crashPoint(name: string): void {
  if (target === undefined || target.point !== name) return;
  const { nth } = target;
  const count = (reached.get(name) ?? 0) + 1;
  reached.set(name, count);
  if (count === nth) process.kill(process.pid, 'SIGKILL');
}

function parseTarget(target: string): { point: string; nth: number } {
  const m = /^(.*):(\d+)$/.exec(target);
  return m ? { point: m[1]!, nth: Number(m[2]) } : { point: target, nth: 1 };
}
