// Scheduler registry: the name a system's `scheduler` key gives → its pure scheduler module. An
// unknown name is answered with the known ones.
import { XprError } from '../errors.js';
import { local } from './local.js';
import { pbs, torque } from './pbs.js';
import { sge } from './sge.js';
import { slurm } from './slurm.js';
import type { Scheduler } from './types.js';

// A Map, not an object: a config value such as "constructor" must not find Object.prototype.
const SCHEDULERS = new Map<string, Scheduler>([slurm, pbs, torque, sge, local].map((s) => [s.name, s]));

/** Names `getScheduler` accepts, in the order error messages list them. */
export const schedulerNames: readonly string[] = [...SCHEDULERS.keys()];

export function getScheduler(name: string): Scheduler {
  const s = SCHEDULERS.get(name);
  if (!s) {
    throw new XprError(`Unknown scheduler "${name}" (known: ${schedulerNames.join(', ')})`, {
      hint: 'Set "scheduler" of the system in config.json to one of these.',
    });
  }
  return s;
}
