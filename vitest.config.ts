import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fault-injection suite restarts and freezes the shared test cluster's daemons: it runs on
    // its own, after everything else (vitest.faults.config.ts, `npm run test:faults`).
    exclude: [...configDefaults.exclude, 'test/faults/**'],
    // Job tests spawn real processes and a real scheduler; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
