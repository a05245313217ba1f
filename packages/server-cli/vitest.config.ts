import { defineProject } from 'vitest/config';
import { loadTolerantTimeouts } from '../../vitest.shared.js';

export default defineProject({
  test: {
    name: 'server-cli',
    include: ['test/**/*.test.ts'],
    ...loadTolerantTimeouts,
  },
});
