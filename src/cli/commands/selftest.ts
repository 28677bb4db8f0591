// `xpr selftest [SYSTEMS_REGEXP]`: xpr's scheduler contract on the user's own systems, each as its
// config.json describes it — what ExPyRe users do with `pytest --runremote` and
// EXPYRE_PYTEST_SYSTEMS. The systems are tested at once, each case after the other, in a throw-away
// project under the working dir (src/selftest/project.ts), which is removed afterwards unless --keep.
import { loadConfig } from '../../config/load.js';
import { XprError } from '../../errors.js';
import { makeSelftestProject } from '../../selftest/project.js';
import { runSystem, selftestInfo, type SystemOutcome } from '../../selftest/run.js';
import { splitList, type CommandContext } from '../common.js';
import type { Problem } from '../exit.js';
import { paint, table, type FormatOptions } from '../format.js';

/** Environment variables naming the systems to test when no regexp is given (xpr's, then ExPyRe's). */
export const SYSTEMS_VARS = ['XPR_SELFTEST_SYSTEMS', 'EXPYRE_PYTEST_SYSTEMS'] as const;
/** Environment variables holding extra RemoteInfo fields (xpr's, then wfl's test suite's). */
export const REMOTE_INFO_VARS = ['XPR_SELFTEST_REMOTE_INFO', 'WFL_PYTEST_EXPYRE_INFO'] as const;

export interface SelftestOptions extends CommandContext {
  /** Comma-separated regexps, each matched against the whole system name. */
  systems?: string;
  /** Extra RemoteInfo fields, as JSON. */
  remoteInfo?: string;
  /** Also run the cases that take minutes (TIMEOUT). */
  slow?: boolean;
  /** Keep the selftest's project dir, jobs and remote dirs. */
  keep?: boolean;
}

export interface SelftestResult {
  systems: SystemOutcome[];
  ok: boolean;
  /** The selftest's project dir when kept (--keep, or a failure whose job dir is to be looked at). */
  kept?: string;
  problems: Problem[];
}

export async function selftest(opts: SelftestOptions): Promise<SelftestResult> {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const names = chooseSystems(Object.keys(loadConfig({ cwd, env }).config.systems), opts.systems, env);
  const extra = extraFields(opts.remoteInfo, env);
  // Bad extra fields are the same mistake on every system: say so once, before anything runs.
  for (const name of names) selftestInfo(name, extra);
  const sp = makeSelftestProject(cwd, env);
  let systems: SystemOutcome[] = [];
  let keepLocal = opts.keep ?? false;
  try {
    systems = await Promise.all(names.map((system) => runSystem({ sp, system, extra, slow: opts.slow ?? false, keep: opts.keep ?? false })));
    // A failure names a job dir to look in: it must still be there to be looked at.
    keepLocal ||= systems.some((s) => s.cases.some((c) => c.status === 'FAIL' && c.jobDir));
  } finally {
    if (keepLocal) await sp.project.close();
    else await sp.remove();
  }
  const problems: Problem[] = [];
  for (const s of systems) {
    if (!s.reachable) problems.push({ system: s.system, unreachable: true, message: `system ${s.system} could not be reached` });
    const failed = s.cases.filter((c) => c.status === 'FAIL');
    if (s.reachable && failed.length) {
      problems.push({ system: s.system, unreachable: false, message: `${failed.length} case(s) failed on ${s.system}: ${failed.map((c) => c.case).join(', ')}` });
    }
  }
  return { systems, ok: problems.length === 0, ...(keepLocal ? { kept: sp.dir } : {}), problems };
}

/** The configured systems the regexps (argument, else XPR_SELFTEST_SYSTEMS, else EXPYRE_PYTEST_SYSTEMS) select. */
export function chooseSystems(configured: readonly string[], given: string | undefined, env: NodeJS.ProcessEnv): string[] {
  const source = given !== undefined ? { what: 'SYSTEMS_REGEXP', value: given }
    : SYSTEMS_VARS.map((v) => ({ what: v, value: env[v] })).find((s) => s.value !== undefined && s.value !== '');
  if (!source?.value) return [...configured];
  const patterns = splitList(source.value) ?? [];
  const res = patterns.map((p) => {
    try {
      return new RegExp(`^(?:${p})$`);
    } catch (err) {
      throw new XprError(`${source.what} "${p}" is not a valid regular expression: ${(err as Error).message}`);
    }
  });
  const chosen = configured.filter((n) => res.some((re) => re.test(n)));
  if (chosen.length === 0) {
    throw new XprError(`${source.what} "${source.value}" matches no configured system (configured: ${configured.join(', ')})`, {
      hint: 'Each comma-separated regexp must match a whole system name, e.g. \'cluster.*\' or \'local|big\'.',
    });
  }
  return chosen;
}

/** Extra RemoteInfo fields: --remote-info, else XPR_SELFTEST_REMOTE_INFO, else WFL_PYTEST_EXPYRE_INFO. */
export function extraFields(given: string | undefined, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const source = given !== undefined ? { what: '--remote-info', value: given }
    : REMOTE_INFO_VARS.map((v) => ({ what: v, value: env[v] })).find((s) => s.value !== undefined && s.value.trim() !== '');
  if (!source?.value) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(source.value);
  } catch (err) {
    throw new XprError(`${source.what} is not valid JSON: ${(err as Error).message}`, {
      hint: 'Give RemoteInfo fields as a JSON object, e.g. \'{"header_extra": ["#SBATCH --account=me"], "resources": {"partitions": "short"}}\'.',
    });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new XprError(`${source.what} must be a JSON object of RemoteInfo fields, got ${source.value}`);
  }
  return parsed as Record<string, unknown>;
}

const STATUS_COLOUR = { ok: 'green', FAIL: 'red', skipped: 'yellow' } as const;

export function renderSelftest(r: SelftestResult, fmt: FormatOptions): string {
  const rows = r.systems.flatMap((s) => s.cases.map((c) => [
    s.system, c.title, c.status, c.status === 'skipped' ? '' : c.seconds.toFixed(1),
    c.status === 'FAIL' ? 'see below' : c.detail.split('\n')[0]!,
  ]));
  const lines = [table([
    { header: 'system' }, { header: 'case' },
    { header: 'result', colour: (t) => STATUS_COLOUR[t as keyof typeof STATUS_COLOUR] }, { header: 'secs', right: true }, { header: 'detail' },
  ], rows, fmt)];
  for (const s of r.systems) {
    for (const c of s.cases.filter((x) => x.status === 'FAIL')) {
      lines.push('', `${paint('FAIL', 'red', fmt)} ${s.system}: ${c.title}`);
      for (const l of c.detail.split('\n')) lines.push(`  ${l}`);
      if (c.fix) for (const l of c.fix.split('\n')) lines.push(`  fix: ${l}`);
      if (c.jobDir) lines.push(`  job dir: ${c.jobDir}`);
    }
  }
  const cases = r.systems.flatMap((s) => s.cases);
  const count = (st: string) => cases.filter((c) => c.status === st).length;
  lines.push('', `${r.systems.length} system(s): ${count('ok')} ok, ${count('FAIL')} failed, ${count('skipped')} skipped` +
    (r.ok ? '' : ' — fix the failures above and run xpr selftest again'));
  if (r.kept) lines.push(`Kept the selftest's project (jobs.db, job dirs) in ${r.kept}; remove it with: rm -rf ${r.kept}`);
  return lines.join('\n');
}
