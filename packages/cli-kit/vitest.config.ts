import { defineProject } from 'vitest/config';
import { loadTolerantTimeouts } from '../../vitest.shared.js';

export default defineProject({
  test: {
    name: 'cli-kit',
    include: ['test/**/*.test.ts'],
    ...loadTolerantTimeouts,
    passWithNoTests: true,
  },
});
