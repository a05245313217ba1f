import { describe, expect, it } from 'vitest';
import { parseDuration } from '../src/cli.js';

describe('ferry-server options', () => {
  it('reads durations for --partial-ttl and --timeout', () => {
    expect(parseDuration('--partial-ttl', '24h')).toBe(86_400_000);
    expect(parseDuration('--partial-ttl', '90')).toBe(90_000);
    expect(parseDuration('--timeout', '2.5s')).toBe(2500);
    expect(() => parseDuration('--timeout', 'soon')).toThrow(/invalid --timeout/);
  });
});
