import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'server-cli',
    include: ['test/**/*.test.ts'],
  },
});
