#!/usr/bin/env node
// The `ferry-server` command: a shim over the compiled CLI, which loads the server only when it runs.
import('../dist/cli.js').then(
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
