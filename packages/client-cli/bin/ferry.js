#!/usr/bin/env node
// The `ferry` command: a shim over dist/cli.bundle.js, the CLI and its dependencies bundled into
// one file by the package's build script (faster to load than the compiled modules one by one).
// Stack traces (FERRY_DEBUG=1) point into the TypeScript sources; the map costs start-up time otherwise.
if (process.env.FERRY_DEBUG === '1') process.setSourceMapsEnabled(true);
import('../dist/cli.bundle.js').then(
  async (cli) => {
    const code = await cli.main(process.argv.slice(2));
    process.exitCode = code;
    // Anything still holding the event loop (a socket closing slowly) must not keep the shell waiting.
    setTimeout(() => process.exit(code), 1500).unref();
  },
  (error) => {
    process.stderr.write(`ferry: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
