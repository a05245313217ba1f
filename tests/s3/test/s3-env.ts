import { randomUUID } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { S3Storage, type S3StorageOptions } from '@ferry/storage/s3';
import { inject } from 'vitest';

/** How the tests reach the Ceph RGW the global setup started. */
export interface S3TestEnv {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    s3: S3TestEnv | null;
  }
}

/** The gateway, or null where Ceph is not installed (the tests skip, as global-setup.ts printed). */
export const s3 = inject('s3');

export function s3Client(env: S3TestEnv): S3Client {
  return new S3Client({
    endpoint: env.endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
  });
}

/** A prefix no other test uses: an empty store. */
export function freshPrefix(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}/`;
}

export function storeOptions(
  env: S3TestEnv,
  prefix: string,
  options: Partial<S3StorageOptions> = {},
): S3StorageOptions {
  return {
    bucket: env.bucket,
    prefix,
    endpoint: env.endpoint,
    forcePathStyle: true,
    region: env.region,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    ...options,
  };
}

export function openStore(
  env: S3TestEnv,
  prefix: string,
  options: Partial<S3StorageOptions> = {},
): Promise<S3Storage> {
  return S3Storage.open(storeOptions(env, prefix, options));
}

/** Every key under `prefix`, hidden ones included. */
export async function keysUnder(env: S3TestEnv, prefix: string): Promise<string[]> {
  const client = s3Client(env);
  const keys: string[] = [];
  try {
    let token: string | undefined;
    for (let page = 0; page < 100; page++) {
      const out = await client.send(
        new ListObjectsV2Command({
          Bucket: env.bucket,
          Prefix: prefix,
          ...(token !== undefined ? { ContinuationToken: token } : {}),
        }),
      );
      for (const object of out.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
      if (out.IsTruncated !== true) break;
      token = out.NextContinuationToken;
    }
  } finally {
    client.destroy();
  }
  return keys;
}

/** Removes every object and multipart upload under `prefix`. */
export async function emptyPrefix(env: S3TestEnv, prefix: string): Promise<void> {
  const client = s3Client(env);
  try {
    const keys = await keysUnder(env, prefix);
    for (let i = 0; i < keys.length; i += 1000) {
      await client.send(
        new DeleteObjectsCommand({
          Bucket: env.bucket,
          Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) },
        }),
      );
    }
    const uploads = await client.send(
      new ListMultipartUploadsCommand({ Bucket: env.bucket, Prefix: prefix }),
    );
    for (const upload of uploads.Uploads ?? []) {
      await client.send(
        new AbortMultipartUploadCommand({ Bucket: env.bucket, Key: upload.Key, UploadId: upload.UploadId }),
      );
    }
  } finally {
    client.destroy();
  }
}
