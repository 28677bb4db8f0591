// `xpr config [prefix]`: the configuration xpr runs with — every config.json merged, defaults filled
// in — one value per line with the file it came from ('built-in' for defaults), so that "why does it
// use that partition" has an answer.
import { isPlainObject } from '../../config/merge.js';
import { BUILT_IN } from '../../config/load.js';
import { withView, type CommandContext } from '../common.js';
import { paint, table, type FormatOptions } from '../format.js';

export interface ConfigOptions extends CommandContext {
  /** Only keys starting with this dotted prefix, e.g. `systems.cluster`. */
  prefix?: string;
}

export interface ConfigValue {
  /** Dotted key path. */
  key: string;
  /** The value (times in seconds, memory in kB; null for "no limit"). */
  value: unknown;
  source: string;
  /** Set for a value that means more than it shows (null max_time: no limit). */
  note?: string;
}

export interface ConfigResult {
  rootDir: string;
  dbPath: string;
  /** EXPYRE_ROOT chose the project dir. */
  fromEnv: boolean;
  configFiles: string[];
  values: ConfigValue[];
}

// Derived per system, not read from any file.
const DERIVED = new Set(['name', 'runsInPlace']);

export async function config(opts: ConfigOptions = {}): Promise<ConfigResult> {
  return withView(opts, (project) => {
    const values: ConfigValue[] = [];
    const visit = (v: unknown, at: string[]): void => {
      if (isPlainObject(v)) {
        const inSystem = at.length === 2 && at[0] === 'systems';
        for (const [k, child] of Object.entries(v)) {
          if (child === undefined || (inSystem && DERIVED.has(k))) continue;
          visit(child, [...at, k]);
        }
        return;
      }
      const key = at.join('.');
      const source = project.origins.get(key) ?? BUILT_IN;
      values.push(v === Number.POSITIVE_INFINITY ? { key, value: null, source, note: 'no limit' } : { key, value: v, source });
    };
    visit(project.config, []);
    const prefix = opts.prefix;
    const picked = prefix ? values.filter((v) => v.key === prefix || v.key.startsWith(`${prefix}.`)) : values;
    return {
      rootDir: project.paths.rootDir, dbPath: project.paths.dbPath, fromEnv: project.paths.fromEnv,
      configFiles: project.paths.configFiles, values: picked,
    };
  }, { readonly: true });
}

export function renderConfig(r: ConfigResult, fmt: FormatOptions): string {
  const head = [
    `project dir: ${r.rootDir}${r.fromEnv ? ' (from EXPYRE_ROOT)' : ''}`,
    `job database: ${r.dbPath}`,
    r.configFiles.length ? `config files, merged in this order: ${r.configFiles.join(', ')}` : 'config files: none (built-in defaults only)',
    '',
  ];
  const rows = r.values.map((v) => [v.key, `${JSON.stringify(v.value)}${v.note ? ` (${v.note})` : ''}`, v.source]);
  const body = rows.length
    ? table([{ header: 'key' }, { header: 'value' }, { header: 'from', colour: (t) => (t === BUILT_IN ? 'dim' : undefined) }], rows, fmt)
    : paint('(no matching keys)', 'dim', fmt);
  return head.join('\n') + body;
}
