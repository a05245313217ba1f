import { describe, expect, it } from 'vitest';
import { FileError } from '../src/index.js';
import { isS3Url, parseS3Url, showLocation } from '../src/s3/location.js';

describe('s3://BUCKET[/PREFIX] addresses', () => {
  it('name a bucket and a prefix below which the files are', () => {
    expect(parseS3Url('s3://files')).toEqual({ bucket: 'files', prefix: '' });
    expect(parseS3Url('s3://files/')).toEqual({ bucket: 'files', prefix: '' });
    expect(parseS3Url('s3://files/ferry/team a')).toEqual({ bucket: 'files', prefix: 'ferry/team a/' });
    expect(parseS3Url('s3://files/ferry/')).toEqual({ bucket: 'files', prefix: 'ferry/' });
    expect(showLocation(parseS3Url('s3://files/ferry/'))).toBe('s3://files/ferry');
    expect(isS3Url('s3://files')).toBe(true);
    expect(isS3Url('/srv/files')).toBe(false);
  });

  it('refuse what is not one, and a prefix that would reach outside itself (EINVAL)', () => {
    for (const bad of [
      'files',
      's3://',
      's3://a',
      's3://has space',
      's3://files/../other',
      's3://files//x',
      's3://files/./x',
    ]) {
      let error: unknown;
      try {
        parseS3Url(bad);
      } catch (e) {
        error = e;
      }
      expect(error, bad).toBeInstanceOf(FileError);
      expect((error as FileError).code, bad).toBe('EINVAL');
    }
  });
});
