import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'client-cli',
    include: ['test/**/*.test.ts'],
  },
});
