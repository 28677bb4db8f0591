// A small PBS Professional look-alike for xpr's contract tests, built on xpr's own local queue
// (dist/src/localq). There is no PBS package for Debian, so the tests run xpr's real PBS code paths
// against these commands: qsub, qstat, qselect, qdel, qhold, qrls. They follow the PBS Professional
// Reference Guide (qsub, qstat, qselect, qdel, qhold, qrls; "Job Attributes"; "Job States";
// "Job Exit Status"), so the shim prints what a PBS Pro server prints, not what xpr happens to read:
//
//   qsub      `#PBS` directives up to the first command line, then the command line's options
//             (-N -o -e -j -J -l walltime=/ncpus=/select= -S -h -V -v -q -r, others accepted);
//             prints `<seq>.pbsserver`, or `<seq>[].pbsserver` for an array (-J X-Y[:Z]).
//             The job starts in $HOME with PBS's environment (PBS_O_*, PBS_JOBID, PBS_JOBNAME,
//             PBS_ARRAY_INDEX, PBS_ARRAY_ID, PBS_ENVIRONMENT, ...), PATH=/bin:/usr/bin unless -V.
//   qstat     default table, -f (full), -x (with finished jobs), -t (subjobs), -J (arrays only),
//             --version; `Job has finished` / `Unknown Job Id` on stderr like the real one.
//   qselect   -u -N -s -x -J; prints ids, an array as its parent `<seq>[].pbsserver`.
//   qdel, qhold, qrls   on jobs, arrays (`<seq>[]`) and subjobs (`<seq>[i]`, qdel only).
//
// State: the local queue (XPR_LOCALQ_DIR, else ~/.xpr/localq) runs the jobs; this shim keeps one
// JSON record per job under <queue dir>/pbs/. A PBS job's sequence number is its local-queue job id.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(HERE, '../../../dist/src/localq');
const LOCALQ_MAIN = path.join(DIST, 'main.js');

export const SERVER = 'pbsserver';
const QUEUE = 'workq';
const PBS_VERSION = '2022.1.3';
/** PBS Pro's MoM default job PATH (pbs_environment). */
const DEFAULT_PATH = '/bin:/usr/bin';
/** PBS error numbers as command exit codes (PBSE_* & 0xff): unknown job, finished job, bad request. */
const EXIT_UNKNOWN = 153;
const EXIT_HISTORY = 35;
const EXIT_USAGE = 2;
/** Exit_status PBS Pro records for a job killed at its walltime (JOB_EXEC_KILL_WALLTIME). */
const EXIT_WALLTIME = -29;
/** Job substates of finished jobs (OpenPBS job.h): terminated (qdel), finished, failed. */
const SUBSTATE = { queued: 10, held: 20, running: 42, begun: 70, terminated: 91, finished: 92, failed: 93 };

class PbsError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

let queueModule;
async function q() {
  queueModule ??= await import(path.join(DIST, 'queue.js'));
  return queueModule;
}

function qdir() {
  return process.env.XPR_LOCALQ_DIR || path.join(os.homedir(), '.xpr', 'localq');
}
const pbsDir = () => path.join(qdir(), 'pbs');
const recordFile = (seq) => path.join(pbsDir(), 'jobs', `${seq}.json`);

function writeAtomic(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function localq(args, options = {}) {
  return execFileSync(process.execPath, [LOCALQ_MAIN, ...args], {
    encoding: 'utf8', env: { ...process.env, XPR_LOCALQ_DIR: qdir() }, ...options,
  });
}

/** `'a b'` as one POSIX shell word. */
function shq(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

const user = () => os.userInfo().username;
const host = () => os.hostname().split('.')[0];

// ------------------------------------------------------------------------------------------ qsub

/** Shell-like words of one directive line: quotes group, backslash escapes. */
function words(text) {
  const out = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new PbsError(`qsub: unmatched quote in: ${text}`, EXIT_USAGE);
      cur += text.slice(i + 1, end); has = true; i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) cur += text[j] === '\\' && j + 1 < text.length ? text[++j] : text[j];
      if (j >= text.length) throw new PbsError(`qsub: unmatched quote in: ${text}`, EXIT_USAGE);
      has = true; i = j;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i]; has = true;
    } else if (/\s/.test(c)) {
      if (has) out.push(cur);
      cur = ''; has = false;
    } else {
      cur += c; has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

/** `#PBS` directive words, read up to the first line that is neither blank nor a comment. */
function directiveWords(script, prefix = '#PBS') {
  const out = [];
  const lines = script.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (n === 0 && line.startsWith('#!')) continue;
    if (line === '') continue;
    if (!line.startsWith('#')) break;
    if (line.startsWith(`${prefix} `) || line.startsWith(`${prefix}\t`)) {
      out.push(...words(line.slice(prefix.length)));
    }
  }
  return out;
}

const WITH_VALUE = new Set(['a', 'A', 'c', 'C', 'e', 'j', 'J', 'k', 'l', 'm', 'M', 'N', 'o', 'p', 'P', 'q', 'r', 'R', 'S', 'u', 'v', 'W']);
const FLAGS = new Set(['h', 'V', 'z', 'f', 'n']);

/** Apply qsub options (from directives, then the command line, which wins) to `opts`. */
function parseOptions(argv, opts, where) {
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { rest.push(...argv.slice(i + 1)); break; }
    if (!/^-[A-Za-z]/.test(a)) { rest.push(...argv.slice(i)); break; }
    const letter = a[1];
    if (letter === 'I' || letter === 'X') throw new PbsError(`qsub: interactive jobs (-${letter}) are not supported by this shim`, EXIT_USAGE);
    if (FLAGS.has(letter) && a.length === 2) {
      if (letter === 'h') opts.hold = true;
      if (letter === 'V') opts.exportAll = true;
      if (letter === 'z') opts.quiet = true;
      continue;
    }
    if (!WITH_VALUE.has(letter)) throw new PbsError(`qsub: invalid option -- '${letter}' (${where})`, EXIT_USAGE);
    const value = a.length > 2 ? a.slice(2) : argv[++i];
    if (value === undefined) throw new PbsError(`qsub: option requires an argument -- '${letter}'`, EXIT_USAGE);
    switch (letter) {
      case 'N':
        // Reference Guide: up to 236 characters, printable, no whitespace; must begin with a letter.
        if (!/^[A-Za-z][^\s@]{0,235}$/.test(value)) throw new PbsError('qsub: illegal -N value', EXIT_USAGE);
        opts.name = value; break;
      case 'o': opts.output = value; break;
      case 'e': opts.error = value; break;
      case 'j':
        if (!/^(oe|eo|n)$/.test(value)) throw new PbsError('qsub: illegal -j value', EXIT_USAGE);
        opts.join = value; break;
      case 'J': opts.array = parseRange(value); break;
      case 'l': for (const kv of value.split(',')) applyResource(kv, opts); break;
      case 'S': opts.shell = value.split(',')[0].replace(/@.*$/, ''); break;
      case 'r':
        if (!/^[yn]$/.test(value)) throw new PbsError('qsub: illegal -r value', EXIT_USAGE);
        opts.rerunable = value === 'y'; break;
      case 'q': opts.queue = value.replace(/@.*$/, '') || QUEUE; break;
      case 'v':
        for (const kv of value.split(',')) {
          const eq = kv.indexOf('=');
          const k = eq < 0 ? kv : kv.slice(0, eq);
          opts.vars[k] = eq < 0 ? (process.env[k] ?? '') : kv.slice(eq + 1);
        }
        break;
      default: opts.other.push(`-${letter} ${value}`);
    }
  }
  return rest;
}

/** `-J X-Y[:Z]`: at least two subjobs (PBS Pro refuses a one-subjob array). */
function parseRange(text) {
  const m = /^(\d+)-(\d+)(?::(\d+))?$/.exec(text);
  if (!m) throw new PbsError('qsub: illegal -J value', EXIT_USAGE);
  const start = Number(m[1]);
  const end = Number(m[2]);
  const step = m[3] === undefined ? 1 : Number(m[3]);
  if (step < 1 || end <= start) throw new PbsError('qsub: illegal -J value', EXIT_USAGE);
  const count = Math.floor((end - start) / step) + 1;
  if (count < 2) throw new PbsError('qsub: illegal -J value', EXIT_USAGE);
  return { start, end, step, count, text };
}

function parseWalltime(text) {
  const parts = text.split(':').map((p) => p.trim());
  if (parts.length > 3 || parts.some((p) => !/^\d+$/.test(p))) throw new PbsError(`qsub: Illegal attribute or resource value Resource_List.walltime`, 188);
  return parts.map(Number).reduce((acc, n) => acc * 60 + n, 0);
}

function applyResource(kv, opts) {
  const eq = kv.indexOf('=');
  if (eq < 0) throw new PbsError(`qsub: illegal -l value`, EXIT_USAGE);
  const key = kv.slice(0, eq).trim();
  const value = kv.slice(eq + 1).trim();
  if (key === 'walltime') opts.walltime = parseWalltime(value);
  else if (key === 'ncpus') opts.ncpus = Number(value) || 1;
  else if (key === 'select') {
    const n = /(?:^|:)ncpus=(\d+)/.exec(value);
    if (n) opts.ncpus = Number(n[1]);
    opts.resources.select = value;
  } else opts.resources[key] = value;
}

/** A path as PBS records it: `host:/absolute/path`, relative to the submission dir. */
function stdPath(value, cwd) {
  const p = value.replace(/^[^/:]+:/, '');
  return path.resolve(cwd, p);
}

export async function qsub(argv) {
  const fresh = () => ({ hold: false, exportAll: false, quiet: false, vars: {}, other: [], resources: {}, ncpus: 1, queue: QUEUE, rerunable: true });
  // The command line names the script; its options are applied again after the directives (they win).
  const rest = parseOptions(argv, fresh(), 'command line');
  let scriptText;
  let scriptName;
  if (rest.length === 0) {
    scriptText = fs.readFileSync(0, 'utf8');
    scriptName = 'STDIN';
  } else {
    scriptName = rest[0];
    try {
      scriptText = fs.readFileSync(scriptName, 'utf8');
    } catch (e) {
      throw new PbsError(`qsub: script file:: ${e.code === 'ENOENT' ? 'No such file or directory' : e.message}`, EXIT_USAGE);
    }
  }
  const opts = fresh();
  parseOptions(directiveWords(scriptText), opts, 'directive');
  parseOptions(argv, opts, 'command line');
  const cwd = process.cwd();
  const name = opts.name ?? (scriptName === 'STDIN' ? 'STDIN' : path.basename(scriptName));
  if (!/^[A-Za-z]/.test(name)) throw new PbsError('qsub: illegal -N value', EXIT_USAGE);

  const spool = path.join(pbsDir(), 'spool');
  fs.mkdirSync(spool, { recursive: true });
  const token = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  // PBS copies the script at submission: later edits of the file do not change the job.
  const body = path.join(spool, `${token}.SC`);
  fs.writeFileSync(body, scriptText, { mode: 0o700 });

  const outputPath = opts.output === undefined ? undefined : stdPath(opts.output, cwd);
  const errorPath = opts.error === undefined ? undefined : stdPath(opts.error, cwd);
  const shell = opts.shell ?? (os.userInfo().shell || '/bin/sh');
  const env = {
    PBS_O_HOME: process.env.HOME ?? os.homedir(), PBS_O_LANG: process.env.LANG ?? 'C', PBS_O_LOGNAME: user(),
    PBS_O_PATH: process.env.PATH ?? '', PBS_O_MAIL: process.env.MAIL ?? `/var/mail/${user()}`,
    PBS_O_SHELL: process.env.SHELL ?? shell, PBS_O_WORKDIR: cwd, PBS_O_SYSTEM: os.type(), PBS_O_QUEUE: opts.queue,
    PBS_O_HOST: host(),
  };
  const wrapper = path.join(spool, `${token}.sh`);
  fs.writeFileSync(wrapper, renderWrapper({ opts, name, body, shell, env, outputPath, errorPath, cwd }), { mode: 0o700 });

  const out = localq(['submit', ...(opts.hold ? ['--hold'] : []), wrapper], { cwd });
  const seq = out.trim().split('\n').pop().trim();
  if (!/^\d+$/.test(seq)) throw new PbsError(`qsub: the local queue printed no job id: ${out}`, 1);
  const now = Date.now() / 1000;
  writeAtomic(recordFile(seq), JSON.stringify({
    seq, name, owner: `${user()}@${host()}`, queue: opts.queue, ctime: now,
    walltime: opts.walltime, ncpus: opts.ncpus, resources: opts.resources, array: opts.array,
    outputPath, errorPath, join: opts.join ?? 'n', rerunable: opts.rerunable, shell,
    holdAtSubmit: opts.hold, submitArgs: argv.join(' '), cwd, env,
  }));
  if (!opts.quiet) process.stdout.write(`${seq}${opts.array ? '[]' : ''}.${SERVER}\n`);
}

/** Default output file names (Reference Guide, qsub -o/-e): `<name>.o<seq>`, subjobs `.<index>`. */
function defaultStd(cwd, name, letter, isArray) {
  return path.join(cwd, `${name}.${letter}$PBS_SEQ${isArray ? '.$PBS_ARRAY_INDEX' : ''}`);
}

/** `path` with `^array_index^` as the subjob index, as a shell word for the wrapper. */
function stdWord(p) {
  return p.split('^array_index^').map(shq).join('"$PBS_ARRAY_INDEX"');
}

/**
 * The script the local queue runs: work out the PBS ids and files of this (sub)job, then start the
 * job's copy of the script under its shell, in $HOME, with PBS's environment only.
 */
function renderWrapper({ opts, name, body, shell, env, outputPath, errorPath, cwd }) {
  const a = opts.array;
  const lines = [
    '#!/bin/bash',
    `#LOCALQ --job-name=${name}`,
    `#LOCALQ --cores=${Math.max(1, opts.ncpus)}`,
    `#LOCALQ --time=${opts.walltime ?? 0}`,
    // The queue's own messages (a task that cannot start) go beside the spooled script.
    `#LOCALQ --output=${body.replace(/\.SC$/, '')}.%a.localq`,
    `#LOCALQ --error=${body.replace(/\.SC$/, '')}.%a.localq`,
    ...(a ? [`#LOCALQ --array=${a.count}`] : []),
    'PBS_SEQ="$XPR_LOCALQ_JOB_ID"',
  ];
  if (a) {
    lines.push(
      `PBS_ARRAY_INDEX=$(( ${a.start} + XPR_LOCALQ_ARRAY_TASK_ID * ${a.step} ))`,
      `PBS_ARRAY_ID="$PBS_SEQ[].${SERVER}"`,
      `PBS_JOBID="$PBS_SEQ[$PBS_ARRAY_INDEX].${SERVER}"`,
    );
  } else {
    lines.push(`PBS_JOBID="$PBS_SEQ.${SERVER}"`);
  }
  const out = outputPath === undefined ? defaultStd(cwd, name, 'o', !!a) : null;
  const err = errorPath === undefined ? defaultStd(cwd, name, 'e', !!a) : null;
  lines.push(`out=${out ? `"${out.replace(/[\\"`]/g, '\\$&')}"` : stdWord(outputPath)}`);
  lines.push(`err=${err ? `"${err.replace(/[\\"`]/g, '\\$&')}"` : stdWord(errorPath)}`);
  const join = opts.join ?? 'n';
  if (join === 'oe') lines.push('exec >"$out" 2>&1');
  else if (join === 'eo') lines.push('exec 2>"$err" >&2');
  else lines.push('exec >"$out" 2>"$err"');
  const home = os.homedir();
  const jobEnv = {
    ...(opts.exportAll ? process.env : {}),
    HOME: home, LOGNAME: user(), USER: user(), SHELL: shell, ...(opts.exportAll ? {} : { PATH: DEFAULT_PATH }),
    ...env, ...opts.vars,
    PBS_ENVIRONMENT: 'PBS_BATCH', PBS_JOBNAME: name, PBS_QUEUE: opts.queue, PBS_JOBDIR: home,
    NCPUS: String(opts.ncpus), OMP_NUM_THREADS: String(opts.ncpus), TMPDIR: os.tmpdir(),
  };
  const assigns = Object.entries(jobEnv)
    .filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && !k.startsWith('XPR_LOCALQ_'))
    .map(([k, v]) => `${k}=${shq(v)}`);
  lines.push(
    // PBS Pro starts a job in the user's home directory, not the submission dir.
    `cd ${shq(home)} || exit 1`,
    `exec env -i ${assigns.join(' ')} PBS_JOBID="$PBS_JOBID"` +
      (a ? ' PBS_ARRAY_INDEX="$PBS_ARRAY_INDEX" PBS_ARRAY_ID="$PBS_ARRAY_ID"' : '') +
      ` ${shq(shell)} ${shq(body)}`,
  );
  return `${lines.join('\n')}\n`;
}

// ------------------------------------------------------------------------------------------ jobs

function readRecord(seq) {
  try {
    return JSON.parse(fs.readFileSync(recordFile(seq), 'utf8'));
  } catch {
    return undefined;
  }
}

function allRecords() {
  let names = [];
  try {
    names = fs.readdirSync(path.join(pbsDir(), 'jobs'));
  } catch {
    return [];
  }
  return names.filter((n) => /^\d+\.json$/.test(n)).map((n) => readRecord(n.slice(0, -5)))
    .filter(Boolean).sort((a, b) => Number(a.seq) - Number(b.seq));
}

/** Run state of one local-queue task: what PBS would say about the (sub)job it runs. */
async function taskInfo(task) {
  const Q = await q();
  const dir = qdir();
  const st = Q.taskStatus(dir, task);
  const pid = Q.readPid(dir, task);
  const exit = Q.readExit(dir, task);
  const held = fs.existsSync(Q.taskFile(dir, task, 'hold'));
  const cancelled = fs.existsSync(Q.taskFile(dir, task, 'cancel'));
  return { task, state: st?.state, pid, exit, held, cancelled };
}

const SIGNALS = os.constants.signals;

/** PBS Exit_status of a task that ended (Reference Guide "Job Exit Status"). */
function exitStatus(info) {
  const e = info.exit;
  if (!e) return undefined;
  if (e.reason === 'TIMEOUT') return EXIT_WALLTIME;
  // Deleted before it ran: there is no exit status.
  if (e.reason === 'CANCELLED' && !info.pid) return undefined;
  if (typeof e.code === 'number' && !Number.isNaN(e.code)) return e.code;
  // Killed by a signal: 256 + the signal number.
  const sig = e.signal ? SIGNALS[e.signal] : undefined;
  return sig ? 256 + sig : 271;
}

function fmtDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** ctime(3) form without the newline: `Tue Mar  5 10:11:12 2024`. */
function ctime(epoch) {
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${d.getFullYear()}`;
}

/** Letter state (and substate) of one plain job or subjob from its task. */
function letterOf(info, isSubjob, arrayHeld) {
  if (info.exit) {
    const code = exitStatus(info);
    const sub = info.exit.reason === 'CANCELLED' ? SUBSTATE.terminated : code === 0 ? SUBSTATE.finished : SUBSTATE.failed;
    return { state: isSubjob ? 'X' : 'F', substate: sub, finished: true };
  }
  if (info.state === 'RUNNING') return { state: 'R', substate: SUBSTATE.running, finished: false };
  if (info.cancelled) return { state: isSubjob ? 'X' : 'F', substate: SUBSTATE.terminated, finished: true };
  // Holds apply to an array as a whole; its queued subjobs stay Q.
  if (info.held && !isSubjob && !arrayHeld) return { state: 'H', substate: SUBSTATE.held, finished: false };
  return { state: 'Q', substate: SUBSTATE.queued, finished: false };
}

/** Status entries (parent first, then subjobs) for one job record. */
async function jobEntries(rec) {
  const now = Date.now() / 1000;
  const base = {
    Job_Name: rec.name, Job_Owner: rec.owner,
  };
  const common = (info) => {
    const attrs = {};
    if (info?.pid) {
      const end = info.exit?.ended ?? now;
      attrs['resources_used.cpupercent'] = '0';
      attrs['resources_used.ncpus'] = String(rec.ncpus);
      attrs['resources_used.walltime'] = fmtDuration(end - info.pid.started);
    }
    return attrs;
  };
  const resourceList = () => {
    const r = {
      'Resource_List.ncpus': String(rec.ncpus), 'Resource_List.nodect': '1', 'Resource_List.place': 'pack',
      'Resource_List.select': rec.resources?.select ?? `1:ncpus=${rec.ncpus}`,
    };
    for (const [k, v] of Object.entries(rec.resources ?? {})) if (k !== 'select') r[`Resource_List.${k}`] = v;
    if (rec.walltime !== undefined) r['Resource_List.walltime'] = fmtDuration(rec.walltime);
    return r;
  };
  const paths = (isArray) => {
    const o = rec.outputPath ?? path.join(rec.cwd, `${rec.name}.o${rec.seq}${isArray ? '.^array_index^' : ''}`);
    const e = rec.errorPath ?? path.join(rec.cwd, `${rec.name}.e${rec.seq}${isArray ? '.^array_index^' : ''}`);
    return { Error_Path: `${host()}:${e}`, Output_Path: `${host()}:${o}` };
  };
  const variableList = Object.entries(rec.env).map(([k, v]) => `${k}=${v}`).join(',');

  const describe = (id, info, letter, extra) => {
    const attrs = {
      ...base, ...common(info), job_state: letter.state, queue: rec.queue, server: SERVER, Checkpoint: 'u',
      ctime: ctime(rec.ctime), ...paths(!!rec.array),
      ...(info?.pid ? { exec_host: `${host()}/0`, exec_vnode: `(${host()}:ncpus=${rec.ncpus})` } : {}),
      Hold_Types: letter.state === 'H' || extra.holdTypes === 'u' ? 'u' : 'n', Join_Path: rec.join, Keep_Files: 'n',
      Mail_Points: 'a', mtime: ctime(info?.exit?.ended ?? info?.pid?.started ?? rec.ctime), Priority: '0',
      qtime: ctime(rec.ctime), Rerunable: rec.rerunable ? 'True' : 'False', ...resourceList(),
      ...(info?.pid ? { stime: ctime(info.pid.started), session_id: String(info.pid.pid), jobdir: os.homedir() } : {}),
      ...(info?.exit && info.pid ? { obittime: ctime(info.exit.ended) } : {}),
      substate: String(letter.substate), Variable_List: variableList,
      ...(extra.comment ? { comment: extra.comment } : {}),
      etime: ctime(rec.ctime),
      ...(info?.pid ? { run_count: '1' } : {}),
      ...extra.attrs,
      Submit_arguments: rec.submitArgs,
      ...(letter.finished && extra.historyTime ? { history_timestamp: String(Math.floor(extra.historyTime)) } : {}),
      project: '_pbs_project_default', Submit_Host: host(),
    };
    return { id, attrs, finished: letter.finished, state: letter.state };
  };

  const runComment = (info, letter) => {
    if (!info?.pid) {
      if (letter.finished) return 'Job deleted before it ran';
      return letter.state === 'H' ? 'Job held by user' : 'Not Running: Insufficient amount of resource: ncpus';
    }
    const at = `Job run at ${ctime(info.pid.started)} on (${host()}:ncpus=${rec.ncpus})`;
    if (!letter.finished) return at;
    if (info.exit?.reason === 'CANCELLED') return `${at} and terminated`;
    return `${at} and ${exitStatus(info) === 0 ? 'finished' : 'failed'}`;
  };

  if (!rec.array) {
    const info = await taskInfo(rec.seq);
    const letter = letterOf(info, false, false);
    const code = exitStatus(info);
    return [describe(`${rec.seq}.${SERVER}`, info, letter, {
      comment: runComment(info, letter), historyTime: info.exit?.ended,
      holdTypes: info.held ? 'u' : 'n',
      attrs: letter.finished && code !== undefined ? { Exit_status: String(code) } : {},
    })];
  }

  const a = rec.array;
  const subs = [];
  for (let i = 0; i < a.count; i++) {
    const index = a.start + i * a.step;
    subs.push({ index, info: await taskInfo(`${rec.seq}_${i}`) });
  }
  const arrayHeld = subs.some((s) => s.info.held && !s.info.pid && !s.info.exit);
  const subLetters = subs.map((s) => letterOf(s.info, true, arrayHeld));
  const count = { Queued: 0, Running: 0, Exiting: 0, Expired: 0 };
  for (const l of subLetters) {
    if (l.state === 'Q') count.Queued++;
    else if (l.state === 'R') count.Running++;
    else count.Expired++;
  }
  const allDone = subLetters.every((l) => l.finished);
  const anyBegun = subs.some((s) => s.info.pid || s.info.exit);
  const parentState = allDone ? 'F' : anyBegun ? 'B' : arrayHeld ? 'H' : 'Q';
  const remaining = subs.filter((_s, i) => subLetters[i].state === 'Q').map((s) => s.index);
  const parentAttrs = {
    array: 'True',
    array_state_count: `Queued:${count.Queued} Running:${count.Running} Exiting:${count.Exiting} Expired:${count.Expired} `,
    array_indices_submitted: a.text,
    ...(remaining.length ? { array_indices_remaining: rangeText(remaining, a.step) } : { array_indices_remaining: '-' }),
  };
  if (allDone) {
    // The array's exit status: 0 when every subjob exited 0, 1 when one did not, 2 when one was deleted.
    const codes = subs.map((s) => exitStatus(s.info));
    const deleted = subs.some((s) => s.info.exit?.reason === 'CANCELLED' || s.info.cancelled);
    parentAttrs.Exit_status = deleted ? '2' : codes.every((c) => c === 0) ? '0' : '1';
  }
  const parentLetter = {
    state: parentState, finished: allDone,
    substate: allDone ? (subs.some((s) => s.info.exit?.reason === 'CANCELLED') ? SUBSTATE.terminated : SUBSTATE.finished)
      : parentState === 'B' ? SUBSTATE.begun : parentState === 'H' ? SUBSTATE.held : SUBSTATE.queued,
  };
  const lastEnd = Math.max(...subs.map((s) => s.info.exit?.ended ?? 0));
  const entries = [describe(`${rec.seq}[].${SERVER}`, undefined, parentLetter, {
    historyTime: lastEnd, holdTypes: arrayHeld ? 'u' : 'n', attrs: parentAttrs,
  })];
  subs.forEach((s, i) => {
    const letter = subLetters[i];
    const code = exitStatus(s.info);
    entries.push({
      ...describe(`${rec.seq}[${s.index}].${SERVER}`, s.info, letter, {
        comment: runComment(s.info, letter), historyTime: s.info.exit?.ended,
        attrs: {
          ...(letter.finished && code !== undefined ? { Exit_status: String(code) } : {}),
          array_id: `${rec.seq}[].${SERVER}`, array_index: String(s.index),
        },
      }),
      subjob: true,
    });
  });
  return entries;
}

/** `0,1,2,5` → `0-2,5` (with the array's step). */
function rangeText(indices, step) {
  const parts = [];
  let lo = indices[0];
  let prev = lo;
  for (const i of [...indices.slice(1), undefined]) {
    if (i !== undefined && i === prev + step) { prev = i; continue; }
    parts.push(lo === prev ? `${lo}` : `${lo}-${prev}${step > 1 ? `:${step}` : ''}`);
    lo = prev = i;
  }
  return parts.join(',');
}

/** What an id operand names: `12`, `12.server`, `12[]`, `12[3].server`. */
function parseId(text) {
  const m = /^(\d+)(\[(\d*)\])?(?:\.[^@\s]+)?(?:@\S+)?$/.exec(text);
  if (!m) return undefined;
  return { seq: m[1], array: m[2] !== undefined, index: m[3] === undefined || m[3] === '' ? undefined : Number(m[3]) };
}

// ------------------------------------------------------------------------------------------ qstat

/** One attribute as `qstat -f` prints it; long comma-separated values go on on tab-indented lines. */
function attrLines(key, value) {
  const first = `    ${key} = `;
  const pieces = value.split(/(?<=,)/);
  const lines = [];
  let line = first;
  for (const piece of pieces) {
    if (line.length + piece.length > 80 && line !== first && line !== '\t') {
      lines.push(line);
      line = '\t';
    }
    line += piece;
  }
  lines.push(line);
  return lines.join('\n');
}

function fullFormat(entry) {
  const lines = [`Job Id: ${entry.id}`];
  for (const [k, v] of Object.entries(entry.attrs)) lines.push(attrLines(k, v));
  return `${lines.join('\n')}\n`;
}

function tableFormat(entries, history) {
  const head = [
    'Job id            Name             User              Time Use S Queue',
    '----------------  ---------------- ----------------  -------- - -----',
  ];
  const cut = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}*` : s.padEnd(n));
  const rows = entries.map((e) => {
    const used = e.attrs['resources_used.cput'] ?? (e.attrs['resources_used.walltime'] ? '00:00:00' : '0');
    return `${cut(e.id, 16)}  ${cut(e.attrs.Job_Name, 16)} ${cut(e.attrs.Job_Owner.split('@')[0], 16)}  ` +
      `${used.padStart(8)} ${e.state} ${e.attrs.queue}`;
  });
  void history;
  return rows.length ? `${head.join('\n')}\n${rows.join('\n')}\n` : '';
}

export async function qstat(argv) {
  if (argv.includes('--version')) {
    process.stdout.write(`pbs_version = ${PBS_VERSION}\n`);
    return 0;
  }
  const opt = { f: false, x: false, t: false, J: false, u: undefined };
  const operands = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (/^-[fxtJHw1n]+$/.test(a)) {
      for (const c of a.slice(1)) {
        if (c === 'f') opt.f = true;
        else if (c === 'x' || c === 'H') opt.x = true;
        else if (c === 't') opt.t = true;
        else if (c === 'J') opt.J = true;
      }
    } else if (a === '-u') opt.u = (argv[++i] ?? '').split(',');
    else if (a === '-F') throw new PbsError('qstat: -F json|dsv is not supported by this shim', EXIT_USAGE);
    else if (a.startsWith('-')) throw new PbsError(`qstat: invalid option -- '${a.slice(1)}'`, EXIT_USAGE);
    else operands.push(a);
  }
  let status = 0;
  const shown = [];
  const fail = (msg, code) => {
    process.stderr.write(`${msg}\n`);
    status = code;
  };
  if (operands.length === 0) {
    for (const rec of allRecords()) {
      if (opt.u && !opt.u.includes(rec.owner.split('@')[0])) continue;
      if (opt.J && !rec.array) continue;
      const entries = await jobEntries(rec);
      const [parent] = entries;
      if (parent.finished && !opt.x) continue;
      shown.push(parent);
      if (opt.t) shown.push(...entries.slice(1));
    }
  } else {
    for (const operand of operands) {
      const id = parseId(operand);
      const rec = id && readRecord(id.seq);
      if (!id || !rec || (id.array && !rec.array)) {
        fail(`qstat: Unknown Job Id ${operand}`, EXIT_UNKNOWN);
        continue;
      }
      const entries = await jobEntries(rec);
      let pick;
      if (!rec.array) pick = [entries[0]];
      else if (id.index !== undefined) {
        const sub = entries.find((e) => e.subjob && e.attrs.array_index === String(id.index));
        if (!sub) { fail(`qstat: Unknown Job Id ${operand}`, EXIT_UNKNOWN); continue; }
        pick = [sub];
      } else {
        if (!id.array) { fail(`qstat: Unknown Job Id ${operand}`, EXIT_UNKNOWN); continue; }
        pick = opt.t ? entries : [entries[0]];
      }
      if (opt.J && !rec.array) continue;
      // Without -x, a finished job (or array) is not shown: qstat says so and exits non-zero.
      const finishedWhole = entries[0].finished;
      if (finishedWhole && !opt.x) {
        fail(`qstat: ${operand} Job has finished, use -x or -H to obtain historical job information`, EXIT_HISTORY);
        continue;
      }
      shown.push(...pick);
    }
  }
  if (opt.f) process.stdout.write(shown.map(fullFormat).join('\n'));
  else process.stdout.write(tableFormat(shown, opt.x));
  return status;
}

// ------------------------------------------------------------------------------------------ qselect

export async function qselect(argv) {
  const opt = { users: undefined, name: undefined, states: undefined, x: false, J: false, t: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-u') opt.users = (argv[++i] ?? '').split(',').map((u) => u.replace(/@.*$/, ''));
    else if (a === '-N') opt.name = argv[++i];
    else if (a === '-s') opt.states = argv[++i] ?? '';
    else if (/^-[xJTt]+$/.test(a)) {
      for (const c of a.slice(1)) {
        if (c === 'x') opt.x = true;
        else if (c === 'J') opt.J = true;
        else opt.t = true;
      }
    } else if (a === '-q') i++;
    else throw new PbsError(`qselect: invalid option -- '${a.replace(/^-/, '')}'`, EXIT_USAGE);
  }
  const out = [];
  for (const rec of allRecords()) {
    if (opt.users && !opt.users.includes(rec.owner.split('@')[0])) continue;
    if (opt.name !== undefined && rec.name !== opt.name) continue;
    if (opt.J && !rec.array) continue;
    const entries = await jobEntries(rec);
    const list = opt.t && rec.array ? entries.slice(1) : [entries[0]];
    for (const e of list) {
      if (e.finished && !opt.x) continue;
      // Without -x, -s defaults to every state but F.
      if (opt.states !== undefined && !opt.states.includes(e.state)) continue;
      out.push(e.id);
    }
  }
  process.stdout.write(out.length ? `${out.join('\n')}\n` : '');
  return 0;
}

// ------------------------------------------------------------------------------------------ qdel, qhold, qrls

/** Local-queue ids for PBS id operands; unknown or finished ones are reported as PBS does. */
async function resolveForAction(cmd, operands, { subjobs }) {
  const tasks = [];
  let status = 0;
  for (const operand of operands) {
    const id = parseId(operand);
    const rec = id && readRecord(id.seq);
    if (!id || !rec || (id.array !== !!rec.array)) {
      process.stderr.write(`${cmd}: Unknown Job Id ${operand}\n`);
      status = EXIT_UNKNOWN;
      continue;
    }
    const entries = await jobEntries(rec);
    if (id.index !== undefined) {
      if (!subjobs) {
        process.stderr.write(`${cmd}: Request invalid for state of job ${operand}\n`);
        status = 168;
        continue;
      }
      const k = rec.array ? (id.index - rec.array.start) / rec.array.step : -1;
      const sub = entries.find((e) => e.subjob && e.attrs.array_index === String(id.index));
      if (!sub || !Number.isInteger(k)) {
        process.stderr.write(`${cmd}: Unknown Job Id ${operand}\n`);
        status = EXIT_UNKNOWN;
        continue;
      }
      if (sub.finished) {
        process.stderr.write(`${cmd}: Job has finished ${operand}\n`);
        status = EXIT_HISTORY;
        continue;
      }
      tasks.push(`${rec.seq}_${k}`);
      continue;
    }
    if (entries[0].finished) {
      process.stderr.write(`${cmd}: Job has finished ${operand}\n`);
      status = EXIT_HISTORY;
      continue;
    }
    tasks.push(rec.seq);
  }
  return { tasks, status };
}

export async function qdel(argv) {
  const operands = argv.filter((a) => !a.startsWith('-'));
  if (!operands.length) throw new PbsError('usage: qdel [-x] [-Wforce|-Wsuppress_email=<N>] job_identifier...', EXIT_USAGE);
  const { tasks, status } = await resolveForAction('qdel', operands, { subjobs: true });
  if (tasks.length) localq(['cancel', ...tasks]);
  return status;
}

export async function qhold(argv) {
  const operands = argv.filter((a, i) => !a.startsWith('-') && argv[i - 1] !== '-h');
  if (!operands.length) throw new PbsError('usage: qhold [-h hold_list] job_identifier...', EXIT_USAGE);
  const { tasks, status } = await resolveForAction('qhold', operands, { subjobs: false });
  if (tasks.length) localq(['hold', ...tasks]);
  return status;
}

export async function qrls(argv) {
  const operands = argv.filter((a, i) => !a.startsWith('-') && argv[i - 1] !== '-h');
  if (!operands.length) throw new PbsError('usage: qrls [-h hold_list] job_identifier...', EXIT_USAGE);
  const { tasks, status } = await resolveForAction('qrls', operands, { subjobs: false });
  if (tasks.length) localq(['release', ...tasks]);
  return status;
}

const COMMANDS = { qsub, qstat, qselect, qdel, qhold, qrls };

/** Entry point of each shim command. */
export function main(cmd) {
  const argv = process.argv.slice(2);
  Promise.resolve()
    .then(() => COMMANDS[cmd](argv))
    .then((code) => { process.exitCode = code ?? 0; }, (err) => {
      process.stderr.write(`${err instanceof PbsError ? err.message : `${cmd}: ${err?.stack ?? err}`}\n`);
      process.exitCode = err instanceof PbsError ? err.code : 1;
    });
}
