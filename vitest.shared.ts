/**
 * Timeouts every test project uses. Vitest's defaults (5 s a test, 10 s a hook) are too tight on a
 * busy machine: property tests that take 2 s alone took 9–13 s with two cores at load 15. A test that
 * hangs still fails, a minute later. Tests that start processes set longer ones themselves.
 */
export const loadTolerantTimeouts = { testTimeout: 60_000, hookTimeout: 60_000 } as const;
