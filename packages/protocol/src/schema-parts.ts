import * as z from 'zod';

/** Building blocks shared by the header and message schemas. */
export const u16 = z.int().min(0).max(0xffff);
export const u32 = z.uint32();

/** A byte string of exactly `length` bytes. */
export function bytesOf(length: number) {
  return z.instanceof(Uint8Array).refine((b) => b.length === length, `must be ${length} bytes`);
}

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Well-formed text (no lone surrogates) of minBytes..maxBytes bytes of UTF-8. */
export function utf8String(minBytes: number, maxBytes: number) {
  return z
    .string()
    .refine((s) => !LONE_SURROGATE.test(s), 'must be well-formed Unicode')
    .refine((s) => {
      const n = Buffer.byteLength(s, 'utf8');
      return n >= minBytes && n <= maxBytes;
    }, `must be ${minBytes}..${maxBytes} bytes of UTF-8`);
}
