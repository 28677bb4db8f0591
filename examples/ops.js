// An operation over a list of items, made parallel with autoparallelize. The op takes a list of
// items and the call's kwargs and returns one result per item, in order (null: nothing for that item).
// This module is what a job imports: keep the op and the wrapper exported from a module, not the script.
import { autoparallelize } from 'xpr';

function scale(items, { factor = 1, skipOdd = false } = {}) {
  return items.map((it) => {
    if (skipOdd && it.x % 2 === 1) return null;
    // Stand-in for real work: a few milliseconds of arithmetic per item.
    let acc = 0;
    for (let i = 0; i < 200_000; i++) acc += Math.sqrt(i + it.x);
    return { ...it, y: it.x * factor, work: Math.round(acc) };
  });
}

export const calculate = autoparallelize(scale, { name: 'calculate', numInputsPerSubprocess: 10 });
