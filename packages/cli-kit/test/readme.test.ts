import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

const repository = new URL('../../../', import.meta.url);

describe('the README', () => {
  it('lists every workspace package in its package table', async () => {
    const readme = await readFile(new URL('README.md', repository), 'utf8');
    const table = readme.slice(
      readme.indexOf('\n## Packages\n'),
      readme.indexOf('\n## ', readme.indexOf('\n## Packages\n') + 1),
    );
    const listed = [...table.matchAll(/^\| `(@ferry\/[a-z-]+)` +\|/gm)].map((m) => m[1]);
    const packages = new URL('packages/', repository);
    const names: string[] = [];
    for (const dir of await readdir(packages)) {
      const manifest = await readFile(new URL(`${dir}/package.json`, packages), 'utf8').catch(
        () => undefined,
      );
      if (manifest !== undefined) names.push((JSON.parse(manifest) as { name: string }).name);
    }
    expect(names.length).toBeGreaterThan(0);
    expect(listed.sort()).toEqual(names.sort());
  });
});
