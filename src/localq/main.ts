// `localq`: the command line of the local queue, shaped like a batch system's (submit prints a job
// id, status prints one line per task), so the `local` scheduler module is pure text like the
// others and the queue outlives whoever submitted to it.
//
//   node main.js submit [--hold] SCRIPT      directives come from `#LOCALQ` lines in SCRIPT
//                                            (`#LOCALQ --hold` submits held, as `#SBATCH --hold`)
//   node main.js status [ID...]              "<task> <STATE> <exit code or -> <name>" per task
//   node main.js cancel|hold|release ID...
//   node main.js find-name NAME              job ids with that name, one per line
//   node main.js dispatch                    run the dispatcher (started by submit, detached)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Dispatcher } from './dispatcher.js';
import {
  cancel, defaultQueueDir, findByName, hold, release, resolveTasks, submit, taskStatus, type SubmitRequest,
} from './queue.js';

class UsageError extends Error {}

/** Read `#LOCALQ --key=value` directives from a job script, as sbatch reads `#SBATCH` lines. */
export function parseDirectives(script: string): Omit<SubmitRequest, 'script' | 'cwd' | 'env'> {
  const req = {
    name: 'job', cores: 1, timeLimit: 0, stdout: 'localq-%j.out', stderr: 'localq-%j.out', arraySize: 0, shell: '/bin/bash',
    hold: false,
  };
  for (const line of script.split('\n')) {
    // `--hold` is a flag; every other directive takes a value.
    if (/^#LOCALQ\s+--hold\s*$/.test(line.trim())) { req.hold = true; continue; }
    const m = /^#LOCALQ\s+--([a-z-]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    const int = () => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`#LOCALQ --${key}: expected a whole number, got "${value}"`);
      return n;
    };
    switch (key) {
      case 'job-name': req.name = value; break;
      case 'cores': req.cores = Math.max(1, int()); break;
      case 'time': req.timeLimit = int(); break;
      case 'output': req.stdout = value; break;
      case 'error': req.stderr = value; break;
      case 'array': req.arraySize = int(); break;
      case 'shell': req.shell = value; break;
      default: throw new UsageError(`unknown directive #LOCALQ --${key} (known: job-name, cores, time, output, error, array, shell, hold)`);
    }
  }
  return req;
}

function startDispatcher(qdir: string): void {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'dispatch'], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, XPR_LOCALQ_DIR: qdir },
  });
  child.unref();
}

async function main(argv: string[]): Promise<number> {
  const qdir = defaultQueueDir();
  const [cmd, ...args] = argv;
  const ids = () => {
    if (args.length === 0) throw new UsageError(`${cmd} needs at least one job id`);
    return args;
  };
  switch (cmd) {
    case 'submit': {
      const holdIt = args[0] === '--hold';
      const file = holdIt ? args[1] : args[0];
      if (!file) throw new UsageError('submit needs a script file');
      const text = fs.readFileSync(file, 'utf8');
      const directives = parseDirectives(text);
      const id = submit(qdir, {
        ...directives, script: fs.realpathSync(file), cwd: process.cwd(), hold: holdIt || directives.hold, env: process.env,
      });
      startDispatcher(qdir);
      process.stdout.write(`${id}\n`);
      return 0;
    }
    case 'status': {
      const tasks = resolveTasks(qdir, args.length ? args : undefined);
      const lines = tasks.map((t) => taskStatus(qdir, t)).filter((s) => s !== undefined)
        .map((s) => `${s.task} ${s.state} ${s.exitCode ?? '-'} ${s.name}`);
      process.stdout.write(lines.length ? `${lines.join('\n')}\n` : '');
      return 0;
    }
    case 'cancel': cancel(qdir, ids()); startDispatcher(qdir); return 0;
    case 'hold': hold(qdir, ids()); return 0;
    case 'release': release(qdir, ids()); startDispatcher(qdir); return 0;
    case 'find-name': {
      if (!args[0]) throw new UsageError('find-name needs a job name');
      const found = findByName(qdir, args[0]);
      process.stdout.write(found.length ? `${found.join('\n')}\n` : '');
      return 0;
    }
    case 'dispatch': await new Dispatcher(qdir).run(); return 0;
    default: throw new UsageError(`unknown command "${cmd ?? ''}" (known: submit, status, cancel, hold, release, find-name, dispatch)`);
  }
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url))) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`localq: ${(err as Error).message}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  });
}
