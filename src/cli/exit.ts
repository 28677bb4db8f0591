// The one place that turns what went wrong into an exit code and a message. Command functions
// throw (or return problems); they never exit. Documented in the README ("Exit codes"):
//
//   0   ok
//   1   user error: bad input, bad config, a failed check, a job that cannot be acted on (message printed)
//   2   usage: unknown command or option, missing argument, a destructive command without a filter
//   3   a system could not be reached (SSH, or its transport could not be opened)
//   70  internal error: a bug in xpr (message printed; stack with XPR_DEBUG=1). A system error
//       (permission denied, disk full, read-only file system) is the machine's, not a bug: 1.
import { CommanderError } from 'commander';
import { UnreachableError, XprError } from '../errors.js';

export const EXIT = { ok: 0, user: 1, usage: 2, unreachable: 3, internal: 70 } as const;

/** A command used the wrong way (detected by the command itself, e.g. `rm` without a filter). */
export class UsageError extends XprError {}

/**
 * Something a command could not do for part of its work (one system of two unreachable), reported in
 * its result so that the rest is still shown.
 */
export interface Problem {
  message: string;
  system?: string;
  /** The system could not be reached: exit code 3. */
  unreachable: boolean;
}

/** A problem from an error caught while working with `system`. */
export function problemOf(err: unknown, system?: string): Problem {
  const message = err instanceof XprError ? err.describe() : err instanceof Error ? err.message : String(err);
  return { message, unreachable: err instanceof UnreachableError, ...(system === undefined ? {} : { system }) };
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof UnreachableError) return EXIT.unreachable;
  if (err instanceof XprError || isSystemError(err)) return EXIT.user;
  return EXIT.internal;
}

/** An error of a system call (EACCES, ENOSPC, EROFS…), with the path or host it names. */
function isSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string; syscall: string } {
  const e = err as NodeJS.ErrnoException | undefined;
  return err instanceof Error && typeof e?.code === 'string' && typeof e.syscall === 'string';
}

/** What to do about a system error, by its code. */
function systemErrorHint(code: string): string {
  if (code === 'EACCES' || code === 'EPERM') return 'Check the permissions of the path named (ls -ld), or run as the user who owns it.';
  if (code === 'ENOSPC' || code === 'EDQUOT') return 'The disk or your quota is full: free some space (df -h, quota) and run the command again.';
  if (code === 'EROFS') return 'That file system is mounted read-only: use a project dir (EXPYRE_ROOT) on a writable one.';
  return 'This is a problem of the machine or its file systems, not of xpr; XPR_DEBUG=1 shows where it happened.';
}

/** Exit code of a finished command from the problems it reported (none: 0). */
export function exitCodeOfProblems(problems: readonly Problem[]): number {
  if (problems.length === 0) return EXIT.ok;
  return problems.some((p) => p.unreachable) ? EXIT.unreachable : EXIT.user;
}

/**
 * What to print on stderr for an error; empty for commander's own errors, which it has printed.
 * A user error shows its message and hint, never a stack; anything else is a bug in xpr.
 */
export function errorText(err: unknown, env: NodeJS.ProcessEnv): string {
  if (err instanceof CommanderError) return '';
  if (err instanceof UsageError) return `xpr: ${err.describe()}\n(see xpr <command> --help)\n`;
  if (err instanceof XprError) {
    const stack = env['XPR_DEBUG'] ? `\n${err.stack ?? ''}` : '';
    return `xpr: ${err.describe()}${stack}\n`;
  }
  if (isSystemError(err)) {
    const stack = env['XPR_DEBUG'] ? `\n${err.stack ?? ''}` : '';
    return `xpr: ${err.message}\n  ${systemErrorHint(err.code)}${stack}\n`;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const stack = env['XPR_DEBUG'] ? `\n${e.stack ?? ''}` : '\n(run with XPR_DEBUG=1 to see the stack)';
  return `xpr: internal error: ${e.message}\nThis is a bug in xpr; please report it with the command you ran.${stack}\n`;
}
