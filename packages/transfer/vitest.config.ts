import { defineProject } from 'vitest/config';
import { loadTolerantTimeouts } from '../../vitest.shared.js';

export default defineProject({
  test: {
    name: 'transfer',
    include: ['test/**/*.test.ts'],
    ...loadTolerantTimeouts,
  },
});
