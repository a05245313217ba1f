/**
 * The package graph of docs/ARCHITECTURE.md ("The packages and their arrows"), checked: each package
 * depends on (package.json) and imports (its src/) only what the table lets it, no cycle forms, and
 * the layers that must not touch files or sockets (protocol, transport, storage) import none of the
 * Node modules for them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** What each package may import at run time (ARCHITECTURE.md's table), ferry packages only. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  '@ferry/protocol': [],
  '@ferry/crypto': [],
  '@ferry/netsim': [],
  '@ferry/cli-kit': [],
  '@ferry/transport': ['@ferry/protocol', '@ferry/crypto'],
  '@ferry/storage': ['@ferry/protocol'],
  '@ferry/transfer': ['@ferry/protocol', '@ferry/storage', '@ferry/transport'],
  '@ferry/server-cli': [
    '@ferry/protocol',
    '@ferry/crypto',
    '@ferry/transport',
    '@ferry/storage',
    '@ferry/transfer',
    '@ferry/cli-kit',
  ],
  '@ferry/client-cli': [
    '@ferry/protocol',
    '@ferry/crypto',
    '@ferry/transport',
    '@ferry/storage',
    '@ferry/transfer',
    '@ferry/cli-kit',
  ],
  '@ferry/bench': ['@ferry/netsim', '@ferry/crypto'],
};

/** Node modules a package's src/ must never import: the sans-I/O layers stay that way. */
const NEVER_NODE: Record<string, readonly string[]> = {
  '@ferry/protocol': ['node:fs', 'node:fs/promises', 'node:dgram', 'node:net'],
  '@ferry/transport': ['node:fs', 'node:fs/promises'],
  '@ferry/storage': ['node:dgram'],
  '@ferry/netsim': ['node:fs', 'node:fs/promises', 'node:dgram'],
};

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
}

const packages = readdirSync(join(ROOT, 'packages')).map((dir) => ({
  dir: join(ROOT, 'packages', dir),
  manifest: JSON.parse(readFileSync(join(ROOT, 'packages', dir, 'package.json'), 'utf8')) as Manifest,
}));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.[cm]?ts$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Every module specifier a source file imports or re-exports (static and dynamic, and require). */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;
  for (const match of text.matchAll(pattern)) found.push(match[1]!);
  return found;
}

const ferryName = (specifier: string): string | undefined => /^(@ferry\/[a-z-]+)/.exec(specifier)?.[1];

describe('the package graph of docs/ARCHITECTURE.md', () => {
  it('covers every package in packages/', () => {
    expect(packages.map((p) => p.manifest.name).sort()).toEqual(Object.keys(MAY_IMPORT).sort());
  });

  for (const { dir, manifest } of packages) {
    it(`${manifest.name} depends on and imports only what its row allows`, () => {
      const allowed = new Set(MAY_IMPORT[manifest.name] ?? []);
      const deps = Object.keys(manifest.dependencies ?? {}).filter((d) => d.startsWith('@ferry/'));
      expect(
        deps.filter((d) => !allowed.has(d)),
        'run-time dependencies',
      ).toEqual([]);
      const bad: string[] = [];
      for (const file of sourceFiles(join(dir, 'src'))) {
        for (const specifier of specifiers(file)) {
          const target = ferryName(specifier);
          if (target !== undefined && target !== manifest.name && !allowed.has(target))
            bad.push(`${file.slice(ROOT.length)} imports ${specifier}`);
          if ((NEVER_NODE[manifest.name] ?? []).includes(specifier))
            bad.push(`${file.slice(ROOT.length)} imports ${specifier}`);
        }
      }
      expect(bad).toEqual([]);
    });
  }

  it('has no cycle: every package can be built after what it imports', () => {
    const order: string[] = [];
    const remaining = new Map(Object.entries(MAY_IMPORT));
    for (let round = 0; remaining.size > 0 && round < 100; round++) {
      for (const [name, imports] of remaining) {
        if (imports.every((i) => order.includes(i))) {
          order.push(name);
          remaining.delete(name);
        }
      }
    }
    expect([...remaining.keys()]).toEqual([]);
  });
});
