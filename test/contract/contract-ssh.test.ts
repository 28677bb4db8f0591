// The scheduler contract (suite.ts) over SSH in a user's shape: SLURM reached through the test sshd
// as each cluster account (bash and tcsh login shells), with a new user's config (no rundir).
import { SSH_BACKENDS } from './backends.js';
import { defineContract } from './suite.js';

await defineContract(SSH_BACKENDS);
