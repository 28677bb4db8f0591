// The `xpr` command: declares the subcommands and their options with commander, loads one module per
// command when it runs, calls its function and prints what it returns (text, or JSON with --json).
// Every error ends in exit.ts, which maps it to an exit code; nothing here exits the process.
import path from 'node:path';
import readline from 'node:readline';
import { Argument, Command, Option } from 'commander';
import { JOB_STATUSES } from '../store/status.js';
import { XPR_VERSION } from '../util/paths.js';
import type { CommandContext, Confirm, SelectOptions } from './common.js';
import { errorText, exitCodeOf, exitCodeOfProblems, type Problem } from './exit.js';
import { addExecutorCommands } from './executor-commands.js';
import { useColor, type FormatOptions } from './format.js';
import { collect, positiveInt, positiveNumber } from './option-parsers.js';

/** Where the command reads and writes; the real process by default, streams in tests. */
export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; rows?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Questions are asked only when it is a terminal (`isTTY`); otherwise a command that must ask refuses. */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Ctrl-C for `watch`; default: the process's SIGINT. */
  onInterrupt?: (stop: () => void) => () => void;
  /** Ctrl-C or SIGTERM for the commands that serve until stopped (executor launch, worker); default: onInterrupt. */
  onStop?: (stop: () => void) => () => void;
}

function processIo(): Io {
  return {
    stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd(),
    onInterrupt: (stop) => {
      process.once('SIGINT', stop);
      return () => process.off('SIGINT', stop);
    },
    onStop: (stop) => {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      };
    },
  };
}

export interface GlobalOptions {
  dbfile?: string;
  json?: boolean;
  color?: boolean;
}

const EXIT_CODES_HELP = `
Exit codes:
  0   ok
  1   error: bad input or config, a job that cannot be acted on, a failed check (message printed)
  2   usage: unknown command or option, missing argument, a destructive command without a filter
  3   a system could not be reached
  70  internal error (a bug in xpr; XPR_DEBUG=1 shows the stack)

Filters (-i, -n, -S) are comma-separated regular expressions matched against the whole value:
-n 'a\\+b' selects the job named a+b, -n 'fit_.*' every name starting with fit_.`;

/** Run `xpr` with these arguments (without `node` and the script); resolves to the exit code. */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  let exitCode = 0;
  const program = new Command('xpr');
  program
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ showGlobalOptions: true })
    .description('Manage the batch jobs of a project (its _expyre/jobs.db), as ExPyRe\'s xpr, and see what is going on.')
    .version(XPR_VERSION, '-V, --version', 'print the version of xpr')
    .option('--dbfile <file>', 'job database to use instead of the project\'s _expyre/jobs.db')
    .option('--json', 'print results as JSON instead of text', false)
    .option('--no-color', 'never colour the output (also when NO_COLOR is set or output is not a terminal)')
    .addHelpText('after', EXIT_CODES_HELP);

  const globals = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();
  const context = (cmd: Command): CommandContext => {
    const g = globals(cmd);
    return { cwd: io.cwd, env: io.env, ...(g.dbfile ? { dbFile: path.resolve(io.cwd, g.dbfile) } : {}) };
  };
  const format = (cmd: Command): FormatOptions => ({
    color: useColor(io.stdout, io.env, globals(cmd).color !== false),
    tty: io.stdout.isTTY === true,
  });
  /** Print a command's result as text or JSON; its problems set the exit code. */
  const emit = <R>(cmd: Command, result: R, render: (r: R, f: FormatOptions) => string, toJson?: (r: R) => unknown): void => {
    const text = globals(cmd).json ? JSON.stringify(toJson ? toJson(result) : result, null, 2) : render(result, format(cmd));
    io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    const problems = (result as { problems?: Problem[] }).problems;
    if (problems) exitCode = exitCodeOfProblems(problems);
  };
  // Without a terminal nobody can answer (a script, cron, a pipe): a destructive command then
  // refuses with exit code 2 unless given -y, rather than taking no answer as no and exiting 0.
  const confirm: Confirm | undefined = io.stdin.isTTY === true ? (question) => ask(io, question) : undefined;
  /** Progress lines, on a terminal only: each replaces the last, and `done` clears it. */
  const progress = io.stderr.isTTY
    ? { show: (msg: string) => { io.stderr.write(`\r\x1b[K${msg}`); }, done: () => { io.stderr.write('\r\x1b[K'); } }
    : undefined;

  const cmd = (name: string, alias?: string): Command => {
    const c = program.command(name);
    if (alias) c.alias(alias);
    return c;
  };

  addFilters(cmd('ls'))
    .description('List the jobs that match the filters (default: all), oldest first')
    .option('-l, --long', 'long form: name, whole id, creation time and stage dir', false)
    .addHelpText('after', '\nExample:\n  xpr ls -s ongoing -n \'fit_.*\'')
    .action(async (opts: SelectOptions & { long: boolean }, c: Command) => {
      const m = await import('./commands/ls.js');
      const lsOpts = { ...context(c), ...filters(opts), long: opts.long };
      // Plain text comes straight from the database (fast over 100,000 jobs); colour and JSON from the data.
      const text = globals(c).json ? undefined : await m.lsText(lsOpts, format(c));
      if (text !== undefined) io.stdout.write(`${text}\n`);
      // JSON always carries every field.
      else emit(c, await m.ls({ ...lsOpts, long: opts.long || globals(c).json === true }), m.renderLs, m.lsJson);
    });

  addFilters(cmd('rm'))
    .description('Delete the selected jobs from the database (at least one filter needed); -c also cancels them and wipes their dirs')
    .option('-y, --yes', 'do not ask for confirmation', false)
    .option('-c, --clean', 'cancel running jobs and delete their local and remote job dirs', false)
    .addHelpText('after', '\nWithout -c, jobs still submitted or started are refused, and the dirs of deleted jobs are listed.\n' +
      'Example:\n  xpr rm -c -y -s failed,died')
    .action(async (opts: SelectOptions & { yes: boolean; clean: boolean }, c: Command) => {
      const m = await import('./commands/rm.js');
      emit(c, await m.rm({ ...context(c), ...filters(opts), yes: opts.yes, clean: opts.clean, confirm }), m.renderRm);
    });

  addFilters(cmd('sync'), 'ongoing')
    .description('Update the status of the selected jobs from their systems and fetch the results of those that ended')
    .addHelpText('after', '\nExample:\n  xpr sync -S cluster')
    .action(async (opts: SelectOptions, c: Command) => {
      const m = await import('./commands/sync.js');
      let result;
      try {
        result = await m.sync({ ...context(c), ...filters(opts), ...(progress ? { onProgress: progress.show } : {}) });
      } finally {
        progress?.done();
      }
      emit(c, result, m.renderSync);
    });

  addFilters(cmd('reset_status', 'reset-status'))
    .description('Set the local status of the selected jobs (at least one filter needed), e.g. to started so that sync looks at them again')
    .addArgument(new Argument('<new_status>', 'the status to set').choices(JOB_STATUSES))
    .addHelpText('after', '\nExample:\n  xpr reset_status -n \'fit_3\' started')
    .action(async (newStatus: string, opts: SelectOptions, c: Command) => {
      const m = await import('./commands/reset-status.js');
      emit(c, await m.resetStatus({ ...context(c), ...filters(opts), newStatus }), m.renderResetStatus);
    });

  cmd('create_job', 'create-job')
    .description('Stage a call of an exported function as a job (and submit it with --resources), or record an existing stage dir')
    .option('-m, --module <file>', 'module file that exports the function')
    .option('-e, --export <name>', 'name of the exported function', 'default')
    .option('-a, --args <json>', 'JSON array of arguments')
    .option('-k, --kwargs <json>', 'JSON object passed as the last argument')
    .option('-n, --name <name>', 'job name (default: the export name)')
    .option('--input <file>', 'file copied into the job dir (repeatable)', collect, [] as string[])
    .option('--output <glob>', 'file the job writes, brought back with the results (repeatable)', collect, [] as string[])
    .option('-S, --system <name>', 'system to submit to (with --resources; default local) or to record (with --from-dir)')
    .option('-r, --resources <json>', 'submit with these resources, e.g. \'{"num_cores":1,"max_time":"1h"}\'')
    .option('-d, --from-dir <dir>', 'record this existing stage dir run_<id> instead (as ExPyRe\'s create_job)')
    .addOption(new Option('--from_dir <dir>').hideHelp())
    .option('-i, --id <id>', 'id for --from-dir (default: the dir name without run_)')
    .addHelpText('after', '\nExamples:\n  xpr create_job -m ops.js -e double -a \'[21]\' -r \'{"num_cores":1,"max_time":"10m"}\'\n' +
      '  xpr create_job --from-dir _expyre/run_double_<hash>_<rand> -S local')
    .action(async (opts: CreateJobCli, c: Command) => {
      const m = await import('./commands/create-job.js');
      const fromDir = opts.fromDir ?? opts.from_dir;
      emit(c, await m.createJob({
        ...context(c), exportName: opts.export, inputFiles: opts.input, outputFiles: opts.output,
        ...pick(opts, ['module', 'args', 'kwargs', 'name', 'system', 'resources', 'id']),
        ...(fromDir !== undefined ? { fromDir } : {}),
      }), m.renderCreateJob);
    });

  addFilters(cmd('fail_job', 'fail-job'))
    .description('Mark the selected jobs failed (at least one filter needed); waiting scripts then get an error')
    .option('-y, --yes', 'do not ask for confirmation', false)
    .addHelpText('after', '\nThe scheduler is not told: xpr cancel first stops a job that still runs.\nExample:\n  xpr fail_job -y -i \'fit_3_.*\'')
    .action(async (opts: SelectOptions & { yes: boolean }, c: Command) => {
      const m = await import('./commands/fail-job.js');
      emit(c, await m.failJob({ ...context(c), ...filters(opts), yes: opts.yes, confirm }), m.renderFailJob);
    });

  cmd('db_unlock', 'db-unlock')
    .description('Free a job database left stuck by a crashed process')
    .addHelpText('after', '\nExample:\n  xpr db_unlock')
    .action(async (_opts: unknown, c: Command) => {
      const m = await import('./commands/db-unlock.js');
      emit(c, await m.dbUnlock(context(c)), m.renderDbUnlock);
    });

  cmd('db_rebuild', 'db-rebuild')
    .description('Rebuild a lost or damaged job database from the job dirs (run_<id>), keeping the damaged file beside it')
    .option('-S, --system <name>', 'the system every submitted job went to (default: told from each job\'s script and queue)')
    .option('--force', 'rebuild even though the database can be read (its records are replaced)', false)
    .addHelpText('after', '\nRefused while another process has the database open.\nExample:\n  xpr db_rebuild')
    .action(async (opts: { system?: string; force: boolean }, c: Command) => {
      const m = await import('./commands/db-rebuild.js');
      emit(c, await m.dbRebuild({ ...context(c), force: opts.force, ...(opts.system !== undefined ? { system: opts.system } : {}) }),
        m.renderDbRebuild);
    });

  addFilters(cmd('cancel'))
    .description('Cancel the selected jobs on their systems (at least one filter needed); jobs never submitted are marked failed')
    .option('-y, --yes', 'do not ask for confirmation', false)
    .addHelpText('after', '\nExample:\n  xpr cancel -y -n \'fit_.*\' -s ongoing')
    .action(async (opts: SelectOptions & { yes: boolean }, c: Command) => {
      const m = await import('./commands/cancel.js');
      emit(c, await m.cancel({ ...context(c), ...filters(opts), yes: opts.yes, confirm }), m.renderCancel);
    });

  cmd('logs')
    .description('Show a job\'s output: the job script\'s stdout/stderr, the function\'s stdout/stderr and the job script')
    .argument('<id>', 'job id, or its start as xpr ls shows it')
    .option('-f, --file <names>', 'only these, comma-separated: job.stdout, job.stderr, fn.stdout, fn.stderr, script')
    .option('-t, --tail <lines>', 'only the last lines of each', positiveInt)
    .addHelpText('after', '\nExample:\n  xpr logs fit_3_AbCdEfGhI... -f fn.stderr -t 20')
    .action(async (id: string, opts: { file?: string; tail?: number }, c: Command) => {
      const m = await import('./commands/logs.js');
      emit(c, await m.logs({
        ...context(c), id, ...(opts.file ? { files: [opts.file] } : {}), ...(opts.tail !== undefined ? { tail: opts.tail } : {}),
      }), m.renderLogs);
    });

  addFilters(cmd('watch'))
    .description('Watch the selected jobs: counts by status and each ongoing job, refreshed every few seconds')
    .option('--interval <seconds>', 'seconds between refreshes (at least 1)', positiveNumber, 5)
    .option('--once', 'refresh once and stop', false)
    .option('--until-done', 'stop when no selected job is submitted or started', false)
    .addHelpText('after', '\nOn a terminal the view is redrawn in place; otherwise one line per refresh.\nExample:\n  xpr watch -n \'fit_.*\' --interval 10')
    .action(async (opts: SelectOptions & { interval: number; once: boolean; untilDone: boolean }, c: Command) => {
      const m = await import('./commands/watch.js');
      const fmt = format(c);
      const json = globals(c).json;
      const stop = new AbortController();
      const release = io.onInterrupt?.(() => stop.abort());
      try {
        const last = await m.watch({
          ...context(c), ...filters(opts), interval: opts.interval, once: opts.once, untilDone: opts.untilDone, signal: stop.signal,
          onSnapshot: (s) => {
            if (json) io.stdout.write(`${JSON.stringify(s)}\n`);
            else if (fmt.tty) io.stdout.write(`\x1b[H\x1b[2J${m.renderWatchScreen(s, fmt, io.stdout.rows ?? 40)}\n`);
            else io.stdout.write(`${m.renderWatchLine(s, fmt)}\n`);
          },
        });
        exitCode = exitCodeOfProblems(last.problems);
      } finally {
        release?.();
      }
    });

  cmd('systems')
    .description('List the configured systems and the file each is defined in')
    .addHelpText('after', '\nExample:\n  xpr systems')
    .action(async (_opts: unknown, c: Command) => {
      const m = await import('./commands/systems.js');
      emit(c, await m.systems(context(c)), m.renderSystems);
    });

  cmd('doctor')
    .description('Check that a system can run jobs: connection, scheduler commands, remote node, writable rundir')
    .argument('<system>', 'system name from config.json (or local)')
    .addHelpText('after', '\nExample:\n  xpr doctor local')
    .action(async (system: string, _opts: unknown, c: Command) => {
      const m = await import('./commands/doctor.js');
      emit(c, await m.doctor({ ...context(c), system }), m.renderDoctor);
    });

  cmd('selftest')
    .description('Run xpr\'s scheduler contract (jobs, arrays, errors, cancel, re-attach, files, autoparallelize) on configured systems')
    .argument('[systems_regexp]', 'comma-separated regexps matching whole system names (default: $XPR_SELFTEST_SYSTEMS, $EXPYRE_PYTEST_SYSTEMS, or all)')
    .option('--remote-info <json>', 'extra RemoteInfo fields for the jobs, e.g. a partition or an account header (default: $XPR_SELFTEST_REMOTE_INFO or $WFL_PYTEST_EXPYRE_INFO)')
    .option('--slow', 'also run the cases that take minutes (a job over its time limit → TIMEOUT)', false)
    .option('--keep', 'keep the selftest\'s project, jobs and remote dirs', false)
    .addHelpText('after', '\nExit code 1 if a case failed, 3 if a system could not be reached.\nExample:\n  xpr selftest \'cluster.*\' --remote-info \'{"header_extra": ["#SBATCH --account=me"]}\'')
    .action(async (systems: string | undefined, opts: { remoteInfo?: string; slow: boolean; keep: boolean }, c: Command) => {
      const m = await import('./commands/selftest.js');
      emit(c, await m.selftest({
        ...context(c), slow: opts.slow, keep: opts.keep,
        ...(systems !== undefined ? { systems } : {}), ...(opts.remoteInfo !== undefined ? { remoteInfo: opts.remoteInfo } : {}),
      }), m.renderSelftest);
    });

  cmd('config')
    .description('Show the merged configuration, each value with the file it came from')
    .argument('[prefix]', 'only keys under this dotted prefix, e.g. systems.cluster')
    .addHelpText('after', '\nExample:\n  xpr config systems.local')
    .action(async (prefix: string | undefined, _opts: unknown, c: Command) => {
      const m = await import('./commands/config.js');
      emit(c, await m.config({ ...context(c), ...(prefix ? { prefix } : {}) }), m.renderConfig);
    });

  addExecutorCommands(program, io, { context, emit, format, globals, setExitCode: (code) => { exitCode = code; } });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    io.stderr.write(errorText(err, io.env));
    return exitCodeOf(err);
  }
}

interface CreateJobCli {
  module?: string; export: string; args?: string; kwargs?: string; name?: string; input: string[]; output: string[];
  system?: string; resources?: string; fromDir?: string; from_dir?: string; id?: string;
}

function addFilters(c: Command, statusDefault?: string): Command {
  c.option('-i, --id <regexps>', 'job ids to include: comma-separated regexps matching the whole id')
    .option('-n, --name <regexps>', 'job names to include: comma-separated regexps matching the whole name');
  const status = new Option('-s, --status <list>',
    `statuses to include, comma-separated: ${JOB_STATUSES.join(', ')}, or groups ongoing, can_produce_results; '*' for all`);
  if (statusDefault !== undefined) status.default(statusDefault);
  return c.addOption(status)
    .option('-S, --system <regexps>', 'systems to include: comma-separated regexps matching the whole system name');
}

function filters(opts: SelectOptions): SelectOptions {
  return pick(opts, ['id', 'name', 'status', 'system']);
}

function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** Ask a yes/no question on stderr and read one line of stdin; anything but y/yes (or end of input) is no. */
async function ask(io: Io, question: string): Promise<boolean> {
  io.stderr.write(`${question}\nProceed? [y/N] `);
  const rl = readline.createInterface({ input: io.stdin, terminal: false });
  try {
    const line = await new Promise<string>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(''));
    });
    return /^\s*y(es)?\s*$/i.test(line);
  } finally {
    rl.close();
  }
}
