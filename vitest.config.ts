import { configDefaults, defineConfig } from 'vitest/config';

// Three projects, by what a test file needs:
//   unit     nothing but this process and a temp dir (SQLite files, parsers, pure modules), and no
//            build: seconds.
//   local    real jobs and processes on this machine: the local queue and its dispatcher, worker
//            pools, driver processes killed at crash points, the `xpr` command as a process.
//   cluster  the test cluster's daemons: sshd, SLURM, Grid Engine.
// A new file lands in `unit` unless listed below; one that runs jobs belongs in LOCAL_TESTS.

/** Test files that start or use the test cluster (sshd, SLURM, Grid Engine). */
const CLUSTER_TESTS = [
  'test/cluster/**/*.test.ts',
  'test/contract/contract.test.ts',
  'test/contract/contract-ssh.test.ts',
  'test/e2e/**/*.test.ts',
  // These two also have cases on the local system, but start SLURM and sshd as they load.
  'test/remotecall/**/*.test.ts',
  'test/selftest/**/*.test.ts',
  'test/transport/ssh.test.ts',
  // The executor's tests run a real redis-server, worker processes and HTTP; its settings parser
  // needs none of them and stays in `unit` (`!(settings)` is an extglob: every file but that one).
  'test/executor/**/!(settings).test.ts',
];

/** Test files that run real jobs or processes on this machine, but need no cluster daemon. */
const LOCAL_TESTS = [
  'test/autopara/failed-chunk.test.ts',
  'test/autopara/outputs.test.ts',
  'test/autopara/pool.test.ts',
  'test/autopara/remote.test.ts',
  'test/autopara/stack.test.ts',
  'test/cli/db-readonly.test.ts',
  'test/cli/db-rebuild.test.ts',
  'test/cli/jobs.test.ts',
  'test/cli/main.test.ts',
  'test/cli/manage.test.ts',
  'test/clear-errors.test.ts',
  'test/code-identity.test.ts',
  'test/contract/contract-local.test.ts',
  'test/contract/pbs-shim.test.ts',
  'test/died-rerun.test.ts',
  'test/failed-start.test.ts',
  'test/job.test.ts',
  'test/localq.test.ts',
  'test/lost-results.test.ts',
  'test/recovery.test.ts',
  'test/remote-system.test.ts',
  'test/runner-reaper.test.ts',
  'test/script-errors.test.ts',
  'test/store.test.ts',
  'test/submit-safety.test.ts',
  'test/transport/shell.test.ts',
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
          exclude: [...configDefaults.exclude, FAULT_TESTS, ...LOCAL_TESTS, ...CLUSTER_TESTS],
        },
      },
      {
        extends: true,
        test: {
          name: 'local',
          include: LOCAL_TESTS,
          exclude: [...configDefaults.exclude, FAULT_TESTS],
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
