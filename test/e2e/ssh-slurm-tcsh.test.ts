// The SSH + SLURM end-to-end suite as a cluster account whose login shell is tcsh, which reads
// every command xpr sends with csh syntax before anything else sees it.
import { defineSshSlurmSuite } from './ssh-slurm.suite.js';

await defineSshSlurmSuite('xpr-tcsh');
