// How xpr reaches a system: run a command there, move files there and back. `local` does it with
// child processes and file copies; `ssh` (one connection per host) with exec channels and tar streams.

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code; null if the command was killed by a signal. */
  code: number | null;
}

export interface ExecOptions {
  /** Directory to run in; relative paths are relative to the home dir, as over SSH. */
  cwd?: string;
  /** Bytes for the command's stdin. */
  input?: string | Buffer;
  /**
   * Give up after this long: exec then throws CommandTimeoutError (an UnreachableError naming the
   * host and command). Over SSH the command may run on; locally it is killed.
   */
  timeoutMs?: number;
  /**
   * Whether running the command twice is harmless (default true). A transport may re-run an
   * idempotent command after a dropped connection; for one that is not (a job submission) it must
   * instead throw, saying the outcome is unknown.
   */
  idempotent?: boolean;
}

export interface TransferOptions {
  /** Give up when no data has moved for this long (CommandTimeoutError); the transfer may run on. */
  stallTimeoutMs?: number;
}

export interface Transport {
  /** Host name as the user wrote it; 'localhost' for the local transport. */
  readonly host: string;
  /**
   * Run a shell command (bash, whatever the login shell there) on the system. Never throws for a
   * non-zero exit: check `code`.
   */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /** Copy `names` (files or dirs, relative to `localDir`) into `remoteDir`, creating it. */
  upload(localDir: string, names: readonly string[], remoteDir: string, options?: TransferOptions): Promise<void>;
  /** Copy `names` (relative to `remoteDir`; shell globs allowed; missing ones skipped) into `localDir`. */
  download(remoteDir: string, names: readonly string[], localDir: string, options?: TransferOptions): Promise<void>;
  /** Release connections; the transport may not be used afterwards. */
  close(): Promise<void>;
}
