// A FerryServer in its own process, for the hardening tests: its memory is measured apart from the
// test's, it can be SIGKILLed, and a crash shows as an exit. Started with fork(); the configuration is
// the first argument (JSON). Answers {type:'stats'} with the server's counters and memory use, and
// {type:'close'} by closing gracefully and exiting 0.
import { parseKey } from '@ferry/crypto';
import { FerryServer } from '@ferry/server-cli';

const config = JSON.parse(process.argv[2] ?? '{}');
const server = new FerryServer({
  root: config.root,
  port: config.port ?? 0,
  host: config.host ?? '127.0.0.1',
  keys: config.keys.map((k) => ({ name: k.name, access: k.access, key: parseKey(k.key) })),
  ...(config.maxSessions !== undefined ? { maxSessions: config.maxSessions } : {}),
  ...(config.idleTimeoutMs !== undefined ? { idleTimeoutMs: config.idleTimeoutMs } : {}),
  ...(config.partialTtlMs !== undefined ? { partialTtlMs: config.partialTtlMs } : {}),
  log: (event) => {
    if (event.level !== 'info' || config.logAll) process.send?.({ type: 'log', event });
  },
});

const address = await server.listen();
process.send?.({ type: 'listening', port: address.port, pid: process.pid });

process.on('message', (message) => {
  if (message?.type === 'stats') {
    process.send?.({
      type: 'stats',
      id: message.id,
      stats: server.stats(),
      memory: process.memoryUsage(),
    });
  } else if (message?.type === 'close') {
    server.close(message.graceMs ?? 0).then(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
