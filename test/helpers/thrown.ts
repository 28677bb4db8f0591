// The XprError a call throws, for assertions on its message and hint.
import { expect } from 'vitest';
import { XprError } from '../../src/errors.js';

/** The XprError `fn` throws; fails the test when it throws something else or nothing. */
export function thrown(fn: () => unknown): XprError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(XprError);
    return e as XprError;
  }
  throw new Error('expected an XprError, nothing was thrown');
}
