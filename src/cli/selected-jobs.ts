// What the commands that change the jobs a filter selects share (cancel, rm, fail_job,
// reset_status): their options, and finding those jobs.
import type { JobRecord } from '../store/jobstore.js';
import {
  hasDatabase, knownSystems, requireSelection, selection, type CommandContext, type Confirm, type ProjectView, type SelectOptions,
} from './common.js';

/** Options of a command that asks before it changes the selected jobs. */
export interface ConfirmedSelectOptions extends CommandContext, SelectOptions {
  /** Do not ask (`-y`). */
  yes?: boolean;
  /** How to ask; without it (and without `yes`) the command refuses. */
  confirm?: Confirm;
}

/**
 * The jobs the filter selects, oldest first; undefined when there is no database yet (and so no
 * job). A command that changes jobs needs a filter: without one it is a usage error.
 */
export function selectedJobs(
  project: Pick<ProjectView, 'config' | 'paths' | 'store'>, opts: SelectOptions, command: string,
): JobRecord[] | undefined {
  requireSelection(selection(opts, () => knownSystems(project, undefined)), command);
  if (!hasDatabase(project)) return undefined;
  const store = project.store;
  return store.list(selection(opts, () => knownSystems(project, store)).filter);
}
