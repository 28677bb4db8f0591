import { shWord } from './util/shell.js';

// The few error classes xpr throws. Each carries what the user needs next (a hint, the file and key,
// the remote stack, the job dir), so the CLI can print it without a stack trace. The library never
// exits the process; `cli/exit.ts` maps these classes to exit codes in one place.

/** An error caused by the user's input or environment; its message is meant to be read as is. */
export class XprError extends Error {
  /** What to do about it, one or two sentences. */
  readonly hint: string | undefined;

  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }

  /** Message and hint as the CLI prints them. */
  describe(): string {
    return this.hint ? `${this.message}\n  ${this.hint}` : this.message;
  }
}

/**
 * The frames of the code that called `entry` (a public function of xpr), captured when it is
 * called: after its first await, the caller is no longer on the stack.
 */
export function callSite(entry: (...args: never[]) => unknown): string {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, entry);
  return (holder.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)).join('\n');
}

/**
 * What a user reads when an XprError reaches the top of their script uncaught: the message and the
 * hint, then their own frames from the call into xpr (`site`) outwards. xpr's internal frames say
 * nothing about a user's mistake, so they are shown only with XPR_DEBUG=1. Other errors (bugs) keep
 * their whole stack.
 */
export function forUser(err: unknown, site: string): unknown {
  if (err instanceof XprError && !process.env['XPR_DEBUG']) {
    err.stack = `${err.name}: ${err.describe()}${site ? `\n${site}` : ''}`;
  }
  return err;
}

/** One problem found in a configuration file, located by file and key path. */
export interface ConfigIssue {
  /** File the value came from, if known. */
  file?: string;
  /** Dotted key path, e.g. `systems.cluster.partitions.std.max_time`. */
  path: string;
  message: string;
}

/** A configuration (config.json, remoteinfo, resources) is invalid; lists every problem at once. */
export class ConfigError extends XprError {
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[], options: { hint?: string; what?: string } = {}) {
    const lines = issues.map((i) => `  ${i.file ? `${i.file}: ` : ''}${i.path ? `${i.path}: ` : ''}${i.message}`);
    const what = options.what ?? 'Invalid configuration';
    super(`${what} (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`, {
      ...(options.hint === undefined ? {} : { hint: options.hint }),
    });
    this.issues = issues;
  }
}

/** A system's host could not be reached or refused us (network, auth, host key). */
export class UnreachableError extends XprError {
  readonly host: string;

  constructor(host: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options);
    this.host = host;
  }
}

/** What xpr knows about a job when it reports that job's failure. */
export interface JobContext {
  jobId: string;
  /** Local stage dir of the job. */
  jobDir: string;
  /** Last lines of the job's stderr (the function's and the scheduler's). */
  stderrTail: string;
}

/** The job's function threw on the remote side; carries the remote type name and stack. */
export class RemoteError extends XprError {
  readonly remoteName: string;
  readonly remoteStack: string;
  readonly job: JobContext;

  constructor(remote: { name: string; message: string; stack: string }, job: JobContext, cause?: unknown) {
    super(`${remote.name}: ${remote.message} (in job ${job.jobId})`, {
      hint: `Job dir: ${job.jobDir}. See more with: xpr logs ${shWord(job.jobId)}`,
      cause,
    });
    this.remoteName = remote.name;
    this.remoteStack = remote.stack;
    this.job = job;
    // The stack a user reads first is the remote one: that is where the bug is.
    this.stack = `${this.name}: ${this.message}\n--- remote stack ---\n${remote.stack}` +
      (job.stderrTail ? `\n--- stderr (tail) ---\n${job.stderrTail}` : '');
  }

  override describe(): string {
    const tail = this.job.stderrTail ? `\n--- stderr (tail) ---\n${this.job.stderrTail}` : '';
    return `${this.message}\n--- remote stack ---\n${this.remoteStack}${tail}\n  ${this.hint}`;
  }
}

/** The job ended without writing a result (killed, out of time or memory, node failure). */
export class JobDiedError extends XprError {
  readonly job: JobContext;
  /** Scheduler's named reason when known: TIMEOUT, OUT_OF_MEMORY, CANCELLED, PREEMPTED, NODE_FAIL. */
  readonly reason: string | undefined;

  constructor(job: JobContext, reason: string | undefined) {
    super(`Job ${job.jobId} died${reason ? ` (${reason})` : ''} without writing a result`, {
      hint: `Job dir: ${job.jobDir}. See more with: xpr logs ${shWord(job.jobId)}` +
        (job.stderrTail ? `\n--- stderr (tail) ---\n${job.stderrTail}` : ''),
    });
    this.job = job;
    this.reason = reason;
  }
}

/** Waiting for results took longer than the caller allowed; the job itself goes on. */
export class JobTimeoutError extends XprError {
  readonly jobId: string;

  constructor(jobId: string, seconds: number, status: string) {
    super(`Timed out after ${seconds} s waiting for job ${jobId} (status: ${status})`, {
      hint: 'The job keeps running; call getResults again later, or see it with: xpr ls -i ' + shWord(jobId),
    });
    this.jobId = jobId;
  }
}
