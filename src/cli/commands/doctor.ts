// `xpr doctor <system>`: check that a system can run jobs, each check with what to do when it fails —
// it connects, finds the scheduler's commands, runs the remote `node` (after the system's `commands`,
// as a job would), and writes in the rundir. Everything goes through the system's Transport, so the
// same checks serve this machine and an SSH host.
import { getSystem } from '../../config/load.js';
import type { SystemConfig } from '../../config/schema.js';
import type { System } from '../../job/system.js';
import type { Transport } from '../../transport/types.js';
import { shQuote } from '../../util/shell.js';
import { openSystem, withProject, type CommandContext } from '../common.js';
import { problemOf, type Problem } from '../exit.js';
import { paint, type FormatOptions } from '../format.js';

export interface DoctorOptions extends CommandContext {
  system: string;
}

export interface Check {
  name: string;
  ok: boolean;
  /** What was found. */
  detail: string;
  /** What to do about a failure. */
  fix?: string;
}

export interface DoctorResult {
  system: string;
  host: string | null;
  scheduler: string;
  rundir: string;
  checks: Check[];
  ok: boolean;
  problems: Problem[];
}

/** Oldest Node the runner supports (package.json engines). */
export const MIN_NODE_MAJOR = 20;

/** Commands each scheduler needs on the submit host; `optional` ones only sharpen failure reasons. */
export const SCHEDULER_COMMANDS: Record<string, { needed: string[]; optional: string[] }> = {
  slurm: { needed: ['sbatch', 'squeue', 'scancel'], optional: ['sacct', 'scontrol'] },
  pbs: { needed: ['qsub', 'qstat', 'qdel'], optional: [] },
  sge: { needed: ['qsub', 'qstat', 'qdel'], optional: ['qacct'] },
  local: { needed: [], optional: [] },
};

export async function doctor(opts: DoctorOptions): Promise<DoctorResult> {
  return withProject(opts, async (project) => {
    const cfg = getSystem(project.config, opts.system, project.paths);
    const result: DoctorResult = {
      system: cfg.name, host: cfg.host, scheduler: cfg.scheduler, rundir: cfg.rundir, checks: [], ok: true, problems: [],
    };
    const add = (c: Check) => { result.checks.push(c); if (!c.ok) result.ok = false; };

    let system: System;
    try {
      system = openSystem(project, cfg.name);
      const r = await system.transport.exec('echo xpr-doctor');
      if (r.code !== 0 || !r.stdout.includes('xpr-doctor')) throw new Error(`a test command failed: ${r.stderr.trim() || `exit ${r.code}`}`);
      add({ name: 'connect', ok: true, detail: cfg.host ? `reached ${cfg.host}` : 'this machine (no SSH)' });
    } catch (err) {
      const problem = problemOf(err, cfg.name);
      add({
        name: 'connect', ok: false, detail: problem.message,
        fix: cfg.host ? `Check that \`ssh ${cfg.host} true\` works without a password prompt (keys, ~/.ssh/config, known_hosts).` : 'See the message above.',
      });
      result.problems.push(problem);
      return result;
    }
    const t = system.transport;
    add(await checkScheduler(t, system, cfg));
    add(await checkNode(t, cfg));
    add(await checkRundir(t, system));
    if (!result.ok) result.problems.push({ system: cfg.name, unreachable: false, message: `${result.checks.filter((c) => !c.ok).length} check(s) failed` });
    return result;
  });
}

async function checkScheduler(t: Transport, system: System, cfg: SystemConfig): Promise<Check> {
  const name = `scheduler (${cfg.scheduler})`;
  if (cfg.scheduler === 'local') {
    // The local queue is xpr's own program: ask it for the status of a job that does not exist.
    const r = await t.exec(system.scheduler.statusCommand(['0']));
    return r.code === 0
      ? { name, ok: true, detail: 'local queue answers' }
      : { name, ok: false, detail: `local queue failed: ${r.stderr.trim()}`, fix: 'Run `npm run build` in the xpr package (the queue runs from dist/).' };
  }
  const cmds = SCHEDULER_COMMANDS[cfg.scheduler] ?? { needed: [], optional: [] };
  const all = [...cmds.needed, ...cmds.optional];
  const setup = cfg.pre_submit_cmds.length ? `${cfg.pre_submit_cmds.join(' && ')} >/dev/null 2>&1; ` : '';
  const r = await t.exec(`${setup}for c in ${all.map(shQuote).join(' ')}; do command -v "$c" >/dev/null 2>&1 || echo "$c"; done`);
  const missing = r.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  const missingNeeded = missing.filter((m) => cmds.needed.includes(m));
  if (missingNeeded.length) {
    return {
      name, ok: false, detail: `not found on the submit host: ${missingNeeded.join(', ')}`,
      fix: `Make them available in a non-interactive shell there (PATH in ~/.bashrc, or a "module load" in pre_submit_cmds), or fix "scheduler" of the system.`,
    };
  }
  const found = all.filter((c) => !missing.includes(c));
  const note = missing.length ? ` (optional, missing: ${missing.join(', ')}: failure reasons such as TIMEOUT may go unnamed)` : '';
  return { name, ok: true, detail: `found ${found.join(', ')}${note}` };
}

async function checkNode(t: Transport, cfg: SystemConfig): Promise<Check> {
  const name = 'node';
  // Jobs run the system's `commands` (e.g. "module load nodejs") before node; so does this check.
  const setup = cfg.commands.length ? `${cfg.commands.join('\n')}\n` : '';
  const r = await t.exec(`${setup}${cfg.node_command} --version`);
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(r.stdout);
  if (r.code !== 0 || !m) {
    return {
      name, ok: false, detail: `\`${cfg.node_command} --version\` failed: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`,
      fix: `Install Node.js ${MIN_NODE_MAJOR} or newer there, then set "node_command" (or add e.g. "module load nodejs" to "commands") for the system.`,
    };
  }
  const major = Number(m[1]);
  return major >= MIN_NODE_MAJOR
    ? { name, ok: true, detail: `${m[0]} (${cfg.node_command})` }
    : { name, ok: false, detail: `${m[0]} is too old (need ${MIN_NODE_MAJOR} or newer)`, fix: `Point "node_command" at a Node.js ${MIN_NODE_MAJOR}+ binary.` };
}

async function checkRundir(t: Transport, system: System): Promise<Check> {
  const name = 'rundir';
  const dir = system.rundir;
  // An existing dir must take a file; for a missing one (the first job creates it) the nearest
  // existing parent must take a dir. Real writes, not `test -w`, which says yes to root everywhere.
  const script = [
    `d=${shQuote(dir)}`,
    'if [ -d "$d" ]; then f=$(mktemp "$d/.xpr-doctor.XXXXXX") && rm -f -- "$f" && echo writable; exit; fi',
    'p="$d"; while [ ! -e "$p" ]; do p=$(dirname -- "$p"); done',
    'if [ -d "$p" ] && t=$(mktemp -d "$p/.xpr-doctor.XXXXXX" 2>/dev/null) && rmdir -- "$t"; then echo "creatable $p"; else echo "blocked $p"; fi',
  ].join('\n');
  const r = await t.exec(script);
  const out = r.stdout.trim();
  if (out === 'writable') return { name, ok: true, detail: `${dir} is writable` };
  if (out.startsWith('creatable')) return { name, ok: true, detail: `${dir} will be created by the first job (${out.slice(10)} is writable)` };
  return {
    name, ok: false, detail: `cannot write in ${dir}: ${out.startsWith('blocked') ? `${out.slice(8)} is not a writable dir` : r.stderr.trim()}`,
    fix: 'Set "rundir" of the system to a dir you can write (absolute, or relative to the home dir there).',
  };
}

export function renderDoctor(r: DoctorResult, fmt: FormatOptions): string {
  const lines = [`System ${r.system}: ${r.scheduler} on ${r.host ?? 'this machine'}, rundir ${r.rundir}`];
  for (const c of r.checks) {
    lines.push(`${c.ok ? paint('ok  ', 'green', fmt) : paint('FAIL', 'red', fmt)} ${c.name}: ${c.detail}`);
    if (!c.ok && c.fix) lines.push(`     fix: ${c.fix}`);
  }
  lines.push(r.ok ? paint('Ready to run jobs.', 'green', fmt) : paint('Not ready: fix the failures above and run xpr doctor again.', 'red', fmt));
  return lines.join('\n');
}
