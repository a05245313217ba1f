import { defineProject } from 'vitest/config';
import { loadTolerantTimeouts } from '../../vitest.shared.js';

export default defineProject({
  test: {
    // `slow-` keeps it out of `pnpm test:fast`; `pnpm test` (CI) runs it.
    name: 'slow-packaging',
    include: ['test/**/*.test.ts'],
    ...loadTolerantTimeouts,
  },
});
