import { RESULT_LOST_REASONS } from './schedulers/types.js';
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
  if (!(err instanceof XprError)) return err;
  if (process.env['XPR_DEBUG']) {
    // The internal frames stop at Error.stackTraceLimit, often before the user's call: add it.
    if (site && !err.stack?.includes(site)) err.stack = `${err.stack ?? ''}\n    --- called from ---\n${site}`;
    return err;
  }
  err.stack = `${err.name}: ${err.describe()}${site ? `\n${site}` : ''}`;
  // Node prints an uncaught error's own enumerable fields after its stack: the hint, a config
  // error's issues, a job's context, all of which the stack now says. They stay readable.
  for (const key of Object.keys(err)) Object.defineProperty(err, key, { enumerable: false });
  // Node also prints the chain of causes with their stacks: keep what they say, not where inside
  // xpr or its libraries they were thrown.
  for (let cause = err.cause, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    cause.stack = `${cause.name}: ${cause.message}`;
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

/** What a JobDiedError says beyond the job and its reason. */
export interface DiedDetails {
  /** What exactly is gone or unreadable, naming the dir or file (RESULT_MISSING, RESULT_CORRUPT). */
  detail?: string;
  /** The job runs a chunk of an autoparallelize call, whose remote info has its own ways to resubmit. */
  autopara?: boolean;
}

/**
 * The job ended without a result that can be had: killed, out of time or memory, node failure, or
 * its dir or result file lost or damaged since.
 */
export class JobDiedError extends XprError {
  readonly job: JobContext;
  /**
   * The named reason when known: the scheduler's (TIMEOUT, OUT_OF_MEMORY, CANCELLED, PREEMPTED,
   * NODE_FAIL) or xpr's (RESULT_MISSING, RESULT_CORRUPT).
   */
  readonly reason: string | undefined;

  constructor(job: JobContext, reason: string | undefined, details: DiedDetails = {}) {
    const how = details.detail ? `: ${details.detail}` : ' without writing a result';
    super(`Job ${job.jobId} died${reason ? ` (${reason})` : ''}${how}`, {
      hint: `Job dir: ${job.jobDir}. See more with: xpr logs ${shWord(job.jobId)}\n  ` +
        `To run the call again: ${howToRunAgain(job.jobId, reason, details.autopara ?? false)}` +
        (job.stderrTail ? `\n--- stderr (tail) ---\n${job.stderrTail}` : ''),
    });
    this.job = job;
    this.reason = reason;
  }
}

/**
 * What lets the call of a died job run again. A named reason lets a call that asks for other
 * resources resubmit it; a lost result is resubmitted by any rerun; otherwise the job must be taken
 * out of the way by hand, since an identical call re-attaches to it.
 */
function howToRunAgain(id: string, reason: string | undefined, autopara: boolean): string {
  const filter = shWord(id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const byHand = `xpr fail_job -i ${filter} (or forget it: xpr rm -i ${filter})`;
  if ((RESULT_LOST_REASONS as readonly string[]).includes(reason ?? '')) {
    return `${autopara ? 'run the script again' : 'run it again as it was'}: it is resubmitted. Or forget this job: xpr rm -i ${filter}`;
  }
  const more = reason === 'TIMEOUT' ? 'a longer max_time' : reason === 'OUT_OF_MEMORY' ? 'more memory (max_mem_tot or max_mem_per_core)' : 'other resources';
  if (autopara) {
    const change = reason ? `ask for ${more} in its remote info, or ` : '';
    return `${change}set resubmit_killed_jobs in its remote info, then run the script again: the chunk is resubmitted. ` +
      `Or first: ${byHand}`;
  }
  if (reason) return `ask for ${more} in start(): a call asking for other resources is resubmitted. To resubmit it as it was, first: ${byHand}`;
  return `its files may yet show up (xpr sync -i ${filter} looks again). To run it afresh, first: ${byHand}`;
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
