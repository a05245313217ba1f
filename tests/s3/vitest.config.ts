import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    // `slow-` keeps it out of `pnpm test:fast`; `pnpm test` (CI) runs it.
    name: 'slow-s3',
    include: ['test/**/*.test.ts'],
    // One Ceph cluster for every file (started once, ~15 s); files one at a time on a 2-core machine.
    globalSetup: ['./test/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
