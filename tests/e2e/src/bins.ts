/** The two commands as built in this workspace, for end-to-end tests (no hooks, no config). */
import { existsSync, readFileSync } from 'node:fs';
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

/**
 * The Node script behind command `name`, which the tests run with node (preloads and all): the file the
 * manifest names, or, where that is a /bin/sh launcher (ferry's, which starts Node without
 * NODE_EXTRA_CA_CERTS), the script beside it that the launcher runs, `<bin>.js`.
 */
function nodeScriptOf(packageName: string, name: string): string {
  const bin = binOf(packageName, name);
  if (!readFileSync(bin, 'utf8').startsWith('#!/bin/sh\n')) return bin;
  const script = `${bin}.js`;
  if (!existsSync(script)) throw new Error(`${packageName}'s launcher ${bin} has no ${script} beside it`);
  return script;
}

export const CLIENT_BIN = nodeScriptOf('@ferry/client-cli', 'ferry');
export const SERVER_BIN = nodeScriptOf('@ferry/server-cli', 'ferry-server');
/** A preload (node --require) that says on stderr whether a process ended by itself; see the file. */
export const EXIT_PROBE = fileURLToPath(new URL('./exit-probe.cjs', import.meta.url));
