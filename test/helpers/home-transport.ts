// "Another machine" that is this one: commands run in, and relative paths resolve against, a home
// dir of the test's own, as over SSH where the login shell starts in the remote home. So a relative
// rundir (ExPyRe's default `run_expyre`) behaves as it does on a cluster. Hooks let a test lose a
// command's output or hide files from downloads (a shared file system that lags).
import path from 'node:path';
import { LocalTransport } from '../../src/transport/local.js';
import type { ExecOptions, ExecResult, Transport } from '../../src/transport/types.js';

export class HomeTransport implements Transport {
  readonly commands: string[] = [];
  /** Wraps every command: call `run` to really run it, and return what the caller should see. */
  onExec: ((command: string, run: () => Promise<ExecResult>) => Promise<ExecResult>) | undefined;
  /** Names (relative to the download dir) that downloads pretend are not there yet. */
  hide: ((name: string) => boolean) | undefined;
  private readonly inner = new LocalTransport();

  constructor(readonly home: string, readonly host = 'far.example') {}

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.commands.push(command);
    const run = () => this.inner.exec(command, { ...options, cwd: this.resolve(options.cwd ?? '.') });
    return this.onExec ? this.onExec(command, run) : run();
  }

  upload(localDir: string, names: readonly string[], remoteDir: string): Promise<void> {
    return this.inner.upload(localDir, names, this.resolve(remoteDir));
  }

  download(remoteDir: string, names: readonly string[], localDir: string): Promise<void> {
    const shown = this.hide ? names.filter((n) => !this.hide!(n)) : names;
    return this.inner.download(this.resolve(remoteDir), shown, localDir);
  }

  async close(): Promise<void> { /* nothing held */ }

  private resolve(dir: string): string {
    return path.resolve(this.home, dir);
  }
}
