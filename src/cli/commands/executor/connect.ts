// How the `xpr executor` commands find a running executor: `--directory` (its executor.json holds
// the URL and the token), else XPR_EXECUTOR_URL and XPR_EXECUTOR_TOKEN (or BespokeFit's
// BEFLOW_GATEWAY_* and BEFLOW_API_TOKEN), else the default directory when it has an executor.json.
// And what the commands share in showing submissions.
import fs from 'node:fs';
import path from 'node:path';
import { XprError } from '../../../errors.js';
import { ExecutorClient } from '../../../executor/client.js';
import { readState, statePath } from '../../../executor/directory.js';
import { clientEndpoint, DEFAULTS, ENV } from '../../../executor/settings.js';
import type { StageProgress, Submission, SubmissionStatus } from '../../../executor/types.js';
import type { Colour } from '../../format.js';
import type { CommandContext } from '../../common.js';

/** Where the executor is: its directory, or its URL and token. */
export interface ExecutorTarget extends CommandContext {
  directory?: string;
}

export interface FoundExecutor {
  client: ExecutorClient;
  /** Where the URL and token came from, for messages. */
  source: string;
  /** The URL for workers on other machines, when the directory says it. */
  remoteUrl?: string;
  token: string;
}

export function findExecutor(opts: ExecutorTarget): FoundExecutor {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  if (opts.directory !== undefined) return fromDirectory(path.resolve(cwd, opts.directory), '--directory');
  const endpoint = clientEndpoint(env);
  if (endpoint.url !== undefined) {
    if (endpoint.token === undefined) {
      throw new XprError(`${endpoint.urlSource} is set but ${ENV.token} is not`, {
        hint: `Set ${ENV.token} to the token of the executor at ${endpoint.url} (in executor.json in its directory).`,
      });
    }
    return { client: ExecutorClient.connect(endpoint.url, endpoint.token), source: endpoint.urlSource, token: endpoint.token };
  }
  const envDir = env[ENV.directory]?.trim();
  const dir = path.resolve(cwd, envDir || DEFAULTS.directory);
  if (fs.existsSync(statePath(dir))) return fromDirectory(dir, envDir ? ENV.directory : 'the default directory');
  throw new XprError('No executor to talk to: no --directory, no XPR_EXECUTOR_URL, and no executor.json in ./xpr-executor', {
    hint: `Pass --directory <the executor's directory>, or set ${ENV.url} and ${ENV.token} (as xpr executor launch printed them).`,
  });
}

function fromDirectory(dir: string, source: string): FoundExecutor {
  const state = readState(dir);
  if (!state) {
    throw new XprError(`No executor was launched in ${dir} (${source}): ${statePath(dir)} does not exist`, {
      hint: `Launch one there with xpr executor launch --directory ${dir} --workflow <module>, or name the right directory.`,
    });
  }
  if (state.pid === undefined) {
    throw new XprError(`The executor of ${dir} is not running (it was stopped)`, {
      hint: `Launch it again: xpr executor launch --directory ${dir} --workflow <module>; its submissions, results and token are kept.`,
    });
  }
  return {
    client: ExecutorClient.connect(state.url, state.token), source: `${statePath(dir)}`, token: state.token,
    ...(state.remoteUrl !== undefined ? { remoteUrl: state.remoteUrl } : {}),
  };
}

// ---------------------------------------------------------------- showing submissions

export const FINAL: readonly SubmissionStatus[] = ['success', 'errored', 'cancelled'];

export function submissionColour(status: string): Colour | undefined {
  switch (status) {
    case 'success': return 'green';
    case 'errored': return 'red';
    case 'cancelled': return 'dim';
    case 'running': return 'cyan';
    case 'waiting': return 'yellow';
    default: return undefined;
  }
}

/** `fragmenter 1/1 · qc-compute 7/12 · optimizer -`: each stage in order with its progress. */
export function stagesLine(stages: readonly StageProgress[]): string {
  return stages.map((s) => `${s.stage} ${s.total === 0 && s.status === 'waiting' ? '-' : `${s.done}/${s.total}`}${s.status === 'errored' ? ' (failed)' : ''}`).join(' · ');
}

/** The status of a submission and, when it failed, where and why. */
export function statusText(sub: Pick<Submission, 'id' | 'status' | 'error'>): string {
  const e = sub.error;
  return e ? `${sub.status} in stage ${e.stage}: ${e.type}: ${e.message}` : sub.status;
}
