/**
 * The packages under packages/ as found on disk (so a package added later is checked without
 * editing these tests). Commands run through runProcess of `@ferry/e2e-tests/process`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProcessResult } from '@ferry/e2e-tests/process';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  type?: string;
  license?: string;
  engines?: { node?: string };
  files?: string[];
  main?: string;
  types?: string;
  exports?: unknown;
  bin?: string | Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export interface WorkspacePackage {
  dir: string;
  manifest: Manifest;
}

/** Every directory in packages/ that holds a package.json, sorted by name. */
export function workspacePackages(): WorkspacePackage[] {
  const base = join(REPO_ROOT, 'packages');
  return readdirSync(base, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(base, entry.name, 'package.json')))
    .map((entry) => {
      const dir = join(base, entry.name);
      return { dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest };
    })
    .sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
}

/** A package's commands as name → file (a string `bin` is named after the unscoped package). */
export function binsOf(manifest: Manifest): Record<string, string> {
  if (manifest.bin === undefined) return {};
  if (typeof manifest.bin === 'string') return { [manifest.name.replace(/^@[^/]+\//, '')]: manifest.bin };
  return manifest.bin;
}

/** The dependencies a package needs at run time (what an install of it brings along). */
export function runtimeDependencies(manifest: Manifest): Record<string, string> {
  return { ...manifest.dependencies, ...manifest.optionalDependencies, ...manifest.peerDependencies };
}

/** One line for an assertion message: how a command ended and the tail of what it said. */
export function describeResult(command: string, result: ProcessResult): string {
  const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-15).join('\n');
  return `${command} exited with ${result.code ?? result.signal}:\n${tail}`;
}
