// The scheduler contract (suite.ts) over the backends that need no daemon: the local queue, and PBS
// Professional through the command shim over the local queue.
import { daemonlessBackends } from './backends.js';
import { defineContract } from './suite.js';

await defineContract(daemonlessBackends());
