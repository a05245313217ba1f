/**
 * A throwaway Ceph RADOS Gateway for the bench (`--storage s3`) and the S3 tests (tests/s3): one way to
 * start a cluster with scripts/ceph/start.sh (or reuse one already running), read how to reach it, make
 * a bucket in it, and stop it. `@ferry/bench/ceph`, free of the bench itself.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

const run = promisify(execFile);
const CEPH_SCRIPTS = fileURLToPath(new URL('../../../scripts/ceph/', import.meta.url));

/** A Ceph RADOS Gateway on 127.0.0.1 (scripts/ceph) with a bucket made in it. */
export interface CephGateway {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
  /** Stops the cluster, unless it was one already running. */
  stop(): Promise<void>;
}

/** scripts/ceph/start.sh failed: its exit code (3: Ceph is not installed) and what it said. */
export class CephStartFailure extends Error {
  constructor(
    readonly exitCode: unknown,
    /** start.sh's stderr, or the failure's own message where it printed nothing. */
    readonly detail: string,
  ) {
    super(`the Ceph cluster did not start: ${detail}`);
  }
}

/**
 * The gateway of a throwaway Ceph cluster started now (scripts/ceph/start.sh, in a new directory named
 * with `dirPrefix`), or of the one already running in `reuse`, with `bucket` made in it. The bench and
 * the S3 tests (tests/s3) both start theirs here. CephStartFailure if the cluster does not start.
 */
export async function startCephGateway(options: {
  reuse?: string | undefined;
  dirPrefix: string;
  bucket: string;
  /** Told just before a cluster is started (not when one is reused). */
  onStart?: () => void;
}): Promise<CephGateway> {
  const dir = options.reuse ?? (await mkdtemp(options.dirPrefix));
  if (options.reuse === undefined) {
    options.onStart?.();
    try {
      await run(join(CEPH_SCRIPTS, 'start.sh'), [dir], { timeout: 240_000 });
    } catch (error) {
      const e = error as { code?: unknown; stderr?: string; message: string };
      throw new CephStartFailure(e.code, e.stderr?.trim() || e.message);
    }
  }
  const vars = Object.fromEntries(
    (await readFile(join(dir, 'env'), 'utf8'))
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const gateway: CephGateway = {
    endpoint: vars.S3_ENDPOINT ?? '',
    accessKeyId: vars.AWS_ACCESS_KEY_ID ?? '',
    secretAccessKey: vars.AWS_SECRET_ACCESS_KEY ?? '',
    region: vars.AWS_REGION ?? 'us-east-1',
    bucket: options.bucket,
    stop: async () => {
      if (options.reuse === undefined) await run(join(CEPH_SCRIPTS, 'stop.sh'), [dir], { timeout: 60_000 });
    },
  };
  const client = new S3Client({
    endpoint: gateway.endpoint,
    region: gateway.region,
    forcePathStyle: true,
    credentials: { accessKeyId: gateway.accessKeyId, secretAccessKey: gateway.secretAccessKey },
  });
  await client.send(new CreateBucketCommand({ Bucket: gateway.bucket })).catch((error: unknown) => {
    if ((error as { name?: string }).name !== 'BucketAlreadyOwnedByYou') throw error;
  });
  client.destroy();
  return gateway;
}
