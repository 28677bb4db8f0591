// A worker that reaches the executor over HTTP only: it leases one task at a time from the gateway,
// runs it with the same task runner as the local workers, sends heartbeats while it runs (so the
// gateway knows it is alive and keeps its lease), then reports the outcome. It needs no Redis port
// and no copy of the workflow: the code comes from the gateway by its hash. Used by `xpr worker` on
// another machine and by pilot jobs on a cluster, so it is pure (node builtins, global fetch and
// the task runner) and bundles into a batch job.
//
// Every error that comes from where the executor is or who we are names the variables the user
// sets, XPR_EXECUTOR_URL and XPR_EXECUTOR_TOKEN, since those are what to fix.
import crypto from 'node:crypto';
import os from 'node:os';
import { XprError } from '../errors.js';
import { serializeError, type SerializedError } from '../util/codec.js';
import { resolveCores } from './cores.js';
import { runTask, StageFailed } from './task-runner.js';
import type { TaskData, TaskOutcome } from './types.js';

export const URL_VARIABLE = 'XPR_EXECUTOR_URL';
export const TOKEN_VARIABLE = 'XPR_EXECUTOR_TOKEN';

export interface RemoteWorkerOptions {
  /** The gateway's base URL, e.g. `http://host:8000` (XPR_EXECUTOR_URL). */
  url: string;
  /** The worker token (XPR_EXECUTOR_TOKEN). */
  token: string;
  stage: string;
  cores: number | 'auto';
  /** Memory for the whole worker, in kB; the stage sees it per core. */
  maxMem?: number;
  /** Lease no new task once this many ms have passed since the start (a pilot job's time limit). */
  stopAfterMs?: number;
  /** Stop leasing when aborted; the task running then is finished and reported first. */
  signal?: AbortSignal;
  /** Milliseconds between heartbeats while a task runs; default a third of the executor's lock duration, at most 10 s. */
  heartbeatMs?: number;
  /** How long to keep trying once the gateway stops answering (a relaunch); default 2 minutes. */
  reconnectMs?: number;
  /** Name this worker reports; default host, pid and a random suffix. */
  workerId?: string;
  /** Where bundles are written to be imported; default `<tmp>/xpr-exec-code`. */
  codeDir?: string;
  /** Keep each task's scratch dir (ctx.tempDir) after it ends. */
  keepTempFiles?: boolean;
  /** One line of progress; default: stderr. */
  log?: (line: string) => void;
}

export interface RemoteWorkerSummary {
  workerId: string;
  cores: number;
  /** Tasks run to the end, whether their function returned or threw. */
  tasks: number;
  failed: number;
  /** Why the loop ended. */
  stopped: 'time' | 'signal';
}

/** The gateway's answer to a lease with a task in it. */
interface Lease {
  leaseToken: string;
  taskId: string;
  data: TaskData;
  /** How long the lease lasts without a heartbeat (from the executor's launch). */
  lockDurationMs?: number;
}

const HEARTBEAT_MS = 10_000;

const LEASE_PATH = '/api/v1/workers/lease';
/** The gateway holds a lease request up to 20 s when no task waits. */
const LEASE_TIMEOUT_MS = 35_000;
const REQUEST_TIMEOUT_MS = 30_000;

/** Lease, run and report tasks of one stage until the time is up or `signal` aborts. */
export async function runRemoteWorker(options: RemoteWorkerOptions): Promise<RemoteWorkerSummary> {
  const gateway = new GatewayClient(options);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { cores, how } = resolveCores(options.cores);
  const workerId = options.workerId ?? `${os.hostname()}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const deadline = options.stopAfterMs === undefined ? Infinity : Date.now() + options.stopAfterMs;
  const env = {
    cores,
    maxMemPerCore: options.maxMem === undefined ? undefined : Math.floor(options.maxMem / cores),
    loadCode: (hash: string) => gateway.code(hash),
    ...(options.codeDir === undefined ? {} : { codeDir: options.codeDir }),
    ...(options.keepTempFiles ? { keepTempFiles: true, log } : {}),
  };
  log(`xpr worker ${workerId}: stage ${options.stage}, ${cores} core${cores === 1 ? '' : 's'} (${how}), executor ${gateway.base}`);
  const summary: RemoteWorkerSummary = { workerId, cores, tasks: 0, failed: 0, stopped: 'signal' };
  for (;;) {
    if (options.signal?.aborted) break;
    if (Date.now() >= deadline) {
      summary.stopped = 'time';
      break;
    }
    const lease = await gateway.lease({ stage: options.stage, workerId, cores }, options.signal);
    if (!lease) continue;
    const ok = await runLeased(gateway, lease, workerId, env, options, log);
    summary.tasks++;
    if (!ok) summary.failed++;
  }
  log(`xpr worker ${workerId}: stopped (${summary.stopped === 'time' ? 'time limit reached' : 'asked to stop'}) after ${summary.tasks} task${summary.tasks === 1 ? '' : 's'}`);
  return summary;
}

/** Run one leased task with heartbeats, then report it; true when the stage function succeeded. */
async function runLeased(
  gateway: GatewayClient, lease: Lease, workerId: string, env: Parameters<typeof runTask>[2], options: RemoteWorkerOptions,
  log: (line: string) => void,
): Promise<boolean> {
  const ids = { stage: options.stage, taskId: lease.taskId, leaseToken: lease.leaseToken, workerId };
  let lost = false;
  let beating = false;
  const beat = setInterval(() => {
    // A heartbeat that is still retrying (the gateway restarting) is not doubled by the next one.
    if (beating) return;
    beating = true;
    gateway.heartbeat(ids).finally(() => { beating = false; }).then((held) => {
      if (!held && !lost) {
        lost = true;
        log(`xpr worker: the lease on task ${lease.taskId} was lost (the gateway may have given it to another worker)`);
      }
    }, (err: unknown) => log(`xpr worker: heartbeat for task ${lease.taskId} failed: ${(err as Error).message}`));
  }, options.heartbeatMs ?? heartbeatInterval(lease));
  let outcome: TaskOutcome | undefined;
  let failure: { error: SerializedError; transient: boolean } | undefined;
  try {
    outcome = await runTask(lease.taskId, lease.data, env);
  } catch (err) {
    failure = err instanceof StageFailed
      ? { error: err.failure, transient: false }
      // Not the stage's fault (the code could not be fetched): the task is worth another attempt.
      : { error: serializeError(err), transient: true };
  } finally {
    clearInterval(beat);
  }
  const accepted = outcome
    ? await gateway.report('complete', { ...ids, outcome })
    : await gateway.report('fail', { ...ids, ...failure! });
  if (!accepted) log(`xpr worker: the gateway no longer holds task ${lease.taskId} for this worker; its outcome was dropped`);
  if (failure) log(`xpr worker: task ${lease.taskId} failed${failure.transient ? ' (will be retried)' : ''}: ${failure.error.name}: ${failure.error.message}`);
  return outcome !== undefined;
}

/** A third of the lease's lock duration (at most 10 s): a late or lost heartbeat still leaves one more. */
function heartbeatInterval(lease: Lease): number {
  const lock = lease.lockDurationMs;
  return typeof lock === 'number' && lock > 0 ? Math.max(100, Math.min(HEARTBEAT_MS, Math.floor(lock / 3))) : HEARTBEAT_MS;
}

// ---- HTTP ----

/** The gateway's worker endpoints, with errors that name the variables to fix. */
class GatewayClient {
  readonly base: string;
  private readonly token: string;
  private readonly reconnectMs: number;
  /** Once the gateway has answered, a connection lost later is a restart to wait out, not a typo. */
  private reached = false;

  constructor(options: RemoteWorkerOptions) {
    this.base = checkUrl(options.url);
    if (!options.token) {
      throw new XprError(`${TOKEN_VARIABLE} is empty: a worker needs the executor's token`, {
        hint: 'Set it to the token `xpr executor launch` printed (also in executor.json in its directory).',
      });
    }
    this.token = options.token;
    this.reconnectMs = options.reconnectMs ?? 120_000;
  }

  async lease(body: { stage: string; workerId: string; cores: number }, signal?: AbortSignal): Promise<Lease | undefined> {
    const res = await this.request('POST', LEASE_PATH, body, LEASE_TIMEOUT_MS, signal);
    if (!res || res.status === 204) return undefined;
    await this.expect(res, 'POST', LEASE_PATH);
    return (await res.json()) as Lease;
  }

  /** False when the gateway says the lease is no longer ours. */
  async heartbeat(body: { stage: string; taskId: string; leaseToken: string; workerId: string }): Promise<boolean> {
    return this.report('heartbeat', body);
  }

  /** complete / fail / heartbeat; false when the gateway no longer holds the lease for us. */
  async report(what: 'complete' | 'fail' | 'heartbeat', body: object): Promise<boolean> {
    const where = `/api/v1/workers/${what}`;
    const res = await this.request('POST', where, body, REQUEST_TIMEOUT_MS);
    if (!res) return false;
    if (res.status === 404 || res.status === 409 || res.status === 410) return false;
    await this.expect(res, 'POST', where);
    return true;
  }

  async code(hash: string): Promise<string> {
    const where = `/api/v1/code/${encodeURIComponent(hash)}`;
    const res = await this.request('GET', where, undefined, REQUEST_TIMEOUT_MS);
    if (!res) throw new Error(`stopped while fetching code ${hash}`);
    await this.expect(res, 'GET', where);
    return res.text();
  }

  /** Throws for an answer that is not a success; 401 and 404 say what to fix, others what the gateway said. */
  private async expect(res: Response, method: string, where: string): Promise<void> {
    if (res.ok) return;
    if (res.status === 401 || res.status === 403) {
      throw new XprError(`The token in ${TOKEN_VARIABLE} was refused by ${this.base}`, {
        hint: `Set ${TOKEN_VARIABLE} to the token \`xpr executor launch\` printed (also in executor.json in its directory).`,
      });
    }
    const said = await gatewayMessage(res);
    throw new XprError(`${this.base} (${URL_VARIABLE}) answered ${res.status} to ${method} ${where}` +
      (res.status === 404 && where === LEASE_PATH ? ': is it an xpr executor?' : said ? `: ${said}` : ''), {
      hint: `Check that ${URL_VARIABLE} is the address \`xpr executor launch\` printed, and that both run the same xpr version.`,
    });
  }

  /**
   * One request. The first contact fails at once (a wrong address should say so, not hang); after
   * that, a lost connection or a 5xx is retried with backoff for `reconnectMs`, since the executor
   * may be restarting. Undefined when `signal` aborted it.
   */
  private async request(method: string, where: string, body: unknown, timeoutMs: number, signal?: AbortSignal): Promise<Response | undefined> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) return undefined;
      let problem: string;
      try {
        const timeout = AbortSignal.timeout(timeoutMs);
        const res = await fetch(`${this.base}${where}`, {
          method,
          headers: {
            authorization: `Bearer ${this.token}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        if (res.status < 500) {
          this.reached = true;
          return res;
        }
        problem = `${res.status} ${res.statusText}: ${(await res.text().catch(() => '')).slice(0, 200)}`;
      } catch (err) {
        if (signal?.aborted) return undefined;
        problem = describeFetchError(err);
      }
      const waited = Date.now() - started;
      if (!this.reached || waited >= this.reconnectMs) {
        throw new XprError(`Cannot reach the executor at ${this.base} (${URL_VARIABLE}): ${problem}`, {
          hint: this.reached
            ? `It stopped answering for ${Math.round(waited / 1000)} s; is it still running?`
            : `Check that ${URL_VARIABLE} is the address \`xpr executor launch\` printed and that this machine can reach it.`,
        });
      }
      await sleep(Math.min(500 * 2 ** attempt, 10_000), signal);
    }
  }
}

/** The `message` of a JSON error answer (a 400 names the field or the unknown stage). */
async function gatewayMessage(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof m === 'string') return m;
  } catch {
    // not JSON
  }
  return text.slice(0, 200);
}

function checkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new XprError(`${URL_VARIABLE} is not a URL: ${JSON.stringify(url)}`, {
      hint: 'Set it to the address `xpr executor launch` printed, e.g. http://host:8000',
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new XprError(`${URL_VARIABLE} must be an http:// or https:// URL, not ${JSON.stringify(url)}`);
  }
  return url.replace(/\/+$/, '');
}

/** `fetch failed` says nothing; its cause says ECONNREFUSED, ENOTFOUND, a timeout. */
function describeFetchError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'no answer in time';
  const cause = e.cause;
  if (cause?.code && cause.message && !cause.message.includes(cause.code)) return `${cause.code}: ${cause.message}`;
  return cause?.message ?? cause?.code ?? e.message;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
