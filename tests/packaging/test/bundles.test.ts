import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Each command starts from one CommonJS bundle run through V8's code cache (`@ferry/cli-kit/bundle`),
 * where a dynamic `import()` has no loader and fails at run time: every module, Node's own included,
 * must be imported statically or bundled.
 */
const BUNDLES = ['client-cli', 'server-cli'].map((name) =>
  fileURLToPath(new URL(`../../../packages/${name}/dist/cli.bundle.cjs`, import.meta.url)),
);

describe('the command bundles', () => {
  for (const bundle of BUNDLES) {
    it(`${bundle.split('/packages/')[1]} holds no dynamic import() (run through the code cache, it would fail)`, async () => {
      const source = await readFile(bundle, 'utf8');
      expect(source.match(/\bimport\(/g) ?? []).toEqual([]);
    });
  }
});
