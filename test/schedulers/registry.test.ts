import { describe, expect, it } from 'vitest';
import { XprError } from '../../src/errors.js';
import { getScheduler, schedulerNames } from '../../src/schedulers/registry.js';

describe('getScheduler', () => {
  it.each(['slurm', 'pbs', 'torque', 'sge', 'local'])('knows %s', (name) => {
    expect(getScheduler(name).name).toBe(name);
  });

  it('answers an unknown name with the known ones', () => {
    expect(() => getScheduler('lsf')).toThrow(XprError);
    expect(() => getScheduler('lsf')).toThrow('Unknown scheduler "lsf" (known: slurm, pbs, torque, sge, local)');
    expect(schedulerNames).toEqual(['slurm', 'pbs', 'torque', 'sge', 'local']);
  });

  it('does not find Object.prototype members', () => {
    expect(() => getScheduler('constructor')).toThrow(/Unknown scheduler "constructor"/);
    expect(() => getScheduler('__proto__')).toThrow(/Unknown scheduler/);
  });
});
