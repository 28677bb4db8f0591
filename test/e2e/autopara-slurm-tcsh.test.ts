// The autoparallelize SSH + SLURM end-to-end suite as the cluster account whose login shell is tcsh.
import { defineAutoparaSlurmSuite } from './autopara-slurm.suite.js';

await defineAutoparaSlurmSuite('xpr-tcsh');
