// Grid Engine (Sun/Oracle/Son of/Univa/Altair GE): qsub, qstat -xml, qacct. Pure string functions.
//
// Ids: a plain job is `1234`. SGE task ids are 1-based, so we submit `-t 1-N` and array element i
// (0-based) is `1234.<i+1>`, the `job.task` form qdel/qhold/qrls accept and that we build from
// qstat's <JB_job_number> and <tasks>. `qsub -terse` prints `1234` or, for an array, `1234.1-N:1`;
// parseSubmit returns `1234` for both.
//
// Formats: qstat(1) `-xml` (job_list elements with JB_job_number, JB_name, state, tasks such as `3`,
// `4-10:1` or `8,9`); qacct(1) `-j` (records between `=====` lines, `key value` per line:
// jobnumber, taskid, failed `100 : assumedly after job`, exit_status `137` or `137 (Killed)`,
// ru_wallclock `39` or `61s`, maxvmem `79.340M`, and on newer versions category `-l h_rt=60,...`);
// accounting(5) for the failed codes (37 = qmaster enforced h_rt, h_cpu or h_vmem limit).
import { formatMemory, formatTime, parseTime } from '../resources/units.js';
import { shQuote } from '../util/shell.js';
import type { FailureReason, RemoteState, Scheduler, ScriptContext } from './types.js';
import {
  directiveWord, expandIndices, lastLineMatch, letterFirstName, noJobIdError, requireIds, unique,
} from './common.js';

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function xmlText(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos);/g, (_m, e: string) => ENTITIES[e] ?? '');
}

interface QstatEntry {
  /** `1234` for a plain job, `1234.<task>` for each task of an array. */
  ids: string[];
  name: string;
  state: string;
}

/** Job entries of `qstat -xml` (running ones under queue_info, pending ones under job_info). */
export function parseQstatXml(xml: string): QstatEntry[] {
  const out: QstatEntry[] = [];
  for (const block of xml.matchAll(/<job_list\b[^>]*>([\s\S]*?)<\/job_list>/g)) {
    const body = block[1] ?? '';
    const field = (tag: string): string | undefined => {
      const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(body);
      return m ? xmlText(m[1] ?? '').trim() : undefined;
    };
    const num = field('JB_job_number');
    if (!num) continue;
    const tasks = field('tasks');
    out.push({
      ids: tasks ? expandIndices(tasks).map((t) => `${num}.${t}`) : [num],
      name: field('JB_name') ?? '',
      state: field('state') ?? '',
    });
  }
  return out;
}

/** SGE state letters (qstat(1): d E h r R s S t T w q, combined as in `hqw`, `Eqw`, `dr`). */
export function sgeState(state: string): RemoteState {
  const raw = state;
  // E: the job hit an error (e.g. its output dir is missing) and sits in Eqw until someone clears
  // it; it will not run by itself, so it is reported as failed.
  if (state.includes('E')) return { status: 'failed', raw };
  if (state.includes('d')) return { status: 'failed', reason: 'CANCELLED', raw };
  // Running or transferring; a running job with a hold (hr) keeps running. s/S/T: suspended.
  if (/[rtsST]/.test(state)) return { status: 'running', raw };
  if (state.includes('h')) return { status: 'held', raw };
  if (/[qw]/.test(state)) return { status: 'queued', raw };
  return { status: 'other', raw };
}

/** qacct records, one `key → value` map each, in file order. */
function parseQacct(text: string): Map<string, string>[] {
  const records: Map<string, string>[] = [];
  let rec: Map<string, string> | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (/^={10,}\s*$/.test(line)) {
      rec = new Map();
      records.push(rec);
      continue;
    }
    const m = /^(\w+)\s+(.*?)\s*$/.exec(line);
    if (rec && m?.[1]) rec.set(m[1], m[2] ?? '');
  }
  return records;
}

function firstInt(s: string | undefined): number | undefined {
  const m = /^\s*(-?\d+)/.exec(s ?? '');
  return m ? Number(m[1]) : undefined;
}

/** `39`, `39.000`, `61s` → seconds. */
function wallSeconds(s: string | undefined): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)s?\s*$/.exec(s ?? '');
  return m ? Number(m[1]) : undefined;
}

/** GE memory values (`79.340M`, `1.944GB`, `2G`, `512K`, `1024`) in bytes, powers of 1024. */
function bytes(s: string | undefined): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*$/i.exec(s ?? '');
  if (!m) return undefined;
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Number(m[1]) * unit;
}

function categoryLimit(category: string | undefined, resource: string): string | undefined {
  return new RegExp(`(?:^|[\\s,])${resource}=([^,\\s]+)`).exec(category ?? '')?.[1];
}

/** Final state from one qacct record. */
export function qacctState(rec: Map<string, string>): RemoteState {
  const failedText = rec.get('failed') ?? '';
  const failed = firstInt(failedText) ?? 0;
  const exit = firstInt(rec.get('exit_status'));
  const raw = `failed ${failedText || '?'}, exit_status ${rec.get('exit_status') ?? '?'}`;
  const st = (status: RemoteState['status'], reason?: FailureReason): RemoteState => (
    { status, raw, ...(exit === undefined ? {} : { exitCode: exit }), ...(reason ? { reason } : {}) });
  if (failed === 0 && exit === 0) return st('done');
  // Rescheduled (failed 25): the job goes back to the queue and runs again.
  if (failed === 25) return st('queued');

  // qacct alone names no reason for a killed job: qdel and an execd-enforced h_rt or h_vmem all end
  // as `failed 100`, exit 137. The limits asked for (category) against what was used tell them apart.
  const category = rec.get('category');
  let hrt: number | undefined;
  try {
    const v = categoryLimit(category, 'h_rt');
    hrt = v === undefined ? undefined : parseTime(v);
  } catch {
    hrt = undefined;
  }
  const wall = wallSeconds(rec.get('ru_wallclock'));
  const hvmem = bytes(categoryLimit(category, 'h_vmem'));
  const maxvmem = bytes(rec.get('maxvmem'));
  const overTime = hrt !== undefined && wall !== undefined && wall >= hrt;
  // A process that hits h_vmem fails to allocate, so the peak sits just under the limit.
  const overMem = hvmem !== undefined && maxvmem !== undefined && maxvmem >= 0.95 * hvmem;
  const killed = exit !== undefined && exit > 128;

  if (failed === 37) return overMem && !overTime ? st('failed', 'OUT_OF_MEMORY') : st('timeout', 'TIMEOUT');
  if ((failed === 0 || failed === 100) && killed && overTime) return st('timeout', 'TIMEOUT');
  if ((failed === 0 || failed === 100) && overMem) return st('failed', 'OUT_OF_MEMORY');
  return st('failed');
}

const idList = (ids: string[]): string => ids.map(shQuote).join(' ');

/** `1234.5` → `1234`. */
function baseId(id: string): string {
  return id.replace(/\..*$/, '');
}

const USER_JOBS = `qstat -xml -u "$(id -un)"`;

export const sge: Scheduler = {
  name: 'sge',
  directivePrefix: '#$',
  arrayIndexExpr: '$((SGE_TASK_ID-1))',

  directives(ctx: ScriptContext): string[] {
    const name = letterFirstName(ctx.schedName);
    const out = directiveWord(ctx.stdoutFile, 'stdout file');
    const err = directiveWord(ctx.stderrFile, 'stderr file');
    // -cwd: run in, and resolve the relative -o/-e paths against, the submit dir (else $HOME).
    // -S: xpr's script body is bash, and GE in its default posix_compliant mode ignores the #! line
    // and runs the queue's shell (often csh). A user header line may still name another bash.
    if (ctx.arraySize === 0) return [`#$ -N ${name}`, `#$ -o ${out}`, `#$ -e ${err}`, '#$ -cwd', '#$ -S /bin/bash'];
    // $TASK_ID is expanded by GE itself in -o/-e paths (1-based, like SGE_TASK_ID).
    return [
      `#$ -N ${name}`, `#$ -o ${out}.$TASK_ID`, `#$ -e ${err}.$TASK_ID`, '#$ -cwd', '#$ -S /bin/bash',
      `#$ -t 1-${ctx.arraySize}`,
    ];
  },

  formatTime: (s) => formatTime(s, 'hms'),
  // h_vmem / mem_free: a number with K, M or G (powers of 1024); `kb` is "not a memory value".
  formatMem: (kB) => formatMemory(kB, { style: 'sge' }),

  submitCommand: (scriptFile) => `qsub -terse ${shQuote(scriptFile)}`,

  parseSubmit(stdout) {
    const m = lastLineMatch(stdout, /^(?:Your job(?:-array)?\s+)?(\d+)(?:\.\d+-\d+:\d+)?(?:\s+\(".*"\)\s+has been submitted)?$/);
    if (!m?.[1]) throw noJobIdError('qsub', stdout);
    return m[1];
  },

  arrayElementId: (parentId, index) => `${baseId(parentId.trim())}.${index + 1}`,
  arrayTaskFile: (file, index) => `${file}.${index + 1}`,

  // All of the user's jobs in one query; ids that are not listed have left the queue.
  statusCommand: () => USER_JOBS,

  parseStatus(stdout, ids) {
    const wanted = new Set(ids);
    const out = new Map<string, RemoteState>();
    for (const entry of parseQstatXml(stdout)) {
      for (const id of entry.ids) if (wanted.has(id)) out.set(id, sgeState(entry.state));
    }
    return out;
  },

  // qstat for jobs still in the queue; qacct (by name) for jobs that already ended. qacct failing
  // (no accounting file yet, or no match) must not fail the look-up; qstat failing must.
  findByNameCommand: (schedName) =>
    `${USER_JOBS} && { qacct -j ${shQuote(letterFirstName(schedName))} 2>/dev/null || true; }`,

  parseFindByName(stdout, schedName) {
    const name = letterFirstName(schedName);
    for (const entry of parseQstatXml(stdout)) {
      if (entry.name === name && entry.ids[0]) return baseId(entry.ids[0]);
    }
    for (const rec of parseQacct(stdout)) {
      const num = rec.get('jobnumber');
      if (rec.get('jobname') === name && num) return num;
    }
    return undefined;
  },

  // qacct takes one job at a time; an array's base id lists all its tasks.
  recordCommand(ids) {
    requireIds(ids, 'sge.recordCommand');
    return `for j in ${idList(unique(ids.map(baseId)))}; do qacct -j "$j" 2>/dev/null; done; true`;
  },

  parseRecord(stdout, ids) {
    const wanted = new Set(ids);
    const out = new Map<string, RemoteState>();
    // A rescheduled job has several records; the last one is its latest run.
    for (const rec of parseQacct(stdout)) {
      const num = rec.get('jobnumber');
      const task = rec.get('taskid');
      if (!num) continue;
      const id = task && /^\d+$/.test(task) ? `${num}.${task}` : num;
      if (wanted.has(id)) out.set(id, qacctState(rec));
    }
    return out;
  },

  cancelCommand(ids) {
    requireIds(ids, 'sge.cancelCommand');
    return `qdel ${idList(ids)}`;
  },
};
