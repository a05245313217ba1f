/** Streams whose reader has gone away (Node never marks process.stdout destroyed). */
const closedStreams = new WeakSet<NodeJS.WritableStream>();

/**
 * A reader that goes away (`ferry ls HOST | head -1`) is not an error. Node ignores SIGPIPE, so a
 * write to the closed pipe fails with EPIPE, which without a listener is an uncaught exception
 * (a stack trace, exit 1). With this, what is still written goes nowhere, nothing is said about it,
 * and the command ends with its own exit code. Any other failure to write standard output is one
 * line on stderr and exit code 6 (I/O error). Call once, early in `main`.
 */
export function quietOnClosedOutput(program: string): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    closedStreams.add(process.stdout);
    if (error.code === 'EPIPE') return;
    process.stderr.write(`${program}: cannot write to standard output (${error.code ?? error.message})\n`);
    process.exit(6);
  });
  // Nowhere is left to report a failing stderr: its errors are dropped.
  process.stderr.on('error', () => {
    closedStreams.add(process.stderr);
  });
}

/** True once `stream`'s reader has gone away (see quietOnClosedOutput): nothing more reaches it. */
export function outputClosed(stream: NodeJS.WritableStream): boolean {
  return closedStreams.has(stream);
}
