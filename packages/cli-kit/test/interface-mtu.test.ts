import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { interfaceMtu } from '../src/index.js';

describe('interfaceMtu', () => {
  it("reads a Linux interface's MTU (loopback's is at least 1500), and nothing for unknown names", (ctx) => {
    if (process.platform !== 'linux') ctx.skip('Linux reports MTUs in /sys/class/net');
    const loopback = Object.entries(networkInterfaces()).find(([, a]) => a?.some((x) => x.internal));
    expect(loopback).toBeDefined();
    expect(interfaceMtu(loopback![0])).toBeGreaterThanOrEqual(1500);
    expect(interfaceMtu('no-such-interface-0')).toBeUndefined();
  });

  it('takes no name that is not one path component (nothing outside /sys/class/net is read)', () => {
    for (const name of ['', '.', '..', '../lo', 'lo/../lo', 'a\0b'])
      expect(interfaceMtu(name)).toBeUndefined();
  });
});
