/** The two commands as built in this workspace, for end-to-end tests (no hooks, no config). */
import { fileURLToPath } from 'node:url';

export const CLIENT_BIN = fileURLToPath(new URL('../../client-cli/bin/ferry.js', import.meta.url));
export const SERVER_BIN = fileURLToPath(new URL('../../server-cli/bin/ferry-server.js', import.meta.url));
/** A preload (node --require) that says on stderr whether a process ended by itself; see the file. */
export const EXIT_PROBE = fileURLToPath(new URL('./exit-probe.cjs', import.meta.url));
