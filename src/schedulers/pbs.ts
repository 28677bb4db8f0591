// PBS: PBS Professional / OpenPBS (`pbs`) and Torque (`torque`). Pure string functions (see types.ts).
//
// Ids are what qsub prints: `1234.server`; an array is `1234[].server` and its element i is
// `1234[i].server` (we submit indices 0..N-1), the form `qstat -t` prints for subjobs. Ids are
// compared on `1234[i]`, without the server suffix, which qstat may print longer or shorter.
//
// The two PBS families differ where it matters:
// - arrays: PBS Pro `-J 0-9` (at least 2 subjobs), PBS_ARRAY_INDEX, `^array_index^` in -o/-e;
//   Torque `-t 0-9`, PBS_ARRAYID, `-<index>` appended to the -o/-e file by the server.
// - `qstat -x`: history (finished jobs) on PBS Pro, XML output on Torque. Commands that want history
//   probe `qstat --version` (PBS Pro prints `pbs_version = ...`, Torque `Version: ...`).
// - exit status: PBS Pro -29 walltime, -27/-26 mem/vmem (`Exit_status`); Torque -11 walltime, -10 mem
//   (`exit_status`, lowercase); both report 256+signal (e.g. 271) or 128+signal for a killed job.
// Formats: PBS Professional Reference Guide (qstat -f, job attributes, Table "Job Exit Codes");
// Torque Admin Guide (qstat, "Job exit status", job arrays).
//
// `torque` also drives SLURM's Torque wrappers (SchedMD's perl qsub/qstat/qdel, Debian's
// slurm-wlm-torque), which sites install when they move from Torque to SLURM. They know much less
// (recorded in test/fixtures/torque/README.md): qsub prints the bare SLURM id; qstat has no -t, -x
// or --version and prints each array task under its own SLURM id with no index, states Q R C only
// (held is Q), no exit status, and forgets a job MinJobAge after it ends; there is no qselect; qdel
// reads `1234[5]` as 1234, the whole array; jobs get SLURM's variables and no PBS_* ones. So the
// Torque commands ask `qstat --version`, which only the wrapper answers with Getopt's
// "Unknown option: version", and take the wrapper's way there. What the wrapper cannot tell (how a
// job ended, which task of an array is which) the job's own files tell.
import { XprError } from '../errors.js';
import { formatMemory, formatTime, parseTime } from '../resources/units.js';
import { shQuote } from '../util/shell.js';
import type { FailureReason, RemoteState, Scheduler, ScriptContext } from './types.js';
import { directiveWord, lastLineMatch, letterFirstName, noJobIdError, requireIds, unique } from './common.js';

type Flavor = 'pro' | 'torque';

/** One job of `qstat -f` output: its id and attributes (continuation lines joined). */
interface QstatJob {
  id: string;
  attrs: Map<string, string>;
}

/**
 * Parse `qstat -f` text: `Job Id: <id>` then indented `name = value` lines. PBS Pro and Torque indent
 * attributes with 4 spaces and wrap long values onto lines that start with a tab; SLURM's wrapper
 * indents attributes with a tab and never wraps. So the first attribute line of a job sets the
 * indent of its attributes, and other tab-led lines continue the previous value.
 */
export function parseQstatFull(text: string): QstatJob[] {
  const jobs: QstatJob[] = [];
  let job: QstatJob | undefined;
  let key: string | undefined;
  let indent: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    const head = /^Job Id:\s*(\S+)/.exec(line);
    if (head?.[1]) {
      job = { id: head[1], attrs: new Map() };
      jobs.push(job);
      key = undefined;
      indent = undefined;
      continue;
    }
    if (!job) continue;
    const attr = /^(\s+)([A-Za-z_][\w.]*)\s+=\s?(.*)$/.exec(line);
    if (attr?.[2] && (indent === undefined || attr[1] === indent)) {
      indent = attr[1];
      key = attr[2];
      job.attrs.set(key, (attr[3] ?? '').trim());
      continue;
    }
    if (line.startsWith('\t') && key !== undefined) {
      job.attrs.set(key, (job.attrs.get(key) ?? '') + line.slice(1).trim());
    }
  }
  return jobs;
}

/** `1234[5].server` → `1234[5]`; `1234.server` → `1234`. */
function pbsKey(id: string): string {
  return /^\d+(?:\[\d*\])?/.exec(id.trim())?.[0] ?? id.trim();
}

/** `1234[5].server` → `1234[].server`: status queries and name look-ups act on a whole array. */
function arrayParent(id: string): string {
  return id.replace(/^(\d+)\[\d+\]/, '$1[]');
}

function attr(job: QstatJob, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of job.attrs) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function seconds(hms: string | undefined): number | undefined {
  if (!hms) return undefined;
  try {
    return parseTime(hms);
  } catch {
    return undefined;
  }
}

/** PBS Pro substate of a job deleted with qdel, queued or running (JOB_SUBSTATE_TERMINATED). */
const SUBSTATE_TERMINATED = '91';

/** Final state of a job that has left execution (PBS Pro F/X, Torque C). */
function finishedState(job: QstatJob, state: string): RemoteState {
  const raw = state;
  const exitText = attr(job, 'exit_status');
  // PBS Pro keeps a deleted job in its history with substate 91, finished ones with 92 (exit 0) or
  // 93; Torque (state C) has no such substate.
  if (state !== 'C' && attr(job, 'substate')?.trim() === SUBSTATE_TERMINATED) {
    const exit = exitText !== undefined && /^-?\d+$/.test(exitText.trim()) ? Number(exitText) : undefined;
    return { status: 'failed', reason: 'CANCELLED', raw: `${raw} (deleted)`, ...(exit === undefined ? {} : { exitCode: exit }) };
  }
  if (exitText === undefined || !/^-?\d+$/.test(exitText.trim())) {
    // Deleted before it ran, or a subjob without history: no verdict here; the job's files decide.
    return { status: 'done', raw };
  }
  const exit = Number(exitText);
  const rawExit = `${raw} (exit ${exit})`;
  if (exit === 0) return { status: 'done', exitCode: 0, raw: rawExit };
  // Torque writes `exit_status`, PBS Pro `Exit_status`; their negative codes mean different things.
  const flavor: Flavor = job.attrs.has('exit_status') || state === 'C' ? 'torque' : 'pro';
  const comment = attr(job, 'comment') ?? '';
  const used = seconds(attr(job, 'resources_used.walltime'));
  const limit = seconds(attr(job, 'Resource_List.walltime'));
  const killed = exit > 128;
  const failed = (reason?: FailureReason, status: RemoteState['status'] = 'failed'): RemoteState => (
    { status, exitCode: exit, raw: rawExit, ...(reason ? { reason } : {}) });
  if ((flavor === 'pro' && exit === -29) || (flavor === 'torque' && exit === -11) ||
      /walltime \S+ exceeded limit/i.test(comment) ||
      (killed && used !== undefined && limit !== undefined && used >= limit)) {
    return failed('TIMEOUT', 'timeout');
  }
  if ((flavor === 'pro' && (exit === -27 || exit === -26)) || (flavor === 'torque' && exit === -10) ||
      /\bp?v?mem \S+ exceeded limit/i.test(comment)) {
    return failed('OUT_OF_MEMORY');
  }
  return failed();
}

/** PBS job_state letters (PBS Pro Reference Guide "job_state"; Torque qstat(1)) to remote states. */
export function pbsState(job: QstatJob): RemoteState {
  const state = (attr(job, 'job_state') ?? '').trim();
  switch (state) {
    case 'Q': case 'W': case 'T':
      return { status: 'queued', raw: state };
    case 'H':
      return { status: 'held', raw: state };
    // E is exiting (cleanup after the run, outcome not final yet); B an array with subjobs begun;
    // S/U suspended, still holding their nodes.
    case 'R': case 'E': case 'B': case 'S': case 'U':
      return { status: 'running', raw: state };
    case 'F': case 'X': case 'C':
      return finishedState(job, state);
    default:
      // M: moved to another server, which we do not follow.
      return { status: 'other', raw: state };
  }
}

/**
 * The state of an array as a whole, from SLURM's qstat wrapper, which lists every task under its own
 * SLURM id with no array index: the record under the array's id (`1234`, kept by SLURM until every
 * task is gone) gives the name, and the records of that name and owner are the tasks. Running while
 * one runs, then queued while one waits, held, and done (the files decide) when all have ended.
 * Undefined when there is no record under the array's id (real Torque lists `1234[]` there).
 */
function arrayTasksState(jobs: readonly QstatJob[], arrayKey: string): RemoteState | undefined {
  const head = jobs.find((j) => pbsKey(j.id) === arrayKey);
  if (!head) return undefined;
  const name = attr(head, 'Job_Name');
  const owner = attr(head, 'Job_Owner');
  const counts = new Map<string, number>();
  const statuses = new Set<string>();
  for (const job of jobs) {
    if (attr(job, 'Job_Name') !== name || attr(job, 'Job_Owner') !== owner) continue;
    const st = pbsState(job);
    statuses.add(st.status);
    const letter = st.raw?.split(' ')[0] ?? '?';
    counts.set(letter, (counts.get(letter) ?? 0) + 1);
  }
  const raw = `array tasks: ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}`;
  for (const status of ['running', 'queued', 'held', 'other'] as const) {
    if (statuses.has(status)) return { status, raw };
  }
  return { status: 'done', raw };
}

function statesOf(stdout: string, ids: string[]): Map<string, RemoteState> {
  const byKey = new Map<string, string[]>();
  for (const id of ids) byKey.set(pbsKey(id), [...(byKey.get(pbsKey(id)) ?? []), id]);
  const jobs = parseQstatFull(stdout);
  const out = new Map<string, RemoteState>();
  for (const job of jobs) {
    for (const id of byKey.get(pbsKey(job.id)) ?? []) out.set(id, pbsState(job));
  }
  const arrays = new Map<string, RemoteState | undefined>();
  for (const id of ids) {
    const element = /^(\d+)\[\d+\]/.exec(id.trim());
    if (out.has(id) || !element?.[1]) continue;
    if (!arrays.has(element[1])) arrays.set(element[1], arrayTasksState(jobs, element[1]));
    const st = arrays.get(element[1]);
    if (st) out.set(id, st);
  }
  return out;
}

const idList = (ids: string[]): string => ids.map(shQuote).join(' ');

// `-x` only where it means history (PBS Pro); empty on Torque, where it would mean XML.
const HISTORY_FLAG = 'x=; case "$(qstat --version 2>&1)" in *pbs_version*) x=-x;; esac; ';

/**
 * `qstat -f -t` of the given ids that does not fail for ids the server no longer knows: qstat prints
 * the known ones, complains about each unknown one on stderr and exits non-zero. Those complaints
 * are dropped; any other stderr line (server down, permission) is passed on and fails the command.
 */
function qstatCommand(ids: string[], flavor: Flavor): string {
  const parents = unique(ids.map(arrayParent));
  // Torque hides completed jobs from every qstat when this is set; we want them.
  const prefix = flavor === 'pro' ? `unset PBS_QSTAT_NO_COMPLETE; ${HISTORY_FLAG}` : 'unset PBS_QSTAT_NO_COMPLETE; x=; ';
  return `${prefix}{ qstat -f -t $x ${idList(parents)} 2>&1 1>&3 3>&- | ` +
    `{ ! grep -v -e 'Unknown Job Id' -e 'Job has finished' >&2; }; } 3>&1`;
}

/** `case` over what `qstat --version` prints: `wrapper` for SLURM's Torque wrappers, else `torque`. */
function byQstat(wrapper: string, torque: string): string {
  return `case "$(qstat --version 2>&1)" in *'Unknown option: version'*) ${wrapper} ;; *) ${torque} ;; esac`;
}

// Every job in full: the wrapper takes no -t, and filters ids as regexps (`1234[]` matches nothing,
// `12[3]` matches 123), so arrays are found by name among all jobs. It exits 153, silently, when
// it lists no job at all.
const WRAPPER_QSTAT_ALL = '{ qstat -f || [ $? -eq 153 ]; }';

/** `1234[5]` → `1234`: the wrapper's qdel kills the whole array for either, so each array once. */
function wrapperQdel(ids: string[]): string {
  return `qdel ${idList(unique(ids.map((id) => /^\d+/.exec(id.trim())?.[0] ?? id)))}`;
}

function makePbs(flavor: Flavor): Scheduler {
  const tag = flavor === 'pro' ? 'pbs' : 'torque';
  return {
    name: tag,
    directivePrefix: '#PBS',
    // pbs: both, so that a Torque site configured as "pbs" still finds its index. torque: SLURM's
    // wrappers start array tasks with SLURM_ARRAY_TASK_ID only.
    arrayIndexExpr: flavor === 'pro' ? '${PBS_ARRAY_INDEX:-$PBS_ARRAYID}' : '${PBS_ARRAYID:-$SLURM_ARRAY_TASK_ID}',
    // Both start a job in the user's home dir; the job dirs are relative to where qsub ran. SLURM's
    // wrappers set no PBS_O_WORKDIR (SLURM starts the job in the submit dir already).
    submitDirExpr: flavor === 'pro' ? '$PBS_O_WORKDIR' : '${PBS_O_WORKDIR:-$SLURM_SUBMIT_DIR}',

    directives(ctx: ScriptContext): string[] {
      const name = letterFirstName(ctx.schedName);
      const out = directiveWord(ctx.stdoutFile, 'stdout file');
      const err = directiveWord(ctx.stderrFile, 'stderr file');
      // -S: xpr's script body is bash; without -S, Torque (and PBS Pro when the site says so) runs
      // the script with the user's login shell whatever its #! line says.
      const shell = '#PBS -S /bin/bash';
      if (ctx.arraySize === 0) return [`#PBS -N ${name}`, `#PBS -o ${out}`, `#PBS -e ${err}`, shell];
      if (flavor === 'torque') {
        // Torque appends `-<index>` to each subjob's -o/-e file itself.
        return [`#PBS -N ${name}`, `#PBS -o ${out}`, `#PBS -e ${err}`, shell, `#PBS -t 0-${ctx.arraySize - 1}`];
      }
      if (ctx.arraySize < 2) {
        throw new XprError('PBS Professional cannot run a job array of 1 subjob', {
          hint: 'Submit a single chunk as a plain job (arraySize 0).',
        });
      }
      return [
        `#PBS -N ${name}`,
        `#PBS -o ${out}.^array_index^`,
        `#PBS -e ${err}.^array_index^`,
        shell,
        `#PBS -J 0-${ctx.arraySize - 1}`,
      ];
    },

    formatTime: (s) => formatTime(s, 'hms'),
    // mem=, vmem=, pmem=: an integer with b, kb, mb, gb or tb (powers of 1024); the largest exact unit.
    formatMem: (kB) => formatMemory(kB, { style: 'pbs' }),

    submitCommand: flavor === 'pro' ? (scriptFile) => `qsub ${shQuote(scriptFile)}` : torqueSubmit,

    parseSubmit(stdout) {
      const m = lastLineMatch(stdout, /^(\d+(?:\[\])?(?:\.\S+)?)$/);
      if (!m?.[1]) throw noJobIdError('qsub', stdout);
      return m[1];
    },

    arrayElementId(parentId, index) {
      const m = /^(\d+)(?:\[\d*\])?(.*)$/.exec(parentId.trim());
      if (!m) throw new RangeError(`Not a PBS job id: ${JSON.stringify(parentId)}`);
      return `${m[1]}[${index}]${m[2] ?? ''}`;
    },
    arrayTaskFile: flavor === 'torque' ? (file, index) => `${file}-${index}` : (file, index) => `${file}.${index}`,

    statusCommand(ids) {
      requireIds(ids, `${tag}.statusCommand`);
      if (flavor === 'pro') return qstatCommand(ids, flavor);
      return byQstat(WRAPPER_QSTAT_ALL, `{ ${qstatCommand(ids, flavor)}; }`);
    },
    parseStatus: statesOf,

    // qselect filters by name on the server and prints ids only; `-x` adds finished jobs on PBS Pro.
    // SLURM's wrappers have no qselect: all jobs in full, the name looked up here.
    findByNameCommand(schedName) {
      const name = shQuote(letterFirstName(schedName));
      if (flavor === 'pro') return `${HISTORY_FLAG}qselect $x -u "$(id -un)" -N ${name}`;
      return byQstat(WRAPPER_QSTAT_ALL, `qselect -u "$(id -un)" -N ${name}`);
    },
    parseFindByName(stdout, schedName) {
      const jobs = parseQstatFull(stdout);
      if (jobs.length > 0) return wrapperIdByName(jobs, letterFirstName(schedName));
      const m = lastLineMatch(stdout, /^(\d+(?:\[\d*\])?(?:\.\S+)?)$/);
      return m?.[1] ? arrayParent(m[1]) : undefined;
    },

    // The status query already reads PBS Pro's history (`qstat -x`); Torque keeps finished jobs only
    // for keep_completed seconds, in the same qstat. So there is no separate record to read.
    recordCommand: () => undefined,
    parseRecord: statesOf,

    cancelCommand(ids) {
      requireIds(ids, `${tag}.cancelCommand`);
      return flavor === 'pro' ? `qdel ${idList(ids)}` : byQstat(wrapperQdel(ids), `qdel ${idList(ids)}`);
    },
  };
}

/**
 * Torque's qsub: `-o`/`-e` named on the command line as well as in the script. SLURM's wrapper puts
 * its own `-o <script>.o<id> -e <script>.e<id>` (in the cwd) on sbatch's command line, which beats
 * the script's #PBS lines; xpr writes `<name>.sh` beside the `<name>.out` and `<name>.err` the
 * directives name, so those are given here. Real Torque takes the same options to the same effect.
 */
function torqueSubmit(scriptFile: string): string {
  const stem = /\.sh$/.test(scriptFile) ? scriptFile.slice(0, -3) : undefined;
  if (stem === undefined) return `qsub ${shQuote(scriptFile)}`;
  return `qsub -o ${shQuote(`${stem}.out`)} -e ${shQuote(`${stem}.err`)} ${shQuote(scriptFile)}`;
}

/**
 * The id of the job named `name` in the wrapper's `qstat -f`: the lowest id of that name, which for
 * an array is the array's own id (SLURM numbers its tasks after it).
 */
function wrapperIdByName(jobs: readonly QstatJob[], name: string): string | undefined {
  const ids = jobs.filter((j) => attr(j, 'Job_Name') === name).map((j) => pbsKey(j.id)).filter((k) => /^\d+$/.test(k));
  return ids.length ? ids.reduce((a, b) => (Number(b) < Number(a) ? b : a)) : undefined;
}

/** PBS Professional / OpenPBS; status and name look-up also work on Torque, arrays do not. */
export const pbs: Scheduler = makePbs('pro');

/** Torque (PBS_ARRAYID, `qsub -t`), and SLURM's Torque wrappers. */
export const torque: Scheduler = makePbs('torque');
