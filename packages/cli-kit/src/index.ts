/**
 * @ferry/cli-kit: what the `ferry` and `ferry-server` commands share — argument parsing without
 * cac's number coercion, the usage error (exit 2), and the interface MTU they hand the transport.
 * Kept free of the protocol and transport packages so that parsing and --help stay instant.
 */
export * from './argv.js';
export { interfaceMtu } from './interface-mtu.js';
export { outputClosed, quietOnClosedOutput } from './runtime.js';
export * from './usage.js';
