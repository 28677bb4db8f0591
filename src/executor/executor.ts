// `Executor.launch`: everything an executor needs, started in order in its directory — Redis (found
// or started), the workflow code bundled and registered, the coordinator (which first picks up what
// a previous run left), the gateway, and the local worker processes — and `close()`, which drains
// them in the reverse order. `Executor.connect` is the client of an executor that runs elsewhere.
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { XprError } from '../errors.js';
import { bundleModule, definingFile } from '../job/code.js';
import { distFile } from '../util/paths.js';
import { alive, commandLine } from '../util/processes.js';
import { ExecutorClient, type ListQuery } from './client.js';
import { makeDirectory, readState, secret, writeState, type ExecutorState } from './directory.js';
import type { RedisServer } from './redis-server.js';
import { DEFAULTS, ENV, forStage, redactUrl, resolveSettings, type SettingsInput } from './settings.js';
import type { ExecutorStore } from './store.js';
import type { ExecutorSettings, Submission, SubmissionEvent, Workflow, WorkflowRecord } from './types.js';
import { workflowRecord, workflowsIn } from './workflow.js';
import type { PoolSlot, WorkerPool } from './worker-pool.js';

export interface LaunchOptions extends SettingsInput {
  /** The workflows to run; their module is found from their stage functions unless `workflowModule` names it. */
  workflows?: readonly Workflow[];
  /** The module file that exports the workflows (`--workflow`); all its workflows unless `workflows` picks some. */
  workflowModule?: string | URL;
  /** On close, how long a running task may take to finish before it goes back to the queue (default 30 s). */
  graceMs?: number;
  /** How soon a task of a killed worker runs again (BullMQ lock duration; default 30 s). */
  lockDurationMs?: number;
  /** Where settings come from besides the options (default process.env) and relative paths resolve (default cwd). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** One line of what the executor does (default: stderr). */
  log?: (line: string) => void;
}

/** What a running executor reports about itself. */
export interface ExecutorInfo {
  directory: string;
  /** URL of the gateway for this machine. */
  url: string;
  /** URL for workers on other machines (the host name when the gateway listens on every address). */
  remoteUrl: string;
  token: string;
  /** Redis URL with the password hidden. */
  redis: string;
  /** The redis-server was started by this launch (and is stopped by close). */
  startedRedis: boolean;
  workflows: WorkflowRecord[];
  /** Local worker processes per stage. */
  workers: Record<string, number>;
  warnings: string[];
}

const DEFAULT_GRACE_MS = 30_000;

export class Executor implements AsyncDisposable {
  private closed: Promise<void> | undefined;

  private constructor(
    readonly info: ExecutorInfo,
    readonly client: ExecutorClient,
    private readonly parts: Parts,
  ) {}

  get url(): string { return this.info.url; }
  get token(): string { return this.info.token; }
  get directory(): string { return this.info.directory; }

  /** The client of an executor running elsewhere (XPR_EXECUTOR_URL, XPR_EXECUTOR_TOKEN). */
  static connect(url: string, token: string): ExecutorClient {
    return ExecutorClient.connect(url, token);
  }

  /** Starts an executor in `directory`; see LaunchOptions. Resolves once it accepts submissions. */
  static async launch(options: LaunchOptions = {}): Promise<Executor> {
    const env = options.env ?? process.env;
    const cwd = options.cwd ?? process.cwd();
    const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    const { settings, warnings } = resolveSettings(options, env, cwd);
    for (const w of warnings) log(`warning: ${w}`);
    const cleanup: (() => Promise<void>)[] = [];
    try {
      const { info, client, parts } = await launchIn(settings, options, { env, cwd, log, warnings, cleanup });
      return new Executor(info, client, parts);
    } catch (err) {
      for (const undo of cleanup.reverse()) await undo().catch(() => undefined);
      throw err;
    }
  }

  submit(workflow: string, input: unknown): Promise<string> {
    return this.client.submit(workflow, input);
  }

  /** The decoded result of a submission once it succeeds; an error naming the stage when it fails. */
  waitUntilComplete(id: string, options?: { signal?: AbortSignal }): Promise<unknown> {
    return this.client.waitUntilComplete(id, options);
  }

  get(id: string, options?: { results?: boolean }): Promise<Submission> {
    return this.client.get(id, options);
  }

  list(query?: ListQuery): Promise<{ total: number; items: Submission[] }> {
    return this.client.list(query);
  }

  cancel(id: string): Promise<Submission> {
    return this.client.cancel(id);
  }

  retry(id: string): Promise<Submission> {
    return this.client.retry(id);
  }

  watch(id: string, options?: { signal?: AbortSignal }): AsyncGenerator<SubmissionEvent> {
    return this.client.watch(id, options);
  }

  /** Live local worker processes per stage. */
  localWorkers(): Record<string, number> {
    return this.parts.pool.counts();
  }

  /**
   * Drains and stops: local workers get SIGTERM and `graceMs` to finish their task (a task not done
   * by then goes back to the queue), then the gateway, the coordinator and — if this launch started
   * it — Redis stop. Safe to call more than once.
   */
  close(): Promise<void> {
    this.closed ??= this.parts.stop();
    return this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

interface Parts {
  pool: WorkerPool;
  stop(): Promise<void>;
}

interface LaunchContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  log: (line: string) => void;
  warnings: string[];
  /** Undo steps of what has been started, run in reverse when the launch fails. */
  cleanup: (() => Promise<void>)[];
}

async function launchIn(
  settings: ExecutorSettings, options: LaunchOptions, ctx: LaunchContext,
): Promise<{ info: ExecutorInfo; client: ExecutorClient; parts: Parts }> {
  const { log, cleanup } = ctx;
  // Loaded here, not with the module: `import 'xpr'` should not pull in Redis, BullMQ and Fastify.
  const [{ Coordinator }, { buildGateway }, { ExecutorStore }, { WorkerPool }] = await Promise.all([
    import('./coordinator.js'), import('./gateway.js'), import('./store.js'), import('./worker-pool.js'),
  ]);
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  // A busy port fails before anything is started: nothing to undo, and the message is the first thing seen.
  await checkPortFree(settings.address, settings.port);
  const modules = await workflowModules(options, ctx.cwd);

  makeDirectory(settings.directory);
  const previous = readState(settings.directory);
  refuseSecondExecutor(settings.directory, previous);
  stopLeftoverWorkers(previous, log);
  const token = settings.token ?? previous?.token ?? secret();

  const redis = await findOrStartRedis(settings, previous, log);
  if (redis.server) cleanup.push(() => redis.server?.stop() ?? Promise.resolve());
  // Written now, so that a crash from here on still leaves the password of the Redis with the data.
  const state: ExecutorState = {
    redisUrl: redis.url, redisOwned: redis.owned, token, address: settings.address, port: settings.port,
    url: previous?.url ?? '', pid: process.pid, workerPids: [],
  };
  writeState(settings.directory, state);

  const store = ExecutorStore.connect(redis.url);
  cleanup.push(() => store.close());
  const workflows = await registerWorkflows(store, modules, options.workflows);
  // Workflows registered by earlier launches count too: their unfinished submissions need workers.
  const known = await store.listWorkflows();
  const stages = [...new Set(known.flatMap((w) => w.stages.map((s) => s.stage)))];
  checkStageNames(settings, stages);

  // It resumes what an earlier run left unfinished before it takes anything new.
  const coordinator = await Coordinator.start({ redis: redis.url, onError: (err) => log(`xpr executor: coordinator: ${describeError(err)}`) });
  cleanup.push(() => coordinator.close());

  const gateway = await buildGateway({
    store, coordinator, connection: redisOptions(redis.url), token, stages,
    ...(options.lockDurationMs !== undefined ? { lockDurationMs: options.lockDurationMs } : {}),
  });
  cleanup.push(() => closeGateway(gateway));
  const port = await listen(gateway, settings.address, settings.port);
  const url = `http://${clientHost(settings.address)}:${port}`;
  const remoteUrl = `http://${remoteHost(settings.address)}:${port}`;

  Object.assign(state, { url, remoteUrl, port });
  // The pids are kept current in the directory: a relaunch after a crash stops the workers left running.
  let started = false;
  const pool: WorkerPool = new WorkerPool({
    program: distFile('executor/worker-main.js'), logDir: path.join(settings.directory, 'logs'), log, env: ctx.env,
    onSpawn: () => { if (started) writeState(settings.directory, { ...state, workerPids: pool.pids() }); },
  });
  cleanup.push(() => pool.close(0));
  pool.start(workerSlots(settings, stages, redis.url, graceMs, options.lockDurationMs));
  started = true;
  state.workerPids = pool.pids();
  writeState(settings.directory, state);

  const info: ExecutorInfo = {
    directory: settings.directory, url, remoteUrl, token, redis: redactUrl(redis.url), startedRedis: redis.server?.child !== undefined,
    workflows, workers: Object.fromEntries(stages.map((s) => [s, forStage(settings.workers, s, DEFAULTS.workersPerStage)])),
    warnings: ctx.warnings,
  };
  log(`xpr executor: gateway at ${url} (directory ${settings.directory}, Redis ${info.redis}${info.startedRedis ? ', started here' : ''})`);
  log(`xpr executor: workflows ${workflows.map((w) => `${w.name} [${w.stages.map((s) => s.stage).join(' → ')}]`).join(', ')}`);
  log(`xpr executor: local workers ${Object.entries(info.workers).map(([s, n]) => `${s}=${n}`).join(', ')}`);
  log(`xpr executor: a worker on another machine connects with:\n  ${ENV.url}=${remoteUrl} ${ENV.url.replace('URL', 'TOKEN')}=${token} xpr worker --stage <stage>`);
  if (isLoopback(settings.address)) log(`  (the gateway listens on ${settings.address} only: launch with --address 0.0.0.0 for other machines)`);

  const client = ExecutorClient.connect(url, token);
  const stop = async (): Promise<void> => {
    log(`xpr executor: stopping; running tasks have ${Math.round(graceMs / 1000)} s to finish`);
    await pool.close(graceMs);
    await closeGateway(gateway);
    await coordinator.close();
    await store.close();
    // Only a redis-server of this directory (started here, or by the run before a crash) is stopped.
    if (redis.server) await redis.server.stop();
    writeState(settings.directory, { ...state, pid: undefined, workerPids: [] } as ExecutorState);
    log('xpr executor: stopped');
  };
  return { info, client, parts: { pool, stop } };
}

// ---------------------------------------------------------------- the steps

async function checkPortFree(address: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(portError(address, port, err)));
    probe.listen({ port, host: address, exclusive: true }, () => probe.close(() => resolve()));
  });
}

function portError(address: string, port: number, err: NodeJS.ErrnoException): Error {
  if (err.code === 'EADDRINUSE') {
    return new XprError(`Port ${port} on ${address} is already in use, so the executor's gateway cannot listen there`, {
      hint: `Stop what listens on port ${port} (another executor? ss -ltnp 'sport = :${port}'), or pick another port with --port (${ENV.port}); --port 0 takes any free one.`,
    });
  }
  if (err.code === 'EACCES') {
    return new XprError(`Port ${port} on ${address} needs privileges this process does not have`, { hint: `Use a port above 1023 with --port (${ENV.port}).` });
  }
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
    return new XprError(`The gateway cannot listen on ${address}: no such address on this machine`, {
      hint: `Give --address (${ENV.address}) one of this machine's addresses, 127.0.0.1 (this machine only) or 0.0.0.0 (every address).`,
    });
  }
  return err;
}

/** Time a client's request may take to finish once the gateway closes. */
const GATEWAY_CLOSE_MS = 3_000;

/**
 * Closes the gateway. A client's idle keep-alive connection (or one whose event stream it stopped
 * reading) would hold the close up for the whole keep-alive time: such connections are cut, the
 * idle ones at once and any other after a short wait.
 */
async function closeGateway(app: FastifyInstance): Promise<void> {
  const closed = app.close();
  // Connections turn idle as the gateway ends its event streams and long polls while closing.
  const idle = setInterval(() => app.server.closeIdleConnections(), 100);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), GATEWAY_CLOSE_MS); });
  try {
    if (await Promise.race([closed.then(() => 'closed' as const), late]) === 'late') {
      app.server.closeAllConnections();
      await closed;
    }
  } finally {
    clearInterval(idle);
    clearTimeout(timer);
  }
}

async function listen(app: FastifyInstance, address: string, port: number): Promise<number> {
  try {
    await app.listen({ port, host: address });
  } catch (err) {
    throw portError(address, port, err as NodeJS.ErrnoException);
  }
  const bound = app.server.address();
  return typeof bound === 'object' && bound ? bound.port : port;
}

/** The module files to bundle, each with the workflows it exports. */
async function workflowModules(options: LaunchOptions, cwd: string): Promise<{ file: string; ns: Record<string, unknown> }[]> {
  const files = new Set<string>();
  if (options.workflowModule !== undefined) {
    const m = options.workflowModule;
    files.add(m instanceof URL || m.startsWith('file:') ? fileURLToPath(m) : path.resolve(cwd, m));
  } else {
    for (const wf of options.workflows ?? []) {
      const file = wf.stages.map((s) => definingFile(s.run as never)).find((f) => f !== undefined);
      if (file === undefined) {
        throw new XprError(`Cannot tell which module exports workflow "${wf.name}"`, {
          hint: 'Give the module file with workflowModule (--workflow): the executor bundles it for its workers.',
        });
      }
      files.add(file.startsWith('file:') ? fileURLToPath(file) : file);
    }
  }
  if (files.size === 0) {
    throw new XprError('No workflow to run: give --workflow <module file> (workflowModule) or workflows', {
      hint: 'The module exports workflow("name", [...stages]) from xpr; see xpr executor launch --help.',
    });
  }
  const out: { file: string; ns: Record<string, unknown> }[] = [];
  for (const file of files) {
    let ns: Record<string, unknown>;
    try {
      ns = await import(pathToFileURL(file).href) as Record<string, unknown>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && (err as Error).message.includes(file)) {
        throw new XprError(`The workflow module ${file} does not exist`, { hint: 'Give --workflow the path of the module file that exports the workflows.' });
      }
      if (err instanceof XprError) throw err;
      throw new XprError(`The workflow module ${file} failed to load: ${(err as Error).message}`, { cause: err });
    }
    if (workflowsIn(ns).length === 0) {
      throw new XprError(`${file} exports no workflow`, { hint: 'Export one: export const bespoke = workflow("bespoke", [{ stage: "a", run: a }, ...]).' });
    }
    out.push({ file, ns });
  }
  return out;
}

/** Bundles each module, stores the code, registers the workflows asked for; returns them. */
async function registerWorkflows(
  store: ExecutorStore, modules: { file: string; ns: Record<string, unknown> }[], chosen: readonly Workflow[] | undefined,
): Promise<WorkflowRecord[]> {
  const records: WorkflowRecord[] = [];
  for (const { file, ns } of modules) {
    const exported = workflowsIn(ns);
    const picked = chosen === undefined ? exported : exported.filter((e) => chosen.some((w) => w === e.workflow || w.name === e.workflow.name));
    if (picked.length === 0) continue;
    const bundle = await bundleModule(file);
    await store.putCode(bundle.hash, bundle.code);
    for (const { exportName, workflow } of picked) {
      const record = workflowRecord(workflow, bundle.hash, exportName);
      await store.putWorkflow(record);
      records.push(record);
    }
  }
  const missing = (chosen ?? []).filter((w) => !records.some((r) => r.name === w.name));
  if (missing.length > 0) {
    throw new XprError(`Workflow ${missing.map((w) => `"${w.name}"`).join(', ')} is not exported by ${modules.map((m) => m.file).join(', ')}`, {
      hint: 'A workflow must be a named export of its module: export const name = workflow(...).',
    });
  }
  return records;
}

function checkStageNames(settings: ExecutorSettings, stages: readonly string[]): void {
  for (const [flag, values] of [['--workers', settings.workers], ['--cores', settings.cores], ['--max-mem', settings.maxMem]] as const) {
    const unknown = Object.keys(values).filter((s) => s !== '*' && !stages.includes(s));
    if (unknown.length > 0) {
      throw new XprError(`${flag} names stage ${unknown.map((s) => `"${s}"`).join(', ')}, which no workflow has (stages: ${stages.join(', ')})`, {
        hint: `Use the stage names of the workflows, e.g. ${flag} ${stages[0] ?? 'stage'}=1.`,
      });
    }
  }
}

function workerSlots(settings: ExecutorSettings, stages: readonly string[], redisUrl: string, graceMs: number, lockDurationMs: number | undefined): PoolSlot[] {
  const slots: PoolSlot[] = [];
  for (const stage of stages) {
    const n = forStage(settings.workers, stage, DEFAULTS.workersPerStage);
    const cores = forStage<number | 'auto'>(settings.cores, stage, DEFAULTS.coresPerWorker);
    const maxMem = forStage<number | undefined>(settings.maxMem, stage, undefined);
    for (let index = 1; index <= n; index++) {
      slots.push({
        stage, index,
        settings: {
          redisUrl, stage, cores, graceMs,
          ...(maxMem !== undefined ? { maxMem } : {}),
          ...(settings.keepTempFiles ? { keepTempFiles: true } : {}),
          ...(lockDurationMs !== undefined ? { lockDurationMs, stalledIntervalMs: Math.max(500, Math.floor(lockDurationMs / 2)) } : {}),
        },
      });
    }
  }
  return slots;
}

// ---------------------------------------------------------------- Redis

interface FoundRedis {
  url: string;
  /** Started for this directory (by this launch or an earlier one): its data is the directory's. */
  owned: boolean;
  /** Set when this launch stops it on close. */
  server: RedisServer | undefined;
}

async function findOrStartRedis(settings: ExecutorSettings, previous: ExecutorState | undefined, log: (l: string) => void): Promise<FoundRedis> {
  const { adoptRedisServer, ping, redisUnreachable, startRedisServer } = await import('./redis-server.js');
  const dataDir = path.join(settings.directory, 'redis');
  if (settings.redis !== undefined) {
    const result = await ping(settings.redis);
    if (result === 'ok') return { url: settings.redis, owned: false, server: undefined };
    const u = new URL(settings.redis);
    // Nothing answers at a local address: start one there, as a launch without --redis would.
    if (result === 'down' && isLoopback(u.hostname) && u.password !== '') {
      log(`xpr executor: no Redis answers at ${redactUrl(settings.redis)}; starting redis-server there (data in ${dataDir})`);
      const server = await startRedisServer({ dir: dataDir, password: decodeURIComponent(u.password), port: Number(u.port || 6379) });
      if (server.port !== Number(u.port || 6379)) {
        await server.stop();
        throw redisUnreachable(settings.redis, '--redis', result);
      }
      // Its data is in this directory, as if it had been started without --redis.
      return { url: settings.redis, owned: true, server };
    }
    throw redisUnreachable(settings.redis, '--redis', result);
  }
  if (previous && !previous.redisOwned) {
    // This directory's data lives in a Redis named by an earlier --redis: only that one has it.
    const result = await ping(previous.redisUrl);
    if (result === 'ok') return { url: previous.redisUrl, owned: false, server: undefined };
    throw new XprError(`The executor of ${settings.directory} kept its data in the Redis at ${redactUrl(previous.redisUrl)}, which does not answer`, {
      hint: 'Start that Redis, or give --redis the URL where it runs now.',
    });
  }
  if (previous?.redisOwned) {
    // After a crash the directory's redis-server may still run: go on with it.
    if (await ping(previous.redisUrl) === 'ok') {
      log(`xpr executor: the redis-server of ${settings.directory} still runs; using it`);
      return { url: previous.redisUrl, owned: true, server: adoptRedisServer(previous.redisUrl) };
    }
    const u = new URL(previous.redisUrl);
    const server = await startRedisServer({ dir: dataDir, password: decodeURIComponent(u.password), port: Number(u.port) });
    return { url: server.url, owned: true, server };
  }
  const server = await startRedisServer({ dir: dataDir, password: secret() });
  return { url: server.url, owned: true, server };
}

function redisOptions(url: string): { host: string; port: number; password?: string; username?: string; db?: number } {
  const u = new URL(url);
  const db = u.pathname.replace(/^\//, '');
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port || 6379),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(db !== '' ? { db: Number(db) } : {}),
  };
}

// ---------------------------------------------------------------- processes of an earlier launch

function refuseSecondExecutor(directory: string, previous: ExecutorState | undefined): void {
  if (previous?.pid === undefined || !alive(previous.pid)) return;
  const cmd = commandLine(previous.pid) ?? '';
  if (!/node|xpr/.test(cmd)) return; // the pid was reused by something else: the executor is gone
  throw new XprError(`An executor already runs on ${directory} (process ${previous.pid}, ${previous.url})`, {
    hint: 'Use it (xpr executor submit --directory …), stop it (Ctrl-C, or kill ' + String(previous.pid) + '), or launch on another --directory.',
  });
}

/** Workers of an executor that was killed keep their own process group: stop them before starting new ones. */
function stopLeftoverWorkers(previous: ExecutorState | undefined, log: (l: string) => void): void {
  for (const pid of previous?.workerPids ?? []) {
    if (!alive(pid) || !(commandLine(pid) ?? '').includes('worker-main')) continue;
    log(`xpr executor: stopping worker ${pid} left by the previous run (its task goes back to the queue)`);
    try {
      process.kill(pid, 'SIGTERM');
    } catch { /* gone meanwhile */ }
  }
}

function describeError(err: unknown): string {
  return err instanceof XprError ? err.describe() : err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------- addresses

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** Host for clients on this machine. */
function clientHost(address: string): string {
  if (isWildcard(address)) return '127.0.0.1';
  return address.includes(':') ? `[${address}]` : address;
}

/** Host for workers on other machines. */
function remoteHost(address: string): string {
  if (isWildcard(address)) return os.hostname();
  return address.includes(':') ? `[${address}]` : address;
}
