/**
 * The server's log lines: text for people (`2024-05-01T13:45:00.123Z warn: …`, and plain
 * `ferry-server: …` lines for starting and stopping) or, with --json, one
 * NDJSON object per event with a `time` field added. Everything goes to one stream (stdout).
 */
import type { ServerLogEvent } from './server.js';

/** Events about the server itself, printed as plain `ferry-server: …` lines without a time. */
const LIFECYCLE = new Set(['listening', 'key-created', 'stopping', 'stopped']);

export type LogSink = (event: ServerLogEvent) => void;

export function logSink(json: boolean, stream: NodeJS.WritableStream = process.stdout): LogSink {
  if (json) {
    return (event) => {
      stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...event }, jsonSafe)}\n`);
    };
  }
  return (event) => {
    if (LIFECYCLE.has(event.type)) {
      stream.write(`ferry-server: ${event.msg}\n`);
      return;
    }
    const level = event.level === 'info' ? '' : `${event.level}: `;
    stream.write(`${new Date().toISOString()} ${level}${event.msg}\n`);
  };
}

// Fields of a log event may hold bigints or errors; NDJSON must never throw on them.
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}
