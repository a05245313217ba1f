import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The published Fernet vectors, copied into the repo so tests never read outside it.
export const vectorDir = resolve(dirname(fileURLToPath(import.meta.url)), 'vectors');
// The shared originals (outside the repo), only used to check that the copies are unchanged.
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const sharedVectorDir = resolve(repoRoot, '../shared/vectors/fernet');
export const sharedVectorsPresent = existsSync(sharedVectorDir);

export interface GenerateVector {
  token: string;
  now: string;
  iv: number[];
  src: string;
  secret: string;
}
export interface VerifyVector {
  token: string;
  now: string;
  ttl_sec: number;
  src: string;
  secret: string;
}
export interface InvalidVector {
  desc: string;
  token: string;
  now: string;
  ttl_sec: number;
  secret: string;
}

function load<T>(name: string): T[] {
  return JSON.parse(readFileSync(resolve(vectorDir, name), 'utf8')) as T[];
}

export const generateVectors = load<GenerateVector>('generate.json');
export const verifyVectors = load<VerifyVector>('verify.json');
export const invalidVectors = load<InvalidVector>('invalid.json');

/** Vector times are ISO 8601 with an offset; the API takes unix seconds. */
export function unixSeconds(iso: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad vector time ${iso}`);
  return ms / 1000;
}
