// The executor's commands (`xpr executor <sub>` and `xpr worker`), declared apart from the job
// commands in main.ts: they talk to a running executor over HTTP instead of a project's jobs.db.
import { Command, InvalidArgumentError } from 'commander';
import type { CommandContext } from './common.js';
import type { FormatOptions } from './format.js';
import type { GlobalOptions, Io } from './main.js';
import { collect, positiveInt, positiveNumber } from './option-parsers.js';

/** What the executor commands share with the others in `main`. */
export interface CommandKit {
  context: (cmd: Command) => CommandContext;
  emit: <R>(cmd: Command, result: R, render: (r: R, f: FormatOptions) => string, toJson?: (r: R) => unknown) => void;
  format: (cmd: Command) => FormatOptions;
  globals: (cmd: Command) => GlobalOptions;
  setExitCode: (code: number) => void;
}

const EXECUTOR_HELP = `
An executor runs the inputs of multi-stage workflows on worker processes per stage, over Redis,
with a result cache shared by every submission. Start one with launch; the other commands talk to
it through --directory (its executor.json) or XPR_EXECUTOR_URL and XPR_EXECUTOR_TOKEN.`;

/** `xpr executor <sub>` and `xpr worker`. */
export function addExecutorCommands(program: Command, io: Io, kit: CommandKit): void {
  const { context, emit, format, globals } = kit;
  const onStop = io.onStop ?? io.onInterrupt ?? (() => () => {});
  const log = (line: string): void => { io.stderr.write(`${line}\n`); };
  const executor = program.command('executor')
    .description('Run workflows on per-stage worker pools with a shared result cache (launch, submit, watch, retrieve, …)')
    .addHelpText('after', EXECUTOR_HELP);
  const sub = (name: string): Command => executor.command(name).option('-d, --directory <dir>', 'the executor\'s directory (default: $XPR_EXECUTOR_URL, else ./xpr-executor)');
  const target = (c: Command, opts: { directory?: string }) => ({ ...context(c), ...(opts.directory !== undefined ? { directory: opts.directory } : {}) });

  executor.command('launch')
    .description('Start an executor (Redis, gateway, coordinator, local workers) and serve until Ctrl-C or SIGTERM')
    .requiredOption('-w, --workflow <file>', 'the module that exports the workflows')
    .option('-d, --directory <dir>', 'where its Redis data, token and logs live (default: $XPR_EXECUTOR_DIRECTORY or ./xpr-executor)')
    .option('--workers <list>', 'local worker processes per stage, e.g. fragmenter=1,qc-compute=2 (default: 1 each; $XPR_EXECUTOR_WORKERS)')
    .option('--cores <list>', 'cores per worker, e.g. qc-compute=8,fragmenter=auto (default: 1; $XPR_EXECUTOR_CORES)')
    .option('--max-mem <list>', 'memory per worker, e.g. qc-compute=2.5gb ($XPR_EXECUTOR_MAX_MEM)')
    .option('--address <host>', 'address the gateway listens on; 0.0.0.0 for workers on other machines (default: 127.0.0.1; $XPR_EXECUTOR_ADDRESS)')
    .option('--port <n>', 'gateway port; 0 for any free one (default: 8000; $XPR_EXECUTOR_PORT)')
    .option('--redis <url>', 'use the Redis at this URL (redis://:<password>@host:port) instead of starting one ($XPR_EXECUTOR_REDIS_URL)')
    .option('--token <token>', 'API token (default: generated once and kept in the directory; $XPR_EXECUTOR_TOKEN)')
    .option('--keep-temp-files', 'keep each task\'s scratch dir (ctx.tempDir) after it ends ($XPR_EXECUTOR_KEEP_TEMP_FILES)')
    .option('--grace <seconds>', 'on stop, how long running tasks may take to finish before they go back to the queue', positiveNumber, 30)
    .addHelpText('after', '\nBespokeFit\'s BEFLOW_* variables are honoured where the XPR_EXECUTOR_* one is unset (see the README).\n' +
      'Example:\n  xpr executor launch --workflow workflow.js --workers fragmenter=1,qc-compute=2 --cores qc-compute=8 --port 8000')
    .action(async (opts: LaunchCli, c: Command) => {
      const m = await import('./commands/executor/launch.js');
      const ex = await m.launchExecutor({ ...context(c), ...opts, log });
      emit(c, ex.info, m.renderLaunch, m.launchJson);
      await m.serveUntilStopped(ex, onStop);
    });

  sub('submit')
    .description('Submit inputs to a workflow: one submission per input; prints their ids')
    .requiredOption('-w, --workflow <name>', 'the workflow\'s name')
    .option('-i, --input <file>', 'a JSON file (one input) or a .jsonl file (one input per line); repeatable', collect, [] as string[])
    .addHelpText('after', '\nExample:\n  xpr executor submit --workflow bespoke --input mol1.json --input mol2.json')
    .action(async (opts: { directory?: string; workflow: string; input: string[] }, c: Command) => {
      const m = await import('./commands/executor/submit.js');
      emit(c, await m.submit({ ...target(c, opts), workflow: opts.workflow, inputs: opts.input }), m.renderSubmit);
    });

  sub('watch')
    .description('Follow a submission stage by stage as it runs; exit code 1 if it fails')
    .argument('<id>', 'submission id')
    .addHelpText('after', '\nExample:\n  xpr executor watch xs_abcdefghijkl')
    .action(async (id: string, opts: { directory?: string }, c: Command) => {
      const m = await import('./commands/executor/watch.js');
      const fmt = format(c);
      const stop = new AbortController();
      const release = io.onInterrupt?.(() => stop.abort());
      let last = '';
      try {
        const result = await m.watchSubmission({
          ...target(c, opts), id, signal: stop.signal,
          onUpdate: (s) => {
            if (globals(c).json) return;
            const line = m.renderWatchLine(s, fmt);
            if (line === last) return;
            last = line;
            io.stdout.write(fmt.tty ? `\r\x1b[K${line}` : `${line}\n`);
          },
        });
        // On a terminal the last line stays; the outcome follows it.
        if (fmt.tty && !globals(c).json) io.stdout.write('\n');
        emit(c, result, m.renderWatch, (r) => r.submission);
      } finally {
        release?.();
      }
    });

  sub('retrieve')
    .description('Write the result of a successful submission (or print it); otherwise show its status and why')
    .argument('<id>', 'submission id')
    .option('-o, --output <file>', 'write the result here as JSON')
    .addHelpText('after', '\nExit code 1 when there is no result yet or it failed; nothing is written then.\nExample:\n  xpr executor retrieve xs_abcdefghijkl --output out.json')
    .action(async (id: string, opts: { directory?: string; output?: string }, c: Command) => {
      const m = await import('./commands/executor/retrieve.js');
      emit(c, await m.retrieve({ ...target(c, opts), id, ...(opts.output !== undefined ? { output: opts.output } : {}) }), m.renderRetrieve);
    });

  sub('list')
    .description('List submissions, newest first, filtered and paginated by the executor')
    .option('-s, --status <status>', 'only these: waiting, running, errored, success or cancelled')
    .option('--offset <n>', 'skip this many', nonNegativeInt, 0)
    .option('--limit <n>', 'show at most this many (up to 1000)', positiveInt, 100)
    .addHelpText('after', '\nExample:\n  xpr executor list --status errored --json')
    .action(async (opts: { directory?: string; status?: string; offset: number; limit: number }, c: Command) => {
      const m = await import('./commands/executor/list.js');
      emit(c, await m.listSubmissions({
        ...target(c, opts), offset: opts.offset, limit: opts.limit, ...(opts.status !== undefined ? { status: opts.status } : {}),
      }), m.renderList);
    });

  sub('cancel')
    .description('Cancel a submission')
    .argument('<id>', 'submission id')
    .addHelpText('after', '\nExample:\n  xpr executor cancel xs_abcdefghijkl')
    .action(async (id: string, opts: { directory?: string }, c: Command) => {
      const m = await import('./commands/executor/cancel.js');
      emit(c, await m.cancelSubmission({ ...target(c, opts), id }), m.renderCancel);
    });

  sub('retry')
    .description('Run a failed or cancelled submission again from the stage where it stopped (finished stages come from the cache)')
    .argument('<id>', 'submission id')
    .addHelpText('after', '\nExample:\n  xpr executor retry xs_abcdefghijkl')
    .action(async (id: string, opts: { directory?: string }, c: Command) => {
      const m = await import('./commands/executor/retry.js');
      emit(c, await m.retrySubmission({ ...target(c, opts), id }), m.renderRetry);
    });

  executor.command('run')
    .description('Launch an executor in a temp dir, submit, follow, write the results and stop')
    .requiredOption('-w, --workflow <name>', 'the workflow\'s name (or its module file, when that exports only one)')
    .option('-m, --module <file>', 'the module that exports it (default: ./workflow.js or ./workflow.mjs)')
    .option('-i, --input <file>', 'a JSON file (one input) or a .jsonl file (one input per line); repeatable', collect, [] as string[])
    .option('-o, --output <file>', 'write the result here as JSON (an array for several inputs); only when all succeed')
    .option('--workers <list>', 'local worker processes per stage, e.g. qc-compute=2')
    .option('--cores <list>', 'cores per worker, e.g. qc-compute=8')
    .option('--max-mem <list>', 'memory per worker, e.g. qc-compute=2.5gb')
    .option('--keep-temp-files', 'keep the executor\'s temp dir (Redis data, logs)')
    .addHelpText('after', '\nExample:\n  xpr executor run --workflow bespoke --input mol.json --output out.json')
    .action(async (opts: RunCli, c: Command) => {
      const m = await import('./commands/executor/run.js');
      const w = await import('./commands/executor/watch.js');
      const fmt = format(c);
      const stop = new AbortController();
      const release = io.onInterrupt?.(() => stop.abort());
      const lastLine = new Map<string, string>();
      try {
        emit(c, await m.runWorkflow({
          ...context(c), workflow: opts.workflow, inputs: opts.input, log, signal: stop.signal,
          ...(opts.module !== undefined ? { module: opts.module } : {}), ...(opts.output !== undefined ? { output: opts.output } : {}),
          ...(opts.workers !== undefined ? { workers: opts.workers } : {}), ...(opts.cores !== undefined ? { cores: opts.cores } : {}),
          ...(opts.maxMem !== undefined ? { maxMem: opts.maxMem } : {}), ...(opts.keepTempFiles ? { keepTempFiles: true } : {}),
          onUpdate: (s) => {
            const line = w.renderWatchLine(s, fmt);
            if (lastLine.get(s.id) === line) return;
            lastLine.set(s.id, line);
            io.stderr.write(`${line}\n`);
          },
        }), m.renderRun);
      } finally {
        release?.();
      }
    });

  sub('workers')
    .description('Submit workers of one stage as batch jobs on a system (SLURM, PBS, SGE or local) that connect back')
    .requiredOption('-S, --system <name>', 'system from config.json')
    .requiredOption('--stage <stage>', 'the stage they serve')
    .option('-n, --count <n>', 'how many worker jobs', positiveInt, 1)
    .requiredOption('-r, --resources <json>', 'resources of each job, e.g. \'{"num_cores":8,"max_time":"12h"}\'')
    .option('--cores <n>', 'cores each worker offers (default: num_cores)')
    .option('--max-mem <size>', 'memory each worker offers, e.g. 16gb (default: the resources\' memory)')
    .option('--url <url>', 'the executor\'s address as the nodes reach it (default: the one launch printed)')
    .addHelpText('after', '\nThey stop taking tasks before max_time; a task still held then goes back to the queue.\n' +
      'Example:\n  xpr executor workers --system cluster --stage qc-compute --count 4 --resources \'{"num_cores":8,"max_time":"12h"}\'')
    .action(async (opts: WorkersCli, c: Command) => {
      const m = await import('./commands/executor/workers.js');
      emit(c, await m.submitWorkers({
        ...target(c, opts), system: opts.system, stage: opts.stage, count: opts.count, resources: opts.resources,
        ...(opts.cores !== undefined ? { cores: opts.cores } : {}), ...(opts.maxMem !== undefined ? { maxMem: opts.maxMem } : {}),
        ...(opts.url !== undefined ? { url: opts.url } : {}),
      }), m.renderWorkers);
    });

  const cache = executor.command('cache').description('The result cache: import, export, stats, clear');
  const cacheSub = (name: string): Command => cache.command(name).option('-d, --directory <dir>', 'the executor\'s directory (default: $XPR_EXECUTOR_URL, else ./xpr-executor)');
  cacheSub('import')
    .description('Add the records of a JSON Lines file (as export writes them); existing entries are kept')
    .argument('<file>', 'JSON Lines file')
    .addHelpText('after', '\nExample:\n  xpr executor cache import cache.jsonl')
    .action(async (file: string, opts: { directory?: string }, c: Command) => {
      const m = await import('./commands/executor/cache.js');
      emit(c, await m.cacheImport({ ...target(c, opts), file }), m.renderCache);
    });
  cacheSub('export')
    .description('Write every cache record to a JSON Lines file')
    .argument('<file>', 'JSON Lines file to write')
    .addHelpText('after', '\nExample:\n  xpr executor cache export cache.jsonl')
    .action(async (file: string, opts: { directory?: string }, c: Command) => {
      const m = await import('./commands/executor/cache.js');
      emit(c, await m.cacheExport({ ...target(c, opts), file }), m.renderCache);
    });
  cacheSub('stats')
    .description('Count the cache entries, per stage')
    .action(async (opts: { directory?: string }, c: Command) => {
      const m = await import('./commands/executor/cache.js');
      emit(c, await m.cacheStats(target(c, opts)), m.renderCache);
    });
  cacheSub('clear')
    .description('Remove every cache entry; with --failed, the failed tasks kept in the queues instead')
    .option('--failed', 'remove the failed tasks (they run again when next needed), not the results', false)
    .action(async (opts: { directory?: string; failed: boolean }, c: Command) => {
      const m = await import('./commands/executor/cache.js');
      emit(c, await m.cacheClear({ ...target(c, opts), failed: opts.failed }), m.renderCache);
    });

  program.command('worker')
    .description('Serve one stage of a running executor from this machine, over HTTP, until Ctrl-C or SIGTERM')
    .requiredOption('--stage <stage>', 'the stage to serve')
    .option('--cores <n>', 'cores this worker offers, or auto (the CPUs this process may use)', '1')
    .option('--max-mem <size>', 'memory this worker offers, e.g. 2.5gb')
    .option('--keep-temp-files', 'keep each task\'s scratch dir (ctx.tempDir) after it ends ($XPR_EXECUTOR_KEEP_TEMP_FILES)')
    .addHelpText('after', '\nIt reads XPR_EXECUTOR_URL and XPR_EXECUTOR_TOKEN, as xpr executor launch prints them, and needs no copy of the workflow.\n' +
      'Example:\n  XPR_EXECUTOR_URL=http://host:8000 XPR_EXECUTOR_TOKEN=… xpr worker --stage qc-compute --cores 8')
    .action(async (opts: { stage: string; cores: string; maxMem?: string; keepTempFiles?: boolean }, c: Command) => {
      const m = await import('./commands/worker.js');
      const stop = new AbortController();
      const release = onStop(() => stop.abort());
      try {
        emit(c, await m.runWorker({
          ...context(c), stage: opts.stage, cores: opts.cores, signal: stop.signal, log,
          ...(opts.keepTempFiles ? { keepTempFiles: true } : {}),
          ...(opts.maxMem !== undefined ? { maxMem: opts.maxMem } : {}),
        }), m.renderWorker);
      } finally {
        release();
      }
    });
}

interface LaunchCli {
  workflow: string; directory?: string; workers?: string; cores?: string; maxMem?: string; address?: string; port?: string;
  redis?: string; token?: string; keepTempFiles?: boolean; grace: number;
}

interface RunCli {
  workflow: string; module?: string; input: string[]; output?: string; workers?: string; cores?: string; maxMem?: string; keepTempFiles?: boolean;
}

interface WorkersCli {
  directory?: string; system: string; stage: string; count: number; resources: string; cores?: string; maxMem?: string; url?: string;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number, 0 or more');
  return n;
}
