/**
 * Starts one throwaway Ceph cluster for the whole project (scripts/ceph/start.sh, through
 * startCephGateway of `@ferry/bench/ceph`, as the bench does), makes the test bucket, and provides how
 * to reach it; stops it afterwards. Where Ceph is not installed it says so and provides null: the
 * tests then skip, naming the packages (.ci/run installs them, so CI never skips). FERRY_TEST_CEPH=DIR
 * uses a cluster already started in DIR (quicker runs while developing).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CephGateway, CephStartFailure, startCephGateway } from '@ferry/bench/ceph';
import type { TestProject } from 'vitest/node';
import type { S3TestEnv } from './s3-env.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  let gateway: CephGateway;
  try {
    gateway = await startCephGateway({
      reuse: process.env.FERRY_TEST_CEPH,
      dirPrefix: join(tmpdir(), 'ferry-ceph-'),
      bucket: 'ferry-test',
    });
  } catch (error) {
    if (error instanceof CephStartFailure && error.exitCode === 3) {
      process.stderr.write(`slow-s3: skipping the S3 tests: ${error.detail}\n`);
      project.provide('s3', null);
      return async () => {};
    }
    throw error;
  }
  const env: S3TestEnv = {
    endpoint: gateway.endpoint,
    accessKeyId: gateway.accessKeyId,
    secretAccessKey: gateway.secretAccessKey,
    region: gateway.region,
    bucket: gateway.bucket,
  };
  process.stderr.write(
    `slow-s3: Ceph RGW at ${env.endpoint}, up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  project.provide('s3', env);
  return () => gateway.stop();
}
