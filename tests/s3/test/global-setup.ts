/**
 * Starts one throwaway Ceph cluster (scripts/ceph/start.sh) for the whole project, makes the test
 * bucket, and provides how to reach it; stops it afterwards. Where Ceph is not installed it says so and
 * provides null: the tests then skip, naming the packages (.ci/run installs them, so CI never skips).
 * FERRY_TEST_CEPH=DIR uses a cluster already started in DIR (quicker runs while developing).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { TestProject } from 'vitest/node';
import type { S3TestEnv } from './s3-env.js';

const run = promisify(execFile);
const scripts = fileURLToPath(new URL('../../../scripts/ceph/', import.meta.url));

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const reused = process.env.FERRY_TEST_CEPH;
  const dir = reused ?? (await mkdtemp(join(tmpdir(), 'ferry-ceph-')));
  const started = Date.now();
  try {
    if (reused === undefined) await run(join(scripts, 'start.sh'), [dir], { timeout: 240_000 });
  } catch (error) {
    const e = error as { code?: unknown; stderr?: string };
    if (e.code === 3) {
      process.stderr.write(`slow-s3: skipping the S3 tests: ${e.stderr?.trim()}\n`);
      project.provide('s3', null);
      return async () => {};
    }
    throw new Error(`the Ceph cluster did not start: ${e.stderr ?? String(error)}`);
  }
  const vars = Object.fromEntries(
    (await readFile(join(dir, 'env'), 'utf8'))
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const env: S3TestEnv = {
    endpoint: vars.S3_ENDPOINT!,
    accessKeyId: vars.AWS_ACCESS_KEY_ID!,
    secretAccessKey: vars.AWS_SECRET_ACCESS_KEY!,
    region: vars.AWS_REGION!,
    bucket: 'ferry-test',
  };
  const client = new S3Client({
    endpoint: env.endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
  });
  await client.send(new CreateBucketCommand({ Bucket: env.bucket })).catch((error: unknown) => {
    if ((error as { name?: string }).name !== 'BucketAlreadyOwnedByYou') throw error;
  });
  client.destroy();
  process.stderr.write(
    `slow-s3: Ceph RGW at ${env.endpoint}, up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  project.provide('s3', env);
  return async () => {
    if (reused === undefined) await run(join(scripts, 'stop.sh'), [dir], { timeout: 60_000 });
  };
}
