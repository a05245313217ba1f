import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { maxDatagramForMtu } from './core/pmtu.js';

/**
 * The local side of path MTU discovery: the most a datagram from this host can be before the host
 * itself would fragment it. Node offers no way to set the don't-fragment bit, so a probe larger than
 * the interface's MTU would go out in fragments and "succeed", proving nothing: probes stay within
 * the interface's MTU. Linux reports it in /sys/class/net/NAME/mtu; where it cannot be read, there is
 * no discovery (undefined) and sessions keep the 1,232-byte base.
 */

/** The MTU of interface `name`, or undefined. */
export function interfaceMtu(name: string): number | undefined {
  try {
    const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
    return Number.isInteger(mtu) && mtu >= 576 ? mtu : undefined;
  } catch {
    return undefined;
  }
}

function unmapped(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * The largest datagram a socket bound to (or sending from) `localAddress` can send unfragmented: the
 * MTU of the interface holding that address, less IP and UDP headers. For a wildcard address ('::',
 * '0.0.0.0'), the largest over the non-loopback interfaces (a server's probes are bounded by its
 * clients' as well). Undefined when no MTU can be read, or for loopback.
 */
export function localMaxDatagram(localAddress: string): number | undefined {
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
