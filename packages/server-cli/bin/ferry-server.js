#!/usr/bin/env node
// The `ferry-server` command: a shim over dist/cli.bundle.js, the CLI and its dependencies bundled into
// one file by the package's build script (faster to load than the compiled modules one by one).
// Stack traces (FERRY_DEBUG=1) point into the TypeScript sources; the map costs start-up time otherwise.
if (process.env.FERRY_DEBUG === '1') process.setSourceMapsEnabled(true);
import('../dist/cli.bundle.js').then(
  async (cli) => {
    const code = await cli.main(process.argv.slice(2));
    process.exitCode = code;
    // Sockets closing slowly must not keep a stopped server around.
    setTimeout(() => process.exit(code), 1500).unref();
  },
  (error) => {
    process.stderr.write(
      `ferry-server: cannot start: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
