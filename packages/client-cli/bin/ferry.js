#!/usr/bin/env node
// The `ferry` command: a shim over dist/cli.bundle.cjs, the CLI and its dependencies bundled into one
// file by the package's build script, started through V8's code cache (runBin of @ferry/cli-kit/bundle).
// CommonJS (bin/package.json), as is the runner it requires: an ES module entry would start Node's
// ES module loader first, a few milliseconds of every command.
// FERRY_DEBUG=1 (stack traces of internal errors) also turns source maps on; they cost start-up time.
if (process.env.FERRY_DEBUG === '1') process.setSourceMapsEnabled(true);
try {
  require('@ferry/cli-kit/bundle').runBin(
    'ferry',
    require('node:path').join(__dirname, '..', 'dist', 'cli.bundle.cjs'),
  );
} catch (error) {
  // Only what runBin cannot report itself: its module missing (a checkout not built, a broken install).
  process.stderr.write(`ferry: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
