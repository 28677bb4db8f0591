// Trivial stages for the executor bench: each returns its input, so what is measured is the
// executor's own cost per task. Written as the objects `workflow()` returns (no import of xpr:
// the bundle the workers load stays tiny).
export function same(x) {
  return x;
}

/** `{ run, n }` → n distinct elements. */
export function spread({ run, n }) {
  return Array.from({ length: n }, (_v, i) => ({ run, i }));
}

/**
 * n tasks of one stage from one submission: a first stage makes the elements and the next runs on
 * each, as a real fan-out does (fragment, then each fragment). The elements are not the submission's
 * input: every task carries the submission's input along (ctx.input).
 */
export const fan = {
  kind: 'xpr-workflow',
  name: 'fan',
  stages: [{ stage: 'spread', run: spread }, { stage: 'one', run: same, each: true }],
};

/** One task per submission, on the same stage queue. */
export const single = { kind: 'xpr-workflow', name: 'single', stages: [{ stage: 'one', run: same }] };

/** Three trivial stages in a row. */
export const three = {
  kind: 'xpr-workflow',
  name: 'three',
  stages: [{ stage: 'a', run: same }, { stage: 'b', run: same }, { stage: 'c', run: same }],
};
