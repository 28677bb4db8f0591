// The scheduler contract (suite.ts) over the test cluster's schedulers on this account: SLURM, Grid
// Engine and Torque (SLURM's wrappers). The backends that need no daemon are in contract-local.test.ts.
import { clusterBackends } from './backends.js';
import { defineContract } from './suite.js';

await defineContract(clusterBackends());
