import { defineConfig } from 'vitest/config';

/** Measurements on the simulated network and loopback (`pnpm measure:goodput`): reports, not tests. */
export default defineConfig({
  test: {
    include: ['measure/**/*.measure.ts'],
    testTimeout: 600_000,
  },
});
