import { describe, expect, it } from 'vitest';
import { packageName } from '../src/index.js';

describe('crypto package', () => {
  it('is importable', () => {
    expect(packageName).toBe('@ferry/crypto');
  });
});
