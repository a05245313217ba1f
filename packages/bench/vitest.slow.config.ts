import { defineProject } from 'vitest/config';
import { loadTolerantTimeouts } from '../../vitest.shared.js';

/** The bench run for real (the bins, sshd, the seed's client): `pnpm test:fast` skips `slow-*` projects. */
export default defineProject({
  test: {
    name: 'slow-bench',
    include: ['test/**/*.slow.test.ts'],
    ...loadTolerantTimeouts,
  },
});
