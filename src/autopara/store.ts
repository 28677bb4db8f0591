// Storing one op result at its input's location, the same for local and remote runs.
import type { Loc } from '../configset/loc.js';
import { formatLoc } from '../configset/loc.js';
import type { OutputSpec } from '../configset/outputspec.js';
import { XprError } from '../errors.js';

export function storeResult(outputs: OutputSpec<unknown>, result: unknown, loc: Loc, skipFailed: boolean, name: string): void {
  if ((result === null || result === undefined) && !skipFailed) {
    throw new XprError(`${name}: the op gave nothing (null) for input ${formatLoc(loc)}`, {
      hint: 'Return a result for every item, or pass { skipFailed: true } to leave such items out of the output.',
    });
  }
  outputs.store(result ?? null, loc);
}
