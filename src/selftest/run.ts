// Running the selftest cases on one system: first `xpr doctor`'s checks (a system that cannot run a
// job at all fails there, with its fix, instead of eight times over), then each case in turn, timed,
// then its jobs cancelled and its remote dirs removed unless they are to be kept.
import { RemoteInfo, type RemoteInfoFields } from '../autopara/remoteinfo.js';
import { doctor } from '../cli/commands/doctor.js';
import type { StartOptions } from '../job/job.js';
import { shQuote } from '../util/shell.js';
import { CaseFailure, CASES, type CaseContext } from './cases.js';
import type { SelftestProject } from './project.js';

export type CaseStatus = 'ok' | 'FAIL' | 'skipped';

export interface CaseOutcome {
  case: string;
  title: string;
  status: CaseStatus;
  seconds: number;
  /** What was seen (ok), what failed (FAIL) or why not run (skipped). */
  detail: string;
  /** The job dir to look in, for a failure. */
  jobDir?: string;
  /** What to do about a failure, when xpr knows. */
  fix?: string;
}

export interface SystemOutcome {
  system: string;
  host: string | null;
  scheduler: string;
  /** False when the system could not be reached (exit code 3). */
  reachable: boolean;
  cases: CaseOutcome[];
}

export interface SystemRun {
  sp: SelftestProject;
  system: string;
  /** Extra RemoteInfo fields (--remote-info, XPR_SELFTEST_REMOTE_INFO, WFL_PYTEST_EXPYRE_INFO). */
  extra: Record<string, unknown>;
  slow: boolean;
  keep: boolean;
}

/** How long a selftest waits for one job unless the extra fields give a `timeout`. */
const DEFAULT_WAIT = 900;

/** The RemoteInfo of the selftest's jobs on `system`: one core for 5 minutes, plus the user's fields. */
export function selftestInfo(system: string, extra: Record<string, unknown>): RemoteInfo {
  const base: Record<string, unknown> = { sys_name: system, resources: { num_cores: 1, max_time: '5m' }, partial_node: true, timeout: DEFAULT_WAIT };
  const resources = extra['resources'];
  const merged = {
    ...base, ...extra, sys_name: system,
    // Extra resources add to the defaults (e.g. only "partitions"), as a partition or account would.
    ...(resources && typeof resources === 'object' && !Array.isArray(resources) ? { resources: { ...(base['resources'] as object), ...resources } } : {}),
  };
  return new RemoteInfo(merged as unknown as RemoteInfoFields, { where: `selftest of ${system}` });
}

export async function runSystem(run: SystemRun): Promise<SystemOutcome> {
  const { sp, system } = run;
  const t0 = Date.now();
  const pre = await doctor({ cwd: sp.dir, env: sp.env, system });
  const outcome: SystemOutcome = { system, host: pre.host, scheduler: pre.scheduler, reachable: true, cases: [] };
  const failed = pre.checks.filter((c) => !c.ok);
  outcome.cases.push({
    case: 'doctor', title: 'xpr doctor checks', status: failed.length ? 'FAIL' : 'ok', seconds: (Date.now() - t0) / 1000,
    detail: failed.length ? failed.map((c) => `${c.name}: ${c.detail}`).join('\n') : pre.checks.map((c) => c.name).join(', '),
    ...(failed.length ? { fix: failed.map((c) => c.fix).filter(Boolean).join('\n') } : {}),
  });
  if (pre.problems.some((p) => p.unreachable)) outcome.reachable = false;
  if (failed.length) {
    const why = outcome.reachable ? 'not run: fix the failed doctor check first' : 'not run: the system cannot be reached';
    for (const c of CASES) outcome.cases.push({ case: c.id, title: c.title, status: 'skipped', seconds: 0, detail: why });
    return outcome;
  }

  const info = selftestInfo(system, run.extra);
  const ctx: CaseContext = {
    project: sp.project, dir: sp.dir, env: sp.env, system, scheduler: pre.scheduler, info,
    start: startOptions(info),
    wait: { timeout: Number.isFinite(info.timeout) ? info.timeout : DEFAULT_WAIT, checkInterval: info.check_interval ?? 2 },
  };
  try {
    for (const c of CASES) {
      if (c.slow && !run.slow) {
        outcome.cases.push({ case: c.id, title: c.title, status: 'skipped', seconds: 0, detail: 'takes minutes: run with --slow' });
        continue;
      }
      const t0 = Date.now();
      try {
        const detail = await c.run(ctx);
        outcome.cases.push({ case: c.id, title: c.title, status: 'ok', seconds: (Date.now() - t0) / 1000, detail });
      } catch (err) {
        const jobDir = err instanceof CaseFailure ? err.jobDir : undefined;
        outcome.cases.push({
          case: c.id, title: c.title, status: 'FAIL', seconds: (Date.now() - t0) / 1000,
          detail: err instanceof Error ? err.message : String(err), ...(jobDir ? { jobDir } : {}),
        });
      }
    }
  } finally {
    await cleanUp(run);
  }
  return outcome;
}

function startOptions(info: RemoteInfo): StartOptions {
  return {
    system: info.sys_name, resources: info.resources, headerExtra: info.header_extra, exactFit: info.exact_fit,
    ...(info.partial_node !== undefined ? { partialNode: info.partial_node } : {}),
  };
}

/** Stop what is still queued or running, and (unless kept) remove the project's dir on the system. */
async function cleanUp(run: SystemRun): Promise<void> {
  const { project } = run.sp;
  const system = project.system(run.system);
  const left = project.store.list({ status: ['submitted', 'started'] })
    .filter((r) => r.system === run.system).map((r) => r.remoteId).filter((id): id is string => !!id);
  if (left.length) await system.cancel(left).catch(() => undefined);
  // Jobs of the built-in system run in the stage dirs, which go with the selftest's project dir.
  if (!run.keep && !system.inPlace) await system.transport.exec(`rm -rf -- ${shQuote(system.rundir)}`).catch(() => undefined);
}
