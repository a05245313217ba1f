import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { MIN_PART_SIZE, S3Storage } from '../../../packages/storage/src/s3/index.js';
import { emptyPrefix, freshPrefix, s3, s3Client, storeOptions } from './s3-env.js';

// What an S3 upload leaves in the bucket, beyond what the conformance suite can see through the
// Storage interface: multipart uploads are invisible to list() and held() once abandoned.
describe.skipIf(s3 === null)('S3Storage uploads on Ceph RGW', () => {
  const env = s3!;
  const prefix = freshPrefix('uploads');
  afterAll(() => emptyPrefix(env, prefix));

  async function multipartUploadsUnder(p: string): Promise<string[]> {
    const client = s3Client(env);
    try {
      const out = await client.send(new ListMultipartUploadsCommand({ Bucket: env.bucket, Prefix: p }));
      return (out.Uploads ?? []).map((u) => u.UploadId ?? '');
    } finally {
      client.destroy();
    }
  }

  it('an upload of several parts ended as soon as it opened leaves no multipart upload behind', async () => {
    const storage = await S3Storage.open(storeOptions(env, prefix, { partSize: MIN_PART_SIZE }));
    try {
      const size = 3 * MIN_PART_SIZE;
      for (let i = 0; i < 5; i++) {
        // The upload's multipart upload is being created as it opens; discarding it must wait for
        // that creation and abort what it made.
        const upload = await storage.beginUpload(`ended-${i}.bin`, {
          size,
          blockSize: 65536,
          overwrite: false,
          resume: false,
          identity: 'me',
        });
        await upload.abort({ keep: false });
      }
      expect(await multipartUploadsUnder(prefix)).toEqual([]);
    } finally {
      await storage.close();
    }
  });
});
