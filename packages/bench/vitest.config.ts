import { defineProject } from 'vitest/config';
import { loadTolerantTimeouts } from '../../vitest.shared.js';

export default defineProject({
  test: {
    name: 'bench',
    include: ['test/**/*.test.ts'],
    // Runs of the bench itself (it spawns the bins and sshd) are the slow project below.
    exclude: ['test/**/*.slow.test.ts'],
    ...loadTolerantTimeouts,
  },
});
