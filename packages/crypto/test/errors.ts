import { expect } from 'vitest';
import { type CryptoErrorCode, isCryptoError } from '../src/index.js';

/** Asserts that `fn` throws a CryptoError with `code` and returns it, for message checks. */
export function expectCryptoError(fn: () => unknown, code: CryptoErrorCode): Error {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a CryptoError ${code}`).toBeInstanceOf(Error);
  expect((caught as { code?: unknown }).code).toBe(code);
  expect(isCryptoError(caught, code)).toBe(true);
  return caught as Error;
}

/** The async counterpart of expectCryptoError. */
export async function expectCryptoErrorAsync(
  fn: () => Promise<unknown>,
  code: CryptoErrorCode,
): Promise<Error> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a CryptoError ${code}`).toBeInstanceOf(Error);
  expect((caught as { code?: unknown }).code).toBe(code);
  return caught as Error;
}
