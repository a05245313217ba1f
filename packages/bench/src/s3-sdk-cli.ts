/**
 * The AWS SDK's own transfer of one file to or from S3, as a process of its own so that the bench
 * times it the way it times a ferry command (start to exit):
 *
 *   node s3-sdk-cli.js put FILE KEY     lib-storage's multipart Upload (8 MiB parts, 4 at once)
 *   node s3-sdk-cli.js get KEY FILE     one GetObject streamed to the file
 *
 * The endpoint, bucket and credentials come from S3_ENDPOINT, S3_BUCKET and the SDK's usual variables.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { isEntryPoint } from './entry.js';

export const SDK_PART_SIZE = 8 * 1024 * 1024;
export const SDK_QUEUE_SIZE = 4;

async function main(argv: readonly string[]): Promise<void> {
  const [op, from, to] = argv;
  const bucket = process.env.S3_BUCKET;
  if ((op !== 'put' && op !== 'get') || from === undefined || to === undefined || bucket === undefined) {
    throw new Error('usage: s3-sdk-cli.js put FILE KEY | get KEY FILE (with S3_ENDPOINT and S3_BUCKET set)');
  }
  const client = new S3Client({
    endpoint: process.env.S3_ENDPOINT,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const started = performance.now();
  let bytes: number;
  if (op === 'put') {
    bytes = (await stat(from)).size;
    await new Upload({
      client,
      params: { Bucket: bucket, Key: to, Body: createReadStream(from, { highWaterMark: 1024 * 1024 }) },
      partSize: SDK_PART_SIZE,
      queueSize: SDK_QUEUE_SIZE,
    }).done();
  } else {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: from }));
    await pipeline(out.Body as Readable, createWriteStream(to));
    bytes = out.ContentLength ?? 0;
  }
  client.destroy();
  process.stdout.write(
    `${JSON.stringify({ type: 'done', op, bytes, seconds: (performance.now() - started) / 1000 })}\n`,
  );
}

if (isEntryPoint(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`s3-sdk-cli: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
