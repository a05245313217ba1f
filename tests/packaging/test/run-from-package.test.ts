/**
 * Each command runs from its own package, as its README says: `pnpm exec ferry --help` in
 * packages/client-cli, and the same through `pnpm --filter` from the repository root. The root
 * package depends on every package that has a bin, so pnpm links the bins into the root's
 * node_modules/.bin, which `pnpm exec` puts on PATH in every package of the workspace.
 */
import { runProcess } from '@ferry/e2e-tests/process';
import { describe, expect, it } from 'vitest';
import { binsOf, describeResult, REPO_ROOT, workspacePackages } from './workspace.js';

// pnpm starts slowly on a loaded machine.
const COMMAND_TIMEOUT_MS = 60_000;

const commands = workspacePackages().flatMap(({ dir, manifest }) =>
  Object.keys(binsOf(manifest)).map((command) => ({ command, dir, name: manifest.name })),
);

describe('every command runs from its own package', () => {
  it('finds ferry and ferry-server', () => {
    expect(commands.map((c) => c.command)).toEqual(expect.arrayContaining(['ferry', 'ferry-server']));
  });

  for (const { command, dir, name } of commands) {
    it(
      `pnpm exec ${command} --help, in ${name}'s directory and through --filter from the root`,
      async () => {
        for (const [cwd, args] of [
          [dir, ['exec', command, '--help']],
          [REPO_ROOT, ['--filter', name, 'exec', command, '--help']],
        ] as const) {
          const result = await runProcess('pnpm', args, { cwd, timeoutMs: COMMAND_TIMEOUT_MS });
          expect(result.code, describeResult(`(cd ${cwd} && pnpm ${args.join(' ')})`, result)).toBe(0);
          expect(result.stdout).toContain('Usage');
        }
      },
      COMMAND_TIMEOUT_MS * 2,
    );
  }
});
