import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'transfer',
    include: ['test/**/*.test.ts'],
  },
});
