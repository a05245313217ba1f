import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'cli-kit',
    include: ['test/**/*.test.ts'],
    passWithNoTests: true,
  },
});
