import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Test files that start or use the test cluster (sshd, SLURM, Grid Engine): the `cluster` project.
 * Every other test file is in `unit`, which needs no daemon (real local queue jobs, SQLite, shells).
 */
const CLUSTER_TESTS = [
  'test/cluster/**/*.test.ts',
  'test/contract/contract.test.ts',
  'test/contract/contract-ssh.test.ts',
  'test/e2e/**/*.test.ts',
  // These two also have cases on the local system, but start SLURM and sshd as they load.
  'test/remotecall/**/*.test.ts',
  'test/selftest/**/*.test.ts',
  'test/transport/ssh.test.ts',
];

// The fault-injection suite restarts and freezes the shared test cluster's daemons: it runs on its
// own, after everything else (vitest.faults.config.ts, `npm run test:faults`).
const FAULT_TESTS = 'test/faults/**';

export default defineConfig({
  test: {
    // Job tests spawn real processes and a real scheduler; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, FAULT_TESTS, ...CLUSTER_TESTS],
        },
      },
      {
        extends: true,
        test: {
          name: 'cluster',
          include: CLUSTER_TESTS,
          exclude: [...configDefaults.exclude, FAULT_TESTS],
        },
      },
    ],
  },
});
