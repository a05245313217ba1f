import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: ['packages/*', 'packages/bench/vitest.slow.config.ts', 'tests/*'],
  },
});
