// `xpr executor launch`: start an executor in a directory and keep it running until Ctrl-C or
// SIGTERM, then drain it. The executor's own progress lines go to stderr; the summary (where it
// listens, how to submit, how workers elsewhere connect) is what this command prints.
import { Executor, type ExecutorInfo } from '../../../executor/executor.js';
import { shWord } from '../../../util/shell.js';
import type { CommandContext } from '../../common.js';
import { paint, type FormatOptions } from '../../format.js';

export interface LaunchCliOptions extends CommandContext {
  /** The workflow module file (`--workflow`). */
  workflow: string;
  directory?: string;
  workers?: string;
  cores?: string;
  maxMem?: string;
  address?: string;
  port?: string;
  redis?: string;
  token?: string;
  keepTempFiles?: boolean;
  /** Seconds a running task may take to finish when the executor stops. */
  grace?: number;
  log?: (line: string) => void;
}

export async function launchExecutor(opts: LaunchCliOptions): Promise<Executor> {
  return Executor.launch({
    workflowModule: opts.workflow,
    ...(opts.directory !== undefined ? { directory: opts.directory } : {}),
    ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
    ...(opts.cores !== undefined ? { cores: opts.cores } : {}),
    ...(opts.maxMem !== undefined ? { maxMem: opts.maxMem } : {}),
    ...(opts.address !== undefined ? { address: opts.address } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.redis !== undefined ? { redis: opts.redis } : {}),
    ...(opts.token !== undefined ? { token: opts.token } : {}),
    ...(opts.keepTempFiles !== undefined ? { keepTempFiles: opts.keepTempFiles } : {}),
    ...(opts.grace !== undefined ? { graceMs: opts.grace * 1000 } : {}),
    ...(opts.env !== undefined ? { env: opts.env } : {}),
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.log !== undefined ? { log: opts.log } : {}),
  });
}

/**
 * Resolves once `onStop` is called (Ctrl-C, SIGTERM), after the executor has drained and stopped.
 * `onStop` registers the handler and returns a function that removes it.
 */
export async function serveUntilStopped(ex: Executor, onStop: (stop: () => void) => () => void): Promise<void> {
  let release: (() => void) | undefined;
  await new Promise<void>((resolve) => { release = onStop(resolve); });
  release?.();
  await ex.close();
}

export function renderLaunch(info: ExecutorInfo, fmt: FormatOptions): string {
  const wf = info.workflows[0]?.name ?? '<workflow>';
  return [
    paint(`xpr executor running at ${info.url}`, 'green', fmt),
    `  directory  ${info.directory}`,
    `  workflows  ${info.workflows.map((w) => `${w.name} (${w.stages.map((s) => s.stage).join(' → ')})`).join(', ')}`,
    `  workers    ${Object.entries(info.workers).map(([s, n]) => `${s}=${n}`).join(', ')}`,
    `  dashboard  ${info.url}/ui?token=${info.token}`,
    `Submit:   xpr executor submit --directory ${shWord(info.directory)} --workflow ${wf} --input <file.json>`,
    `Workers elsewhere: XPR_EXECUTOR_URL=${info.remoteUrl} XPR_EXECUTOR_TOKEN=${info.token} xpr worker --stage <stage>`,
    'Ctrl-C stops it: running tasks get the grace period to finish, the others go back to the queue.',
  ].join('\n');
}

export function launchJson(info: ExecutorInfo): unknown {
  return info;
}
