import { describe } from 'vitest';
import { MIN_PART_SIZE, S3Storage } from '../../../packages/storage/src/s3/index.js';
import { storageConformance } from '../../../packages/storage/test/conformance.js';
import { emptyPrefix, freshPrefix, s3, storeOptions } from './s3-env.js';

// The store from the package's sources, as the suite itself (its FileError is the same class).
// Parts of S3's smallest size keep the resume tests' files small (about 30 MiB).
describe.skipIf(s3 === null)('on Ceph RGW', () => {
  storageConformance('S3Storage', async () => {
    const env = s3!;
    const prefix = freshPrefix('conformance');
    return {
      storage: await S3Storage.open(storeOptions(env, prefix, { partSize: MIN_PART_SIZE })),
      heldUnitBytes: MIN_PART_SIZE,
      cleanup: () => emptyPrefix(env, prefix),
    };
  });
});
