/**
 * turbo serves `dist` from its cache when a task's inputs hash the same, so every file a build
 * reads must be among those inputs. The TypeScript configs packages extend from outside their own
 * folder (tsconfig.base.json) are not inside any package: changing one must change the hash of
 * every build and typecheck that reads it, or turbo replays a stale build ("FULL TURBO").
 * Checked on a copy of the repository, with `turbo run --dry=json`, so the real tree is untouched.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { runProcess } from '@ferry/e2e-tests/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeResult, REPO_ROOT, workspacePackages } from './workspace.js';

const TIMEOUT_MS = 60_000;
const TURBO = join(REPO_ROOT, 'node_modules', '.bin', 'turbo');

/** Every file a tsconfig extends, directly or through another, by relative path. */
function extendedConfigs(config: string): string[] {
  const { extends: parents } = JSON.parse(readFileSync(config, 'utf8')) as { extends?: string | string[] };
  return [parents ?? []]
    .flat()
    .filter((parent) => parent.startsWith('.'))
    .map((parent) => resolve(dirname(config), parent))
    .flatMap((parent) => [parent, ...extendedConfigs(parent)]);
}

/** Shared config file (relative to the repository) → the packages whose tsconfigs extend it. */
function sharedConfigs(): Map<string, string[]> {
  const shared = new Map<string, string[]>();
  for (const { dir, manifest } of workspacePackages()) {
    for (const config of ['tsconfig.json', 'tsconfig.build.json'].map((name) => join(dir, name))) {
      if (!existsSync(config)) continue;
      for (const parent of extendedConfigs(config)) {
        if (!relative(dir, parent).startsWith('..')) continue;
        const users = shared.get(relative(REPO_ROOT, parent)) ?? [];
        if (!users.includes(manifest.name)) users.push(manifest.name);
        shared.set(relative(REPO_ROOT, parent), users);
      }
    }
  }
  return shared;
}

let copy: string | undefined;

beforeAll(async () => {
  copy = await mkdtemp(join(tmpdir(), 'ferry-turbo-inputs-'));
  // The files git would commit (tracked, or new and not ignored), as they are in the working tree.
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: TIMEOUT_MS,
  });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  const files = listed.stdout.split('\0').filter((file) => file !== '' && existsSync(join(REPO_ROOT, file)));
  for (const file of files) await cp(join(REPO_ROOT, file), join(copy, file));
}, TIMEOUT_MS);

afterAll(async () => {
  if (copy !== undefined) await rm(copy, { recursive: true, force: true });
});

/** Task id (`@ferry/crypto#build`) → the hash turbo would cache its outputs under. */
async function taskHashes(): Promise<Map<string, string>> {
  const result = await runProcess(TURBO, ['run', 'build', 'typecheck', '--dry=json'], {
    cwd: copy!,
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' },
    timeoutMs: TIMEOUT_MS,
  });
  if (result.code !== 0) throw new Error(describeResult('turbo run build typecheck --dry=json', result));
  const { tasks } = JSON.parse(result.stdout) as { tasks: { taskId: string; hash: string }[] };
  return new Map(tasks.map((task) => [task.taskId, task.hash]));
}

describe('turbo inputs', () => {
  const shared = sharedConfigs();

  it('finds the shared TypeScript config', () => {
    expect([...shared.keys()]).toContain('tsconfig.base.json');
  });

  for (const [config, users] of shared) {
    it(
      `changing ${config} changes the hash of every build and typecheck that reads it`,
      async () => {
        const before = await taskHashes();
        await appendFile(join(copy!, config), '\n');
        const after = await taskHashes();
        const tasks = users
          .flatMap((name) => [`${name}#build`, `${name}#typecheck`])
          .filter((id) => before.has(id));
        expect(tasks.length).toBeGreaterThan(0);
        const unchanged = tasks.filter((id) => before.get(id) === after.get(id));
        expect(unchanged, `tasks turbo would replay from its cache after ${config} changed`).toEqual([]);
      },
      TIMEOUT_MS * 3,
    );
  }
});
