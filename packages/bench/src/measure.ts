/**
 * Runs a Node script in this process and, when the process exits (normally, by process.exit, or
 * through a signal handler of the script's own), writes its resource usage as JSON to a file:
 *
 *   node measure.js USAGE_FILE SCRIPT [ARGS...]
 *
 * The script sees process.argv as if it had been started directly. Peak RSS and CPU time then
 * belong to exactly that process, with no parent in between to forward signals.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface ProcessUsage {
  /** Peak resident set size, bytes (getrusage ru_maxrss). */
  maxRssBytes: number;
  userSeconds: number;
  systemSeconds: number;
  exitCode: number;
}

const [usageFile, script, ...args] = process.argv.slice(2);
if (usageFile === undefined || script === undefined) {
  process.stderr.write('usage: node measure.js USAGE_FILE SCRIPT [ARGS...]\n');
  process.exit(2);
}
const scriptPath = resolve(script);
process.argv = [process.argv[0] ?? process.execPath, scriptPath, ...args];

process.on('exit', (code) => {
  const usage = process.resourceUsage();
  const record: ProcessUsage = {
    maxRssBytes: usage.maxRSS * 1024,
    userSeconds: usage.userCPUTime / 1e6,
    systemSeconds: usage.systemCPUTime / 1e6,
    exitCode: code,
  };
  try {
    writeFileSync(usageFile, `${JSON.stringify(record)}\n`);
  } catch {}
});

await import(pathToFileURL(scriptPath).href);
