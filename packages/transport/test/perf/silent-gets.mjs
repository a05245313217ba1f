// Reproduces "many clients start a get, then go silent" and measures the server process's memory.
// Not a unit test (vitest does not pick up *.mjs); the real server's bounds are tested by
// tests/e2e/test/hardening/silent-gets.slow.test.ts.
// Build first (`pnpm turbo run build`), then:
//
//   node packages/transport/test/perf/silent-gets.mjs [--sessions 200] [--size-mib 64] [--idle-s 30]
//        [--server test|ferry-server] [--max-buffer-mib N] [--max-session-buffer-mib N] [--after-s 30]
//
// --server test (default): a UdpServer in a child process whose BlockSource allocates a fresh buffer
//   per block read (as a disk source without reuse would), serving `get` like ferry-server does.
// --server ferry-server: the real bin (packages/server-cli/bin/ferry-server.js) serving a file of
//   --size-mib from a temporary root; then the file source's own buffers count too.
// --server ferry-lib: the same FerryServer, in a child process that also reports its heap and
//   ArrayBuffer figures (process.memoryUsage) when the sessions have ended, and with --gc-at-end
//   runs a full garbage collection there (memory the collector had not freed yet, or memory the C
//   allocator keeps after it did).
// Each client is a bare sans-I/O client on its own socket: handshake, `get`, acknowledge the reply
// (the server starts sending), then it never reads its socket again. The server's RSS (VmRSS) is
// sampled every 100 ms: before (baseline), the peak while the sessions are stalled, and for
// --after-s seconds once the server has timed them all out (or until it is back within
// --expect-after-mb of its baseline). Prints one JSON line; exit code 1 if the bounds of
// --expect-peak-mb / --expect-after-mb (above baseline, within --after-s) are not met.
//
// What a server gives back to the system after the sessions end depends on the C allocator too:
// glibc keeps freed blocks below its mmap threshold in its heap, returned only from its top. ferry's
// file buffers and DATA ciphertext buffers are mapped on their own (docs/SECURITY.md); the test
// server's source allocates each block with Buffer.allocUnsafe, so for it
// GLIBC_TUNABLES=glibc.malloc.mmap_threshold=32768 in the environment (the child inherits it) shows
// what the transport still holds.
import { fork, spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '../../../..');
const transportUrl = process.env.FERRY_TRANSPORT
  ? pathToFileURL(process.env.FERRY_TRANSPORT).href
  : pathToFileURL(join(repo, 'packages/transport/dist/index.js')).href;
const cryptoUrl = pathToFileURL(join(repo, 'packages/crypto/dist/index.js')).href;
const MIB = 1024 * 1024;
const BLOCK = 64_512;

const { values: args } = parseArgs({
  options: {
    'child-server': { type: 'string' },
    sessions: { type: 'string', default: '200' },
    'size-mib': { type: 'string', default: '64' },
    'idle-s': { type: 'string', default: '30' },
    'after-s': { type: 'string', default: '30' },
    server: { type: 'string', default: 'test' },
    'max-buffer-mib': { type: 'string' },
    'max-session-buffer-mib': { type: 'string' },
    'expect-peak-mb': { type: 'string' },
    'expect-after-mb': { type: 'string' },
    'gc-at-end': { type: 'boolean', default: false },
  },
});

/** The child server (test or ferry-lib); answers {type:'stats'} and {type:'gc'} over IPC. */
async function childServer(config) {
  const { parseKey } = await import(cryptoUrl);
  const server =
    config.kind === 'ferry-lib' ? await ferryLibServer(config, parseKey) : await testServer(config, parseKey);
  const address = await server.listen();
  process.send({ type: 'listening', port: address.port });
  process.on('message', async (message) => {
    if (message?.type === 'stats') {
      process.send({ type: 'stats', sessions: server.sessionCount(), memory: process.memoryUsage() });
    } else if (message?.type === 'gc') {
      const v8 = await import('node:v8');
      const vm = await import('node:vm');
      v8.setFlagsFromString('--expose-gc');
      vm.runInNewContext('gc')();
      // V8 frees the collected ArrayBuffers' memory on a background thread after the collection:
      // read right away, arrayBuffers still counted 111 MB that were gone 5 ms later.
      let memory = process.memoryUsage();
      for (let i = 0; i < 100; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        const next = process.memoryUsage();
        const settled = next.arrayBuffers === memory.arrayBuffers;
        memory = next;
        if (settled) break;
      }
      process.send({ type: 'gc', memory });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

async function ferryLibServer(config, parseKey) {
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--heap-growing-percent=400'); // as the ferry-server bin does
  const { FerryServer } = await import(pathToFileURL(join(repo, 'packages/server-cli/dist/index.js')).href);
  const server = new FerryServer({
    root: config.root,
    port: 0,
    host: '127.0.0.1',
    keys: [{ name: 'k', access: 'read-only', key: parseKey(config.key) }],
    maxSessions: 10_000,
    idleTimeoutMs: config.idleMs,
    ...(config.maxBuffer !== undefined ? { maxBufferedBytes: config.maxBuffer } : {}),
    ...(config.maxSessionBuffer !== undefined ? { maxSessionBufferedBytes: config.maxSessionBuffer } : {}),
  });
  return { listen: () => server.listen(), sessionCount: () => server.stats().sessions };
}

async function testServer(config, parseKey) {
  const T = await import(transportUrl);
  const server = new T.UdpServer({
    host: '127.0.0.1',
    port: 0,
    keys: [{ name: 'k', key: parseKey(config.key), access: 'read-only' }],
    maxBlockSize: BLOCK,
    maxSessions: 10_000,
    idleTimeoutMs: config.idleMs,
    ...(config.maxBuffer !== undefined ? { maxBufferedBytes: config.maxBuffer } : {}),
    ...(config.maxSessionBuffer !== undefined ? { maxSessionBufferedBytes: config.maxSessionBuffer } : {}),
  });
  let nextTransfer = 1;
  server.onSession((session) => {
    session.onMessage((body) => {
      const m = JSON.parse(body.toString());
      if (m.op !== 'get') return;
      const size = config.size;
      const transferId = nextTransfer++;
      const blockSize = session.blockSize;
      const reply = {
        op: 'reply',
        id: m.id,
        ok: true,
        transferId,
        size,
        mtimeMs: 0,
        blockSize,
        blockCount: Math.ceil(size / blockSize),
      };
      const seq = session.send(Buffer.from(JSON.stringify(reply)));
      const source = {
        size,
        read: async (index, bs) => {
          const data = Buffer.allocUnsafe(Math.min(bs, size - index * bs));
          data.fill(index & 0xff);
          return data;
        },
      };
      session.sendBlocks(transferId, source, { afterMessage: seq }).catch(() => {});
    });
  });
  return { listen: () => server.listen(), sessionCount: () => server.sessionCount };
}

function rssOf(pid) {
  return readFile(`/proc/${pid}/status`, 'utf8').then(
    (text) => Number(/VmRSS:\s+(\d+)/.exec(text)?.[1] ?? 0) * 1024,
    () => 0,
  );
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const T = await import(transportUrl);
  const { generateKey, parseKey } = await import(cryptoUrl);
  const sessions = Number(args.sessions);
  const size = Number(args['size-mib']) * MIB;
  const idleMs = Number(args['idle-s']) * 1000;
  const keyText = generateKey();
  const key = parseKey(keyText);
  const cleanups = [];

  let pid;
  let port;
  let openSessions;
  let ask = async () => undefined;
  let root;
  if (args.server !== 'test') {
    root = await mkdtemp(join(tmpdir(), 'ferry-silent-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const big = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i += 4096) big[i] = i & 0xff;
    await writeFile(join(root, 'big.bin'), big);
    await writeFile(join(root, 'key'), `${keyText}\n`, { mode: 0o600 });
  }
  if (args.server === 'ferry-server') {
    const bin = join(repo, 'packages/server-cli/bin/ferry-server.js');
    const extra = [];
    if (args['max-buffer-mib'] !== undefined) extra.push('--max-buffer', args['max-buffer-mib']);
    if (args['max-session-buffer-mib'] !== undefined)
      extra.push('--max-session-buffer', args['max-session-buffer-mib']);
    const child = spawn(
      process.execPath,
      [bin, '0', '--root', root, '--key', join(root, 'key'), '--host', '127.0.0.1', '--json'].concat(
        ['--timeout', String(idleMs / 1000), '--max-sessions', String(sessions + 10)],
        extra,
      ),
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanups.push(() => child.kill());
    pid = child.pid;
    let open = 0;
    let buffer = '';
    port = await new Promise((resolve, reject) => {
      child.on('exit', (code) => reject(new Error(`ferry-server exited with ${code}`)));
      child.stdout.on('data', (chunk) => {
        buffer += chunk;
        for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
          const line = buffer.slice(0, i);
          buffer = buffer.slice(i + 1);
          const event = line.startsWith('{') ? JSON.parse(line) : undefined;
          if (event?.type === 'listening') resolve(event.port);
          if (event?.type === 'session-open') open++;
          if (event?.type === 'session-closed') open--;
        }
      });
    });
    openSessions = async () => open;
  } else {
    const config = { kind: args.server, root, key: keyText, size, idleMs };
    if (args['max-buffer-mib'] !== undefined) config.maxBuffer = Number(args['max-buffer-mib']) * MIB;
    if (args['max-session-buffer-mib'] !== undefined)
      config.maxSessionBuffer = Number(args['max-session-buffer-mib']) * MIB;
    const child = fork(fileURLToPath(import.meta.url), ['--child-server', JSON.stringify(config)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    cleanups.push(() => child.kill());
    pid = child.pid;
    port = await new Promise((resolve) =>
      child.on('message', (m) => m.type === 'listening' && resolve(m.port)),
    );
    ask = (type) =>
      new Promise((resolve) => {
        const onMessage = (m) => {
          if (m.type !== type) return;
          child.off('message', onMessage);
          resolve(m);
        };
        child.on('message', onMessage);
        child.send({ type });
      });
    openSessions = async () => (await ask('stats')).sessions;
  }

  try {
    await sleep(1_000);
    const baseline = await rssOf(pid);
    let peak = baseline;
    const sampler = setInterval(async () => {
      peak = Math.max(peak, await rssOf(pid));
    }, 100);
    cleanups.push(() => clearInterval(sampler));

    const started = performance.now();
    const clients = [];
    for (let i = 0; i < sessions; i += 20) {
      const batch = Array.from({ length: Math.min(20, sessions - i) }, () => silentGet(T, key, port));
      clients.push(...(await Promise.all(batch)));
    }
    cleanups.push(() => {
      for (const c of clients) c.close();
    });
    const stalledAt = performance.now();
    // Wait for the server to time every session out (its idle timeout), then watch memory.
    const deadline = performance.now() + idleMs + 60_000;
    while ((await openSessions()) > 0) {
      if (performance.now() > deadline) throw new Error('the server kept its sessions past its idle timeout');
      await sleep(250);
    }
    const endedAt = performance.now();
    const peakWhileStalled = peak;
    const memoryAtEnd = (await ask('stats'))?.memory;
    const memoryAfterGc = args['gc-at-end'] ? (await ask('gc'))?.memory : undefined;
    const afterMs = Number(args['after-s']) * 1000;
    const samples = [];
    let settledAt;
    const expectAfter =
      args['expect-after-mb'] !== undefined ? Number(args['expect-after-mb']) * 1e6 : undefined;
    while (performance.now() - endedAt < afterMs) {
      const rss = await rssOf(pid);
      samples.push(rss);
      if (settledAt === undefined && expectAfter !== undefined && rss <= baseline + expectAfter) {
        settledAt = performance.now() - endedAt;
        break;
      }
      await sleep(500);
    }
    const mb = (n) => Math.round(n / 1e5) / 10;
    const result = {
      server: args.server,
      sessions,
      sizeMiB: size / MIB,
      openedInS: Math.round(stalledAt - started) / 1000,
      timedOutAfterS: Math.round(endedAt - stalledAt) / 1000,
      baselineMB: mb(baseline),
      peakMB: mb(peakWhileStalled),
      afterEndMB: samples.filter((_, i) => i % 10 === 0 || i === samples.length - 1).map(mb),
      lastMB: mb(samples.at(-1) ?? 0),
      settledBelowBaselinePlusAfterInS: settledAt === undefined ? null : Math.round(settledAt / 100) / 10,
      ...(memoryAtEnd !== undefined
        ? {
            atEnd: {
              heapTotalMB: mb(memoryAtEnd.heapTotal),
              externalMB: mb(memoryAtEnd.external),
              arrayBuffersMB: mb(memoryAtEnd.arrayBuffers),
            },
            ...(memoryAfterGc !== undefined
              ? {
                  afterGc: {
                    heapTotalMB: mb(memoryAfterGc.heapTotal),
                    arrayBuffersMB: mb(memoryAfterGc.arrayBuffers),
                  },
                }
              : {}),
          }
        : {}),
    };
    console.log(JSON.stringify(result));
    let ok = true;
    if (args['expect-peak-mb'] !== undefined && peakWhileStalled > Number(args['expect-peak-mb']) * 1e6)
      ok = false;
    if (expectAfter !== undefined && settledAt === undefined) ok = false;
    return ok ? 0 : 1;
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
}

/**
 * A client that opens a session, asks for a get, acknowledges the reply (so the server starts
 * sending) and then never reads its socket again. Resolves once it has gone silent.
 */
async function silentGet(T, key, port) {
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.connect(port, '127.0.0.1', resolve));
  const now = () => performance.now();
  const wallClock = () => Date.now() / 1000;
  const handshake = new T.ClientHandshake({
    key,
    now: now(),
    wallClock,
    maxBlockSize: BLOCK,
    receiveWindow: 16 * MIB,
    idleTimeoutMs: 600_000,
  });
  let connection;
  let timer;
  let silent = false;
  let replied = false;
  const send = (d) => socket.send(d);
  return new Promise((resolve, reject) => {
    const fail = setTimeout(() => reject(new Error('no reply to the get within 30 s')), 30_000);
    const run = () => {
      if (silent) return;
      const t = now();
      if (connection === undefined) {
        handshake.handleTimeout(t);
        for (const d of handshake.poll(t)) send(d);
        if (handshake.outcome?.type === 'failed') return reject(new Error(handshake.outcome.message));
        if (handshake.outcome?.type !== 'established') return arm(handshake.nextTimeout());
        connection = handshake.outcome.connection;
        connection.sendMessage(Buffer.from('{"op":"get","id":1,"path":"big.bin"}'));
      }
      if (t >= connection.nextTimeout()) connection.handleTimeout(t);
      for (const d of connection.poll(t)) send(d);
      for (let e = connection.pollEvent(); e !== undefined; e = connection.pollEvent()) {
        if (e.type === 'message' && JSON.parse(e.body.toString()).op === 'reply') replied = true;
      }
      if (replied) {
        // The ACK of the reply left with this poll (a CONTROL packet is acknowledged at once).
        for (const d of connection.poll(t)) send(d);
        silent = true;
        clearTimeout(timer);
        clearTimeout(fail);
        socket.removeAllListeners('message');
        resolve({ close: () => socket.close() });
        return;
      }
      arm(connection.nextTimeout());
    };
    const arm = (at) => {
      clearTimeout(timer);
      if (Number.isFinite(at)) timer = setTimeout(run, Math.max(0, at - now()));
    };
    socket.on('message', (d) => {
      const t = now();
      if (connection === undefined) handshake.receive(d, t);
      else connection.receiveDatagram(d, t);
      run();
    });
    run();
  });
}

if (args['child-server'] !== undefined) await childServer(JSON.parse(args['child-server']));
else process.exitCode = await main();
