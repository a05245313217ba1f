/**
 * @ferry/storage/s3: S3Storage, ferry's files in an S3 bucket (AWS S3, Ceph RGW, MinIO, any S3 API),
 * shared by several servers. A subpath of its own so that the AWS SDK loads only where it is used.
 */

export { S3File } from './file.js';
export { isS3Url, parseS3Url, type S3Location, showLocation } from './location.js';
export {
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_PART_SIZE,
  S3Storage,
  type S3StorageOptions,
} from './s3-storage.js';
export { MIN_PART_SIZE, partSizeFor, S3Upload } from './upload.js';
