/** The two commands as built in this workspace, for end-to-end tests (no hooks, no config). */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/**
 * The script Node runs for command `name`, found through the package's manifest, not a path: the file
 * its `bin` names, or, where that is a launcher that is not JavaScript (`ferry`'s /bin/sh script,
 * which only drops NODE_EXTRA_CA_CERTS and runs node on it), the `.js` file beside it. The tests run
 * it with `node` and their own options; tests/packaging runs the installed commands themselves.
 */
function binOf(packageName: string, name: string): string {
  const manifestPath = require.resolve(`${packageName}/package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin: Record<string, string> };
  const bin = manifest.bin[name];
  if (bin === undefined) throw new Error(`${packageName} has no command ${name}`);
  const file = join(dirname(manifestPath), bin);
  return /\.[cm]?js$/.test(file) || !existsSync(`${file}.js`) ? file : `${file}.js`;
}

export const CLIENT_BIN = binOf('@ferry/client-cli', 'ferry');
export const SERVER_BIN = binOf('@ferry/server-cli', 'ferry-server');
/** A preload (node --require) that says on stderr whether a process ended by itself; see the file. */
export const EXIT_PROBE = fileURLToPath(new URL('./exit-probe.cjs', import.meta.url));
