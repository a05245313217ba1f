import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDiskStorage } from '../src/index.js';
import { storageConformance } from './conformance.js';

storageConformance('LocalDiskStorage', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ferry-conformance-'));
  return {
    storage: await LocalDiskStorage.open(root),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});
