import { FileError } from '../errors.js';
import { parseClientPath } from '../paths.js';

/** Where an S3Storage keeps its files: a bucket, and a prefix ('' or ending in '/') below which they are. */
export interface S3Location {
  bucket: string;
  prefix: string;
}

// S3's bucket names (lower case, digits, '.', '-'; 3 to 63 characters), and the upper case and '_'
// some self-hosted stores still allow.
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$/;

/**
 * Parses `s3://BUCKET[/PREFIX]`. The prefix follows the rules of client paths (no '.', '..' or empty
 * names), so nothing can name a key outside it. EINVAL for anything else.
 */
export function parseS3Url(url: string): S3Location {
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(url);
  if (match === null)
    throw new FileError('EINVAL', `${JSON.stringify(url)} is not an s3://BUCKET[/PREFIX] address`);
  const bucket = match[1] ?? '';
  if (!BUCKET.test(bucket)) {
    throw new FileError(
      'EINVAL',
      `${JSON.stringify(bucket)} is not a bucket name (3 to 63 letters, digits, '.', '-')`,
    );
  }
  const rest = (match[2] ?? '').replace(/\/+$/, '');
  if (rest === '') return { bucket, prefix: '' };
  let path: ReturnType<typeof parseClientPath>;
  try {
    path = parseClientPath(rest);
  } catch (error) {
    throw new FileError('EINVAL', `the prefix of ${url}: ${(error as Error).message}`);
  }
  return { bucket, prefix: `${path.rel}/` };
}

/** `s3://bucket/prefix` for logs. */
export function showLocation(location: S3Location): string {
  return `s3://${location.bucket}${location.prefix === '' ? '' : `/${location.prefix.slice(0, -1)}`}`;
}

/** Whether `text` names an S3 location (s3://…) rather than a directory. */
export function isS3Url(text: string): boolean {
  return text.startsWith('s3://');
}
