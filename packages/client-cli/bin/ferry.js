#!/usr/bin/env node
// The `ferry` command: a shim over the compiled CLI, which loads each command only when it runs.
import('../dist/cli.js').then(
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
