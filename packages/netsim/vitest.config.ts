import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'netsim',
    include: ['test/**/*.test.ts'],
  },
});
