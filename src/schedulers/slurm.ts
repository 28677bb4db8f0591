// SLURM: sbatch, squeue, sacct, scontrol. Pure string functions (see types.ts).
//
// Ids: a plain job is `1234`; array element i is `1234_i` (we submit `--array=0-(N-1)`, so the SLURM
// task id is the 0-based index). That is the form `squeue -r` and `sacct` print for array tasks.
//
// Formats (SLURM 22.05 man pages squeue(1), sacct(1), scontrol(1), sbatch(1)):
//   squeue -h -o '%i|%T|%r'  `<jobid or base_index>|<STATE>|<reason>`; reason may contain spaces
//   sacct -n -P -X -o JobID,State,ExitCode  `1234_5|CANCELLED by 1000|0:15`, pending ranges `1234_[2-9%4]`
//   scontrol -o show job  one `Key=Value ...` line per job or array task
import { formatMemory, formatTime } from '../resources/units.js';
import { shQuote } from '../util/shell.js';
import type { FailureReason, RemoteState, Scheduler, ScriptContext } from './types.js';
import {
  directiveWord, expandIndices, jobNameWord, lastLineMatch, noJobIdError, requireIds, shellExitCode, unique,
} from './common.js';

/** Separates the sacct part of the record output from the scontrol part. */
const SCONTROL_MARK = '#xpr-scontrol';

/** Every id SLURM prints for a job array task list such as `1234_[0-3,7%2]` or `1234_5`. */
function expandSlurmId(id: string): string[] {
  const m = /^(\d+)_\[([^\]]*)\]$/.exec(id);
  if (!m) return [id];
  return expandIndices(m[2] ?? '').map((i) => `${m[1]}_${i}`);
}

/** `1234_5` → `1234`; `1234` → `1234`. */
function baseId(id: string): string {
  return id.replace(/[_;].*$/, '');
}

function exitCodeOf(text: string | undefined): number | undefined {
  const m = /^(-?\d+)(?::(\d+))?$/.exec(text ?? '');
  if (!m) return undefined;
  return shellExitCode(Number(m[1]), Number(m[2] ?? 0));
}

/** SLURM job state words (JOB STATE CODES in squeue(1)) to xpr's remote states. */
export function slurmState(stateWord: string, reasonText = '', exitCode?: number): RemoteState {
  // sacct prints `CANCELLED by 1000`; some versions append `+` to a state in a truncated column.
  const state = (stateWord.trim().split(/\s+/)[0] ?? '').replace(/\+$/, '').toUpperCase();
  const reason = reasonText.trim();
  const st = (status: RemoteState['status'], why?: FailureReason): RemoteState => ({
    status, raw: reason && reason !== 'None' ? `${state} (${reason})` : state,
    ...(why ? { reason: why } : {}), ...(exitCode === undefined ? {} : { exitCode }),
  });
  switch (state) {
    case 'PENDING':
      // JobHeldUser/JobHeldAdmin, and requeue holds such as `launch failed requeued held`.
      return st(/held/i.test(reason) ? 'held' : 'queued');
    case 'CONFIGURING': case 'REQUEUED': case 'REQUEUE_FED':
      return st('queued');
    case 'REQUEUE_HOLD': case 'RESV_DEL_HOLD': case 'SPECIAL_EXIT':
      return st('held');
    // A suspended or stopped job keeps its allocation and resumes; it has not ended.
    case 'RUNNING': case 'COMPLETING': case 'SIGNALING': case 'STAGE_OUT': case 'RESIZING':
    case 'SUSPENDED': case 'STOPPED':
      return st('running');
    case 'COMPLETED':
      return st('done');
    case 'FAILED':
      return st('failed');
    case 'TIMEOUT':
      return st('timeout', 'TIMEOUT');
    case 'OUT_OF_MEMORY':
      return st('failed', 'OUT_OF_MEMORY');
    case 'CANCELLED':
      return st('failed', 'CANCELLED');
    case 'PREEMPTED':
      return st('failed', 'PREEMPTED');
    case 'NODE_FAIL': case 'BOOT_FAIL':
      // BOOT_FAIL: the node could not be booted for the job; for the user that is a node failure.
      return st('failed', 'NODE_FAIL');
    case 'DEADLINE':
      // Ended unstarted or cut off at its --deadline: it is over, and it failed.
      return st('failed');
    default:
      // REVOKED (federation) and anything newer than this table.
      return st('other');
  }
}

/**
 * Pick the states of the requested ids out of `id|state|third` lines: squeue's `%i|%T|%r` (third is
 * the reason) or sacct's `JobID,State,ExitCode` (third is `code:signal`; later columns ignored).
 */
function parseBarLines(stdout: string, ids: string[], third: 'reason' | 'exit'): Map<string, RemoteState> {
  const wanted = new Set(ids);
  const out = new Map<string, RemoteState>();
  for (const line of stdout.split(/\r?\n/)) {
    const [rawId, state, ...rest] = line.trim().split('|');
    if (!rawId || state === undefined) continue;
    const st = third === 'reason' ? slurmState(state, rest.join('|')) : slurmState(state, '', exitCodeOf(rest[0]));
    for (const id of expandSlurmId(rawId)) if (wanted.has(id)) out.set(id, st);
  }
  return out;
}

/** `Key=Value` fields of one `scontrol -o show job` line; the first occurrence of a key wins. */
function scontrolFields(line: string): Map<string, string> {
  const fields = new Map<string, string>();
  // Values such as Command= or WorkDir= may contain spaces and come late in the line; the fields we
  // read (JobId, ArrayJobId, ArrayTaskId, JobState, Reason, ExitCode) are single words before them.
  for (const m of line.matchAll(/(?:^|\s)([A-Za-z][A-Za-z:/]*)=(\S*)/g)) {
    const [, key = '', value = ''] = m;
    if (!fields.has(key)) fields.set(key, value);
  }
  return fields;
}

function parseScontrol(text: string, ids: string[]): Map<string, RemoteState> {
  const wanted = new Set(ids);
  const out = new Map<string, RemoteState>();
  for (const line of text.split(/\r?\n/)) {
    const f = scontrolFields(line);
    const jobId = f.get('JobId');
    const state = f.get('JobState');
    if (!jobId || !state) continue;
    const arrayJob = f.get('ArrayJobId');
    const tasks = f.get('ArrayTaskId');
    const lineIds = arrayJob && tasks ? expandIndices(tasks).map((i) => `${arrayJob}_${i}`) : [jobId];
    const st = slurmState(state, f.get('Reason') ?? '', exitCodeOf(f.get('ExitCode')));
    for (const id of lineIds) if (wanted.has(id)) out.set(id, st);
  }
  return out;
}

// Quoted ids: they come from our own parsing, but a shell word is a shell word.
const idList = (ids: string[]): string => ids.map(shQuote).join(' ');

export const slurm: Scheduler = {
  name: 'slurm',
  directivePrefix: '#SBATCH',
  arrayIndexExpr: '$SLURM_ARRAY_TASK_ID',

  directives(ctx: ScriptContext): string[] {
    const name = jobNameWord(ctx.schedName);
    const out = directiveWord(ctx.stdoutFile, 'stdout file');
    const err = directiveWord(ctx.stderrFile, 'stderr file');
    if (ctx.arraySize > 0) {
      return [
        `#SBATCH --job-name=${name}`,
        // %a is the array task id, our 0-based index. The parent id (%A) is left out so that a
        // task's file name is known before submission and can be found after a crash.
        `#SBATCH --output=${out}.%a`,
        `#SBATCH --error=${err}.%a`,
        `#SBATCH --array=0-${ctx.arraySize - 1}`,
      ];
    }
    return [`#SBATCH --job-name=${name}`, `#SBATCH --output=${out}`, `#SBATCH --error=${err}`];
  },

  formatTime: (seconds) => formatTime(seconds, 'slurm'),
  // --mem: an integer with K, M, G or T (a bare number is megabytes); the largest exact unit.
  formatMem: (kB) => formatMemory(kB, { style: 'slurm' }),

  // --parsable prints `<id>` or `<id>;<cluster>` and nothing else on stdout.
  submitCommand: (scriptFile) => `sbatch --parsable ${shQuote(scriptFile)}`,

  parseSubmit(stdout) {
    // Also accept plain sbatch output, for a site wrapper that drops --parsable.
    const m = lastLineMatch(stdout, /^(?:Submitted batch job\s+)?(\d+)(?:;\S+)?(?:\s+on cluster\s+\S+)?$/);
    if (!m?.[1]) throw noJobIdError('sbatch', stdout);
    return m[1];
  },

  arrayElementId: (parentId, index) => `${baseId(parentId)}_${index}`,
  arrayTaskFile: (file, index) => `${file}.${index}`,

  // All of the user's jobs, not `-j <ids>`: squeue exits 1 with "Invalid job id specified" when asked
  // for one id it no longer knows, which would make one finished job fail the whole poll. `-t all`
  // keeps jobs that ended less than MinJobAge ago, with their final state; `-r` prints one line per
  // array task instead of `1234_[2-9]`.
  statusCommand: () => `squeue -h -r -t all -u "$(id -un)" -o '%i|%T|%r'`,

  parseStatus: (stdout, ids) => parseBarLines(stdout, ids, 'reason'),

  // squeue sees jobs still known to slurmctld; sacct (when accounting is on) sees older ones. A
  // failing squeue must fail the command (else a lost job would look absent and be submitted again);
  // a failing sacct (accounting disabled) must not.
  findByNameCommand(schedName) {
    const name = shQuote(schedName);
    return `squeue -h -t all -u "$(id -un)" -n ${name} -o '%F|%j' && ` +
      `{ sacct -n -P -X -S now-30days -u "$(id -un)" --name=${name} -o JobID,JobName 2>/dev/null || true; }`;
  },

  parseFindByName(stdout, schedName) {
    for (const line of stdout.split(/\r?\n/)) {
      const [id, name] = line.trim().split('|');
      if (id && name === schedName && /^\d+/.test(id)) return baseId(id);
    }
    return undefined;
  },

  // sacct where accounting is on; scontrol for jobs slurmctld still holds (it takes one id at a
  // time; an array's base id lists all its tasks). Either may fail without failing the command.
  recordCommand(ids) {
    requireIds(ids, 'slurm.recordCommand');
    const bases = unique(ids.map(baseId));
    return `sacct -n -P -X -o JobID,State,ExitCode -j ${shQuote(bases.join(','))} 2>/dev/null; ` +
      `echo '${SCONTROL_MARK}'; ` +
      `for j in ${idList(bases)}; do scontrol -o show job "$j" 2>/dev/null; done; true`;
  },

  parseRecord(stdout, ids) {
    const at = stdout.indexOf(SCONTROL_MARK);
    const sacctPart = at < 0 ? stdout : stdout.slice(0, at);
    const scontrolPart = at < 0 ? '' : stdout.slice(at + SCONTROL_MARK.length);
    const out = parseBarLines(sacctPart, ids, 'exit');
    // slurmctld's own view is the fresher one when both know the job.
    for (const [id, st] of parseScontrol(scontrolPart, ids)) out.set(id, st);
    return out;
  },

  cancelCommand(ids) {
    requireIds(ids, 'slurm.cancelCommand');
    return `scancel ${idList(ids)}`;
  },
};
