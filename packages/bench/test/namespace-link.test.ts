import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The built modules, as the bench runs them (processes start through dist/measure.js), by specifiers
// the type check does not follow, since it runs before the build exists.
const built = (module: string): Promise<unknown> =>
  import(new URL(`../dist/${module}`, import.meta.url).href);
const { locateBins, makeWorkspace, writeRandomFile } = (await built(
  'ferry.js',
)) as typeof import('../src/ferry.js');
const { runNamespaceLink } = (await built('namespace-link.js')) as typeof import('../src/namespace-link.js');
const { listNamespaces, namespaceLinkUnavailable } = (await built(
  'netns.js',
)) as typeof import('../src/netns.js');
const { sshdUnavailable } = (await built('peers/sshd.js')) as typeof import('../src/peers/sshd.js');
const { placeInRoot } = (await built('transfer.js')) as typeof import('../src/transfer.js');

const UNAVAILABLE = namespaceLinkUnavailable();
if (UNAVAILABLE) console.warn(`namespace link scenario test skipped: ${UNAVAILABLE}`);

describe('the real-link scenario (ferry and scp between two network namespaces)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-bench-netns-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('moves a file both ways with ferry in blocks the 1500-byte path carries (1362 bytes, not 1120) and with scp; the namespaces are gone after', async (ctx) => {
    if (UNAVAILABLE) ctx.skip(UNAVAILABLE);
    const ws = await makeWorkspace(dir, locateBins({}), undefined, () => {});
    const path = join(dir, 'source.bin');
    const size = 2 * 1024 * 1024;
    const source = { path, size, sha256: await writeRandomFile(path, size), remote: 'source.bin' };
    await placeInRoot(ws, source);
    const before = await listNamespaces();
    const failures: string[] = [];
    const result = await runNamespaceLink({
      ws,
      source,
      runs: 1,
      skipPeers: false,
      record: (r, label) => {
        if (!r.ok) failures.push(`${label}: ${r.error}`);
        return r;
      },
      log: () => {},
    });
    expect(result.notRun).toBeUndefined();
    expect(failures).toEqual([]);
    const ferry = result.tools.find((t) => t.name === 'ferry')!;
    for (const op of ['put', 'get'] as const) {
      expect(ferry[op].ok).toBe(true);
      expect(ferry[op].blockSize?.median).toBe(1362);
      expect(ferry[op].fraction?.median).toBeGreaterThan(0);
    }
    const scp = result.tools.find((t) => t.name === 'scp')!;
    const noSshd = sshdUnavailable();
    if (noSshd === undefined) {
      expect(scp.put.ok && scp.get.ok).toBe(true);
      expect(result.ferryVsScp.put?.n).toBe(1);
    } else {
      expect(scp.notRun).toBe(noSshd);
    }
    expect(await listNamespaces()).toEqual(before);
  }, 180_000);
});
