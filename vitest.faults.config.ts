import { defineConfig } from 'vitest/config';

// The fault-injection suite: one file at a time, since its tests restart slurmctld and sshd,
// freeze sshd and fill the cluster account's disk, which would break any test running beside them.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
