// Small helpers shared by the slurm, pbs and sge modules. Pure string work, no I/O.
import { XprError } from '../errors.js';

// Directive values are read by the scheduler's own option parser, not by a shell, so quoting does not
// help there: `#SBATCH --output=a b` splits at the space, SGE reads `,` as a path list and `$` as a
// pseudo variable, PBS reads `host:` before a path. So values that reach a directive are restricted
// to characters every scheduler takes literally.
const DIRECTIVE_SAFE = /^[A-Za-z0-9_.+=@/-]+$/;

/** `value` unchanged if it is safe in a directive line; else an XprError naming `what`. */
export function directiveWord(value: string, what: string): string {
  if (!DIRECTIVE_SAFE.test(value)) {
    throw new XprError(`Cannot put ${what} ${JSON.stringify(value)} in a job script directive`, {
      hint: 'Use only letters, digits and _ . + = @ / - in job names and scheduler output file names.',
    });
  }
  return value;
}

/** A job name as xpr makes them ([A-Za-z0-9_.-]); anything else is refused before it reaches a script. */
export function jobNameWord(name: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new XprError(`Invalid scheduler job name ${JSON.stringify(name)}`, {
      hint: 'Scheduler job names may contain only letters, digits and _ . -',
    });
  }
  return name;
}

/**
 * A job name for PBS and Grid Engine, which want a letter first: `N_` + the name otherwise (ExPyRe's
 * prefix for the same reason). Name look-ups use the same function, so they find what was submitted.
 */
export function letterFirstName(schedName: string): string {
  const name = jobNameWord(schedName);
  return /^[A-Za-z]/.test(name) ? name : `N_${name}`;
}

/** Throws when a command that acts on jobs is asked to act on none (a caller bug, not user input). */
export function requireIds(ids: readonly string[], what: string): void {
  if (ids.length === 0) throw new RangeError(`${what}: no job ids given`);
}

export function unique<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}

/**
 * Array task indices from a scheduler's range text: `5`, `0-9`, `1-10:2` (SGE step), `2-9%4`
 * (SLURM throttle), and comma lists of those. Unreadable parts are skipped: a status line we cannot
 * expand must not break parsing of the others.
 */
export function expandIndices(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:-(\d+)(?::(\d+))?)?(?:%\d+)?$/.exec(part.trim());
    if (!m) continue;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    const step = m[3] === undefined ? 1 : Math.max(1, Number(m[3]));
    // A range is at most MaxArraySize long in practice; the cap keeps a garbled line from looping.
    for (let i = lo; i <= hi && out.length < 1_000_000; i += step) out.push(i);
  }
  return out;
}

/** Shell-style exit code from an exit status and a terminating signal (128 + signal, as bash). */
export function shellExitCode(code: number, signal: number): number {
  return signal > 0 && code === 0 ? 128 + signal : code;
}

/** Last match of `re` over the lines of `text`, trimmed; used to pick a job id out of submit output. */
export function lastLineMatch(text: string, re: RegExp): RegExpExecArray | undefined {
  let found: RegExpExecArray | undefined;
  for (const line of text.split(/\r?\n/)) {
    const m = re.exec(line.trim());
    if (m) found = m;
  }
  return found;
}

/** The error parseSubmit throws: the submit command ran but printed no job id we can read. */
export function noJobIdError(command: string, stdout: string): XprError {
  const shown = stdout.trim() === '' ? '(nothing)' : stdout.trim().split(/\r?\n/).slice(-5).join('\n  ');
  return new XprError(`Could not find a job id in the output of ${command}:\n  ${shown}`, {
    hint: 'The job may or may not have been submitted; xpr will look for it by name before submitting again.',
  });
}
