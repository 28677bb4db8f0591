// `xpr worker --stage S`: a worker on another machine. It needs only where the executor is and its
// token, from XPR_EXECUTOR_URL and XPR_EXECUTOR_TOKEN (BespokeFit's BEFLOW_GATEWAY_ADDRESS/PORT and
// BEFLOW_API_TOKEN also work), and no copy of the workflow: the stage code comes from the gateway.
// It runs until Ctrl-C or SIGTERM, which let the running task finish first.
import { XprError } from '../../errors.js';
import { runRemoteWorker, type RemoteWorkerSummary } from '../../executor/remote-worker.js';
import { clientEndpoint, ENV, parseBoolean, parseCores, parseMaxMem } from '../../executor/settings.js';
import type { CommandContext } from '../common.js';
import type { FormatOptions } from '../format.js';

export interface WorkerOptions extends CommandContext {
  stage: string;
  cores?: string;
  maxMem?: string;
  keepTempFiles?: boolean;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export async function runWorker(opts: WorkerOptions): Promise<RemoteWorkerSummary> {
  const env = opts.env ?? process.env;
  const endpoint = clientEndpoint(env);
  if (endpoint.url === undefined) {
    throw new XprError(`${ENV.url} is not set: the worker does not know where the executor is`, {
      hint: `Set it to the address xpr executor launch printed, e.g. ${ENV.url}=http://host:8000, and ${ENV.token} to its token.`,
    });
  }
  if (endpoint.token === undefined) {
    throw new XprError(`${ENV.token} is not set: the executor at ${endpoint.url} needs its token`, {
      hint: `Set ${ENV.token} to the token xpr executor launch printed (also in executor.json in its directory).`,
    });
  }
  const cores = opts.cores === undefined ? 1 : only(parseCores(opts.cores), '--cores');
  const maxMem = opts.maxMem === undefined ? undefined : only(parseMaxMem(opts.maxMem), '--max-mem');
  return runRemoteWorker({
    url: endpoint.url, token: endpoint.token, stage: opts.stage, cores,
    ...(maxMem !== undefined ? { maxMem } : {}),
    ...(keepTempFiles(opts, env) ? { keepTempFiles: true } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
}

/** `--keep-temp-files`, else XPR_EXECUTOR_KEEP_TEMP_FILES (BespokeFit's BEFLOW_KEEP_TMP_FILES too). */
function keepTempFiles(opts: WorkerOptions, env: NodeJS.ProcessEnv): boolean {
  if (opts.keepTempFiles) return true;
  const xpr = env[ENV.keepTempFiles];
  if (xpr !== undefined) return parseBoolean(xpr, ENV.keepTempFiles);
  const beflow = env.BEFLOW_KEEP_TMP_FILES;
  return beflow !== undefined && parseBoolean(beflow, 'BEFLOW_KEEP_TMP_FILES');
}

function only<T>(values: Record<string, T>, flag: string): T {
  const v = values['*'];
  if (v === undefined || Object.keys(values).length > 1) {
    throw new XprError(`${flag} takes one value for this worker (its stage is --stage), e.g. ${flag === '--cores' ? '--cores 8' : '--max-mem 2.5gb'}`);
  }
  return v;
}

export function renderWorker(r: RemoteWorkerSummary, _fmt: FormatOptions): string {
  return `Worker ${r.workerId} stopped (${r.stopped === 'time' ? 'time limit' : 'asked to stop'}): ${r.tasks} task(s) run, ${r.failed} failed.`;
}
