// The functions `xpr selftest` runs as jobs on a user's system. A plain ES module that imports xpr
// by its package name: in the driver that is xpr itself, and in a job's bundle the remote-side shim,
// exactly as for a user's op module.
import fs from 'node:fs';
import { autoparallelize } from 'xpr';

/** A result and a line on stdout. */
export function greet(name) {
  console.log(`hello from ${name}`);
  return { greeting: `hello ${name}`, node: process.version };
}

/** Throws, for the remote error to come back. */
export function fails(value) {
  throw new RangeError(`selftest value out of range: ${value}`);
}

/** Sleeps, to be cancelled or killed at its time limit. */
export async function sleepy(seconds) {
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return 'woke';
}

/** Takes a few seconds, so the driver that submitted it can be killed while it runs. */
export async function slowIncrement(x, seconds) {
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return x + 1;
}

/** Reads an input file staged into the job dir and writes an output file to bring back. */
export function roundTrip(inputName, outputName) {
  const text = fs.readFileSync(inputName, 'utf8');
  fs.writeFileSync(outputName, text.toUpperCase());
  return text.length;
}

function doubleAll(items) {
  return items.map((x) => x * 2);
}

export const double = autoparallelize(doubleAll, { name: 'selftest_double', numInputsPerSubprocess: 1 });
