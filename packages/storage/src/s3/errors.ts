import { FileError, systemCode } from '../errors.js';

/** What the AWS SDK's errors carry that tells one failure from another. */
interface SdkErrorShape {
  name?: unknown;
  message?: unknown;
  Code?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** The HTTP status of an S3 error response, if the error is one. */
export function s3Status(error: unknown): number | undefined {
  const status = (error as SdkErrorShape | undefined)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The S3 error code (NoSuchKey, AccessDenied, …) or the SDK's error name. */
export function s3Code(error: unknown): string {
  const e = error as SdkErrorShape | undefined;
  if (typeof e?.Code === 'string') return e.Code;
  return typeof e?.name === 'string' ? e.name : '';
}

/** True for "no such key" (404): HEAD answers a bare NotFound, GET a NoSuchKey. */
export function isNotFound(error: unknown): boolean {
  return s3Status(error) === 404 && s3Code(error) !== 'NoSuchBucket' && s3Code(error) !== 'NoSuchUpload';
}

export function isPreconditionFailed(error: unknown): boolean {
  return s3Status(error) === 412 || s3Code(error) === 'PreconditionFailed';
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
]);

/**
 * Maps an error of the AWS SDK to a FileError whose message starts with `what` (e.g. "writing
 * report.pdf"). FileErrors pass through; errors that are neither S3 responses nor network failures
 * (bugs) are rethrown as they are.
 */
export function toS3FileError(error: unknown, what: string, endpoint = 'the object store'): FileError {
  if (error instanceof FileError) return error;
  const options = { cause: error };
  const status = s3Status(error);
  const code = s3Code(error);
  const network = systemCode(error);
  if (network !== undefined && UNREACHABLE.has(network)) {
    return new FileError('EIO', `${what}: cannot reach ${endpoint} (${network})`, options);
  }
  if (code === 'TimeoutError' || code === 'RequestTimeout') {
    return new FileError('EIO', `${what}: ${endpoint} did not answer in time`, options);
  }
  if (status === undefined) {
    if (network !== undefined) return new FileError('EIO', `${what}: ${network}`, options);
    if (code === 'CredentialsProviderError') {
      return new FileError(
        'EACCES',
        `${what}: no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)`,
        options,
      );
    }
    if (error instanceof Error && /region/i.test(error.message) && code === 'Error') {
      return new FileError('EINVAL', `${what}: ${error.message} (set AWS_REGION)`, options);
    }
    throw error;
  }
  switch (code) {
    case 'NoSuchBucket':
      return new FileError('ENOENT', `${what}: the bucket does not exist`, options);
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
    case 'InvalidToken':
    case 'ExpiredToken':
      return new FileError('EACCES', `${what}: the object store refused the credentials (${code})`, options);
    case 'KeyTooLongError':
      return new FileError('ENAMETOOLONG', `${what}: the name is too long for the object store`, options);
    case 'EntityTooLarge':
      return new FileError('ETOOBIG', `${what}: the file is larger than the object store allows`, options);
    case 'QuotaExceeded':
      return new FileError('ENOSPC', `${what}: the bucket's quota is exceeded`, options);
    case 'SlowDown':
      return new FileError('EBUSY', `${what}: the object store asks to slow down; try again`, options);
    case 'BadDigest':
    case 'InvalidDigest':
      return new FileError('EIO', `${what}: data was damaged on the way to the object store`, options);
  }
  if (status === 404) return new FileError('ENOENT', `${what}: no such file or directory`, options);
  if (status === 403)
    return new FileError('EACCES', `${what}: permission denied by the object store`, options);
  if (status === 503) return new FileError('EBUSY', `${what}: the object store is busy; try again`, options);
  const message = typeof (error as SdkErrorShape).message === 'string' ? (error as Error).message : '';
  return new FileError(
    'EIO',
    `${what}: the object store answered ${status}${code !== '' ? ` ${code}` : ''}${message !== '' && message !== code && message !== 'UnknownError' ? ` (${message})` : ''}`,
    options,
  );
}
