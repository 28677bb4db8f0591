// `xpr systems`: the systems jobs can go to, where each is defined (the config.json that set it, or
// built-in), and how many recorded jobs each has; systems that jobs name but no config defines any more
// are listed too, since their jobs cannot be synced until they are.
import { BUILT_IN } from '../../config/load.js';
import { hasDatabase, withView, type CommandContext } from '../common.js';
import { paint, table, type FormatOptions } from '../format.js';

export type SystemsOptions = CommandContext;

export interface SystemRow {
  name: string;
  /** null: this machine. */
  host: string | null;
  scheduler: string;
  partitions: string[];
  rundir: string;
  runsInPlace: boolean;
  /** The config.json that defines it, or 'built-in'. */
  source: string;
  /** Recorded jobs on it. */
  jobs: number;
}

export interface SystemsResult {
  configFiles: string[];
  systems: SystemRow[];
  /** Named by recorded jobs but not configured. */
  unconfigured: { name: string; jobs: number }[];
}

export async function systems(opts: SystemsOptions = {}): Promise<SystemsResult> {
  return withView(opts, (project) => {
    const store = hasDatabase(project) ? project.store : undefined;
    const count = (name: string) => store?.count({ system: [name] }) ?? 0;
    const rows: SystemRow[] = Object.values(project.config.systems).map((s) => ({
      name: s.name,
      host: s.host,
      scheduler: s.scheduler,
      partitions: Object.keys(s.partitions),
      rundir: s.rundir,
      runsInPlace: s.runsInPlace,
      source: project.origins.get(`systems.${s.name}.scheduler`) ?? BUILT_IN,
      jobs: count(s.name),
    }));
    const configured = new Set(rows.map((r) => r.name));
    const unconfigured = (store?.systems() ?? []).filter((n) => !configured.has(n)).map((name) => ({ name, jobs: count(name) }));
    return { configFiles: project.paths.configFiles, systems: rows, unconfigured };
  }, { readonly: true });
}

export function renderSystems(r: SystemsResult, fmt: FormatOptions): string {
  const rows = r.systems.map((s) => [
    s.name, s.host ?? '(this machine)', s.scheduler, s.partitions.join(','),
    s.runsInPlace ? '(in the stage dirs)' : s.rundir, String(s.jobs), s.source,
  ]);
  const out = [table([
    { header: 'system' }, { header: 'host' }, { header: 'scheduler' }, { header: 'partitions' }, { header: 'rundir' },
    { header: 'jobs', right: true }, { header: 'defined in' },
  ], rows, fmt)];
  if (r.unconfigured.length) {
    out.push(paint(`Not configured, but named by recorded jobs: ${r.unconfigured.map((u) => `${u.name} (${u.jobs} jobs)`).join(', ')}`, 'yellow', fmt));
  }
  out.push(r.configFiles.length ? `Config files (merged in this order): ${r.configFiles.join(', ')}` : 'No config.json found: only the built-in system.');
  return out.join('\n');
}
