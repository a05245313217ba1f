import { readFileSync } from 'node:fs';

/**
 * The MTU of network interface `name` as Linux reports it (/sys/class/net/NAME/mtu), or undefined
 * where it cannot be read (another system, no such interface). The commands hand this to the
 * transport, which touches no files itself, for path MTU discovery: Node cannot set the
 * don't-fragment bit, so probes must stay within the interface's MTU.
 */
export function interfaceMtu(name: string): number | undefined {
  // An interface's name is one path component (the kernel allows no '/'); anything else is not one.
  if (name === '' || name === '.' || name === '..' || /[/\0]/.test(name)) return undefined;
  try {
    const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
    return Number.isInteger(mtu) && mtu >= 576 ? mtu : undefined;
  } catch {
    return undefined;
  }
}
