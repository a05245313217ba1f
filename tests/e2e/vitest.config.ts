import { defineProject } from 'vitest/config';
import { loadTolerantTimeouts } from '../../vitest.shared.js';

export default defineProject({
  test: {
    // Every file here starts processes or servers: `slow-` keeps them out of `pnpm test:fast`;
    // `pnpm test` (CI) runs them.
    name: 'slow-e2e',
    include: ['test/**/*.test.ts'],
    ...loadTolerantTimeouts,
  },
});
