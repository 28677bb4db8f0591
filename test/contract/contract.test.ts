// The scheduler contract (suite.ts) over the backends on this account: the local queue, SLURM,
// Grid Engine, Torque (SLURM's wrappers) and PBS Professional (the shim).
import { BACKENDS } from './backends.js';
import { defineContract } from './suite.js';

await defineContract(BACKENDS);
