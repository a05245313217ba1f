import { expect } from 'vitest';
import { FileError } from '../src/index.js';

/** What a test expects of an operation that must fail: a FileError (a success fails the test). */

/** The FileError that `operation` (a promise, or a function that throws or returns one) fails with. */
export async function errorOf(operation: Promise<unknown> | (() => unknown)): Promise<FileError> {
  try {
    await (typeof operation === 'function' ? operation() : operation);
  } catch (error) {
    expect(error).toBeInstanceOf(FileError);
    return error as FileError;
  }
  throw new Error('expected a FileError, but the operation succeeded');
}

/** The code of the FileError that `operation` fails with. */
export async function codeOf(operation: Promise<unknown> | (() => unknown)): Promise<string> {
  return (await errorOf(operation)).code;
}

/** Expects `operation` to fail with a FileError of `code`; returns it. */
export async function expectCode(operation: Promise<unknown>, code: string): Promise<FileError> {
  const error = await errorOf(operation);
  expect(error.code).toBe(code);
  return error;
}
