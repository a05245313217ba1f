import { networkInterfaces } from 'node:os';
import { maxDatagramForMtu } from './core/pmtu.js';

/**
 * The local side of path MTU discovery: the most a datagram from this host can be before the host
 * itself would fragment it. Node offers no way to set the don't-fragment bit, so a probe larger than
 * the interface's MTU would go out in fragments and "succeed", proving nothing: probes stay within
 * the interface's MTU. The transport reads no files: the application says how an interface's MTU is
 * learnt (`interfaceMtu`; on Linux, /sys/class/net/NAME/mtu); where it cannot be, there is no
 * discovery (undefined) and sessions keep the 1,232-byte base.
 */

/** The MTU of the interface named, or undefined when it is not known. */
export type InterfaceMtu = (name: string) => number | undefined;

function unmapped(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * The largest datagram a socket bound to (or sending from) `localAddress` can send unfragmented: the
 * MTU of the interface holding that address, less IP and UDP headers. For a wildcard address ('::',
 * '0.0.0.0'), the largest over the non-loopback interfaces (a server's probes are bounded by its
 * clients' as well). Undefined when no MTU is known, or for loopback.
 */
export function localMaxDatagram(localAddress: string, interfaceMtu: InterfaceMtu): number | undefined {
  const wanted = unmapped(localAddress);
  const wildcard = wanted === '::' || wanted === '0.0.0.0';
  let best: number | undefined;
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.internal) continue;
      if (!wildcard && unmapped(a.address) !== wanted) continue;
      const mtu = interfaceMtu(name);
      if (mtu === undefined) continue;
      const max = maxDatagramForMtu(mtu, a.family === 'IPv6' ? 6 : 4);
      if (best === undefined || max > best) best = max;
    }
  }
  return best;
}
