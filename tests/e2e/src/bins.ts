/** The two commands as built in this workspace, for end-to-end tests (no hooks, no config). */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** The file a package's manifest names as command `name`, found through the package, not a path. */
function binOf(packageName: string, name: string): string {
  const manifestPath = require.resolve(`${packageName}/package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin: Record<string, string> };
  const bin = manifest.bin[name];
  if (bin === undefined) throw new Error(`${packageName} has no command ${name}`);
  return join(dirname(manifestPath), bin);
}

export const CLIENT_BIN = binOf('@ferry/client-cli', 'ferry');
export const SERVER_BIN = binOf('@ferry/server-cli', 'ferry-server');
/** A preload (node --require) that says on stderr whether a process ended by itself; see the file. */
export const EXIT_PROBE = fileURLToPath(new URL('./exit-probe.cjs', import.meta.url));
