// The client of a running executor, over its HTTP gateway: what `Executor.connect(url, token)`
// returns and what the `xpr executor` commands use. Values go out and results come back through
// xpr's value codec, so a Map or a typed array arrives as itself. Every failure is an XprError
// that names the URL, what the gateway answered and what to do.
import { XprError } from '../errors.js';
import { decode, encode } from '../util/codec.js';
import type { CacheRecord, CacheStats, Submission, SubmissionEvent, SubmissionStatus } from './types.js';

export interface ListQuery {
  status?: SubmissionStatus;
  offset?: number;
  limit?: number;
}

export interface Health {
  redis: 'ok' | 'down';
  workers: Record<string, number>;
}

/** A submission that did not succeed, with the stage error when there is one. */
export class SubmissionFailed extends XprError {
  constructor(
    readonly submission: Pick<Submission, 'id' | 'status' | 'error'>,
  ) {
    const e = submission.error;
    super(
      e
        ? `Submission ${submission.id} failed in stage "${e.stage}": ${e.type}: ${e.message}`
        : `Submission ${submission.id} ended ${submission.status}`,
      {
        hint: e
          ? `Fix the stage, then \`xpr executor retry ${submission.id}\` resumes from "${e.stage}" (finished stages are reused).`
          : `\`xpr executor retry ${submission.id}\` runs it again.`,
      },
    );
    if (e?.stack) this.stack = `${this.name}: ${this.message}\n--- stage ${e.stage} ---\n${e.stack}`;
  }
}

/** The hint for a connection that never got an answer. */
const NOT_RUNNING = 'Is the executor running? Start it with `xpr executor launch`, and check the address it printed.';

export class ExecutorClient {
  readonly url: string;
  readonly #token: string;

  private constructor(url: string, token: string) {
    this.url = url;
    this.#token = token;
  }

  /** A client of the executor at `url` (e.g. http://127.0.0.1:8000) using its API token. */
  static connect(url: string, token: string): ExecutorClient {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new XprError(`The executor address ${JSON.stringify(url)} is not a URL`, { hint: 'Use the address `xpr executor launch` printed, e.g. http://127.0.0.1:8000' });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new XprError(`The executor address must be http:// or https://, not ${JSON.stringify(url)}`);
    }
    if (!token) {
      throw new XprError(`No token for the executor at ${url}`, { hint: "The token is in executor.json in the executor's directory (XPR_EXECUTOR_TOKEN)." });
    }
    return new ExecutorClient(url.replace(/\/+$/, ''), token);
  }

  // ---------------------------------------------------------------- submissions

  /** Submits one input; returns the submission id. */
  async submit(workflow: string, input: unknown): Promise<string>;
  /** Submits many inputs in one request: one submission each, ids in the same order. */
  async submit(workflow: string, input: unknown, options: { many: true }): Promise<string[]>;
  async submit(workflow: string, input: unknown, options?: { many: true }): Promise<string | string[]> {
    if (options?.many) {
      if (!Array.isArray(input)) throw new XprError('submit(workflow, inputs, { many: true }): inputs must be an array');
      const body = { workflow, inputs: input.map((v, i) => encode(v, `inputs[${i}]`)) };
      return (await this.#json<{ ids: string[] }>('POST', '/api/v1/tasks', body)).ids;
    }
    const { ids } = await this.#json<{ ids: string[] }>('POST', '/api/v1/tasks', { workflow, input: encode(input, 'input') });
    return ids[0]!;
  }

  /** Submits many inputs in one request; ids in the same order. */
  submitMany(workflow: string, inputs: readonly unknown[]): Promise<string[]> {
    return this.submit(workflow, [...inputs], { many: true });
  }

  /** A submission's state; with `results: true`, a successful one carries its decoded result. */
  async get(id: string, options: { results?: boolean } = {}): Promise<Submission> {
    const sub = await this.#json<Submission>('GET', `/api/v1/tasks/${encodeURIComponent(id)}${options.results ? '?results=true' : ''}`);
    if (options.results && sub.result !== undefined) sub.result = decode(sub.result);
    return sub;
  }

  /** Submissions, newest first, filtered and paginated by the executor (one request). */
  async list(query: ListQuery = {}): Promise<{ total: number; items: Submission[] }> {
    const params = new URLSearchParams();
    if (query.status) params.set('status', query.status);
    if (query.offset !== undefined) params.set('offset', String(query.offset));
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    const qs = params.size ? `?${params}` : '';
    return this.#json('GET', `/api/v1/tasks${qs}`);
  }

  async cancel(id: string): Promise<Submission> {
    return this.#json('DELETE', `/api/v1/tasks/${encodeURIComponent(id)}`);
  }

  /** Runs an errored or cancelled submission again from the stage that failed. */
  async retry(id: string): Promise<Submission> {
    return this.#json('POST', `/api/v1/tasks/${encodeURIComponent(id)}/retry`);
  }

  /**
   * The submission's events as they happen, pushed by the executor: first its current status, then
   * progress and stage changes; it ends after a final status (success, errored, cancelled), or
   * when `signal` aborts.
   */
  async *watch(id: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<SubmissionEvent> {
    const path = `/api/v1/tasks/${encodeURIComponent(id)}/events`;
    const res = await this.#request('GET', path, undefined, { accept: 'text/event-stream' }, options.signal);
    if (!res.body) throw new XprError(`${this.url}${path} answered without a body`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (err) {
          if (options.signal?.aborted) return;
          throw this.#unreachable('GET', path, err, 'The event stream was cut');
        }
        if (chunk.done) return;
        buffer += chunk.value;
        let cut: number;
        while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
          const event = parseEventBlock(block);
          if (event) yield event;
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  /**
   * Waits for the submission to finish (by its events, not by polling) and returns its decoded
   * result; a failed or cancelled one throws a SubmissionFailed naming the stage and its error.
   */
  async waitUntilComplete(id: string, options: { signal?: AbortSignal } = {}): Promise<unknown> {
    for (;;) {
      let final: SubmissionStatus | undefined;
      for await (const event of this.watch(id, options)) {
        if (event.type === 'status' && (event.status === 'success' || event.status === 'errored' || event.status === 'cancelled')) {
          final = event.status;
          break;
        }
      }
      if (options.signal?.aborted) throw new XprError(`Stopped waiting for submission ${id}`);
      // The stream can also end because the executor stopped: look at the submission itself.
      const sub = await this.get(id, { results: final === 'success' });
      if (sub.status === 'success') return sub.result;
      if (sub.status === 'errored' || sub.status === 'cancelled') throw new SubmissionFailed(sub);
    }
  }

  async health(): Promise<Health> {
    return this.#json('GET', '/api/v1/health');
  }

  // ---------------------------------------------------------------- cache

  /** Adds records (as `cacheExport` wrote them); existing keys are kept. */
  async cacheImport(records: readonly CacheRecord[] | string): Promise<{ inserted: number; total: number }> {
    if (typeof records === 'string') {
      return this.#json('POST', '/api/v1/cache/import', records, 'application/x-ndjson');
    }
    return this.#json('POST', '/api/v1/cache/import', { records });
  }

  /** Every cache record, as the JSON Lines text the executor sends. */
  async cacheExport(): Promise<string> {
    const res = await this.#request('GET', '/api/v1/cache/export');
    return res.text();
  }

  /** Every cache record, parsed. */
  async cacheRecords(): Promise<CacheRecord[]> {
    return (await this.cacheExport()).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as CacheRecord);
  }

  async cacheStats(): Promise<CacheStats> {
    return this.#json('GET', '/api/v1/cache/stats');
  }

  /** Clears the result cache; with `failed`, the failed tasks kept in the stage queues instead. */
  async cacheClear(options: { failed?: boolean } = {}): Promise<{ removed: number; failed: boolean }> {
    return this.#json('DELETE', `/api/v1/cache${options.failed ? '?failed=true' : ''}`);
  }

  // ---------------------------------------------------------------- HTTP

  async #json<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.#request(method, path, body, contentType ? { 'content-type': contentType } : undefined);
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new XprError(`${method} ${this.url}${path} answered ${res.status} with something that is not JSON: ${text.slice(0, 200)}`, {
        hint: 'Is this address an xpr executor?',
      });
    }
  }

  async #request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
    const init: RequestInit = {
      method,
      headers: {
        authorization: `Bearer ${this.#token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      ...(signal ? { signal } : {}),
    };
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, init);
    } catch (err) {
      throw this.#unreachable(method, path, err, 'Cannot reach the executor');
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => '');
    let message = text.slice(0, 500);
    let hint: string | undefined;
    try {
      const parsed = JSON.parse(text) as { message?: string; hint?: string };
      if (parsed.message) message = parsed.message;
      hint = parsed.hint;
    } catch {
      // not JSON: keep the text
    }
    throw new XprError(`${method} ${this.url}${path} answered ${res.status}: ${message}`, { hint: hint ?? hintFor(res.status) });
  }

  #unreachable(method: string, path: string, err: unknown, what: string): XprError {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const code = cause?.code ?? (err as { code?: string }).code;
    const detail = code ?? cause?.message ?? (err as Error).message;
    return new XprError(`${what} at ${this.url} (${method} ${path}): ${detail}`, {
      hint: code === 'ECONNREFUSED' ? NOT_RUNNING : `${NOT_RUNNING} (${(err as Error).message})`,
      cause: err,
    });
  }
}

function hintFor(status: number): string | undefined {
  switch (status) {
    case 401:
      return "Check the token: it is in executor.json in the executor's directory (XPR_EXECUTOR_TOKEN), and `xpr executor launch` prints it.";
    case 404:
      return 'Check the id: `xpr executor list` shows the submissions.';
    case 503:
      return "The executor's Redis is down; try again when it is back.";
    default:
      return status >= 500 ? "This is a bug in the executor: see its log in the executor's directory." : undefined;
  }
}

/** One server-sent event block → its JSON data (events without data, and comments, give nothing). */
function parseEventBlock(block: string): SubmissionEvent | undefined {
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length === 0) return undefined;
  try {
    return JSON.parse(data.join('\n')) as SubmissionEvent;
  } catch {
    return undefined;
  }
}
