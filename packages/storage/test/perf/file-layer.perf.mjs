// Throughput of the file layer alone, driven the way a session drives it (not a unit test; vitest
// does not pick up *.perf.mjs). Build first (`pnpm turbo run build`), then:
//
//   node packages/transport/test/perf/file-layer.perf.mjs [sizeMiB] [runs]
//
// FERRY_TRANSPORT=<path of a built index.js> measures another build (e.g. of an older commit).
//
// write: PartialFile.write per block as packets would arrive (a batch per event-loop turn, up to a
//        16 MiB receive window outstanding), then commit (SHA-256 verified); in order and reordered.
// read:  FileBlockSource.read per block with 4 MiB read ahead (the sender's pattern), then sha256();
//        in order, and in order with 2 % of the blocks requested again later (retransmissions).
// Each line gives MiB/s of wall time, MiB per CPU second of the process (steadier on a busy
// machine) and the positional reads and writes issued (counted through the `fs` option).
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const { FileBlockSource, faultyFileSystem, PartialFile } = await import(
  process.env.FERRY_TRANSPORT ? pathToFileURL(process.env.FERRY_TRANSPORT).href : '../../dist/index.js'
);

const MIB = 1024 * 1024;
const size = Number(process.argv[2] ?? 56) * MIB;
const runs = Number(process.argv[3] ?? 3);
const WINDOW = 16 * MIB;
const READ_AHEAD = 4 * MIB;
const BATCH = 32; // datagrams handled per event-loop turn (libuv reads up to 32 per poll)

function lcg(seed) {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x;
  };
}

/**
 * In order, or reordered the way a lossy path reorders: shuffled within windows of 8 blocks, and
 * 1 % of the blocks lost and arriving again (retransmitted) 0.5 to 2.5 MiB later.
 */
function arrivalOrder(count, blockSize, reorder) {
  const order = Array.from({ length: count }, (_, i) => i);
  if (!reorder) return order;
  return delayed(shuffledWithin(order, 8, lcg(42)), lcg(43), 100, blockSize, false);
}

function shuffledWithin(order, width, rand) {
  for (let start = 0; start < order.length; start += width) {
    const end = Math.min(order.length, start + width);
    for (let i = end - 1; i > start; i--) {
      const j = start + (rand() % (i - start + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
  }
  return order;
}

/** 1 in `oneIn` entries moved (or, with `repeat`, repeated) 0.5 to 2.5 MiB of blocks later. */
function delayed(order, rand, oneIn, blockSize, repeat) {
  const min = Math.ceil(MIB / 2 / blockSize);
  const spread = Math.ceil((2 * MIB) / blockSize);
  const due = new Map();
  const out = [];
  for (const b of order) {
    if (rand() % oneIn === 0) {
      const at = out.length + min + (rand() % spread);
      due.set(at, [...(due.get(at) ?? []), b]);
      if (repeat) out.push(b);
    } else out.push(b);
    const now = out.length;
    for (const late of due.get(now) ?? []) out.push(late);
    due.delete(now);
  }
  for (const [, late] of [...due].sort((x, y) => x[0] - y[0])) out.push(...late);
  return out;
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A file system that counts positional reads and writes on the data files (syscalls issued). */
const calls = { read: 0, write: 0 };
const counting = faultyFileSystem(
  (path) => !path.endsWith('.tmp'),
  (real) => ({
    read: (...args) => {
      calls.read++;
      return real.read(...args);
    },
    write: (...args) => {
      calls.write++;
      return real.write(...args);
    },
  }),
);

async function writeOnce(dir, data, digest, blockSize, reorder) {
  const count = Math.ceil(size / blockSize);
  const order = arrivalOrder(count, blockSize, reorder);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const partial = await PartialFile.open({
    finalPath: join(dir, 'out.bin'),
    size,
    blockSize,
    identity: `perf-${blockSize}-${reorder}`,
    resume: false,
    fs: counting,
  });
  const windowBlocks = Math.floor(WINDOW / blockSize);
  let outstanding = 0;
  let failure;
  let wake;
  for (let i = 0; i < order.length; ) {
    while (outstanding >= windowBlocks) await new Promise((resolve) => (wake = resolve));
    const end = Math.min(order.length, i + BATCH, i + windowBlocks - outstanding);
    for (; i < end; i++) {
      const b = order[i];
      // A fresh buffer per block, as a decrypted datagram would be.
      const block = Buffer.from(data.subarray(b * blockSize, Math.min(size, (b + 1) * blockSize)));
      outstanding++;
      partial.write(b, block).then(
        () => {
          outstanding--;
          wake?.();
        },
        (error) => {
          failure ??= error;
        },
      );
    }
    await turn();
  }
  while (outstanding > 0 && failure === undefined) await new Promise((resolve) => (wake = resolve));
  if (failure !== undefined) throw failure;
  await partial.commit({ sha256: digest, overwrite: true });
  return figures(t0, cpu0);
}

async function readOnce(path, digest, blockSize, retransmit) {
  const count = Math.ceil(size / blockSize);
  const order = Array.from({ length: count }, (_, i) => i);
  const requests = retransmit ? delayed(order, lcg(7), 50, blockSize, true) : order;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const source = await FileBlockSource.open(path, { fs: counting });
  const aheadBlocks = Math.ceil(READ_AHEAD / blockSize);
  let inFlight = 0;
  let wake;
  let failure;
  for (const b of requests) {
    while (inFlight >= aheadBlocks && failure === undefined) await new Promise((resolve) => (wake = resolve));
    if (failure !== undefined) throw failure;
    inFlight++;
    source.read(b, blockSize).then(
      () => {
        inFlight--;
        wake?.();
      },
      (error) => {
        failure ??= error;
        wake?.();
      },
    );
  }
  while (inFlight > 0 && failure === undefined) await new Promise((resolve) => (wake = resolve));
  if (failure !== undefined) throw failure;
  const actual = await source.sha256();
  await source.close();
  if (actual !== digest) throw new Error('source digest mismatch');
  return figures(t0, cpu0);
}

/** MiB/s of wall time, and MiB per CPU second of the whole process (less sensitive to a busy machine). */
function figures(t0, cpu0) {
  const cpu = process.cpuUsage(cpu0);
  return {
    wall: size / MIB / ((performance.now() - t0) / 1000),
    cpu: size / MIB / ((cpu.user + cpu.system) / 1e6),
  };
}

function report(label, results, extra) {
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const wall = median(results.map((r) => r.wall))
    .toFixed(1)
    .padStart(7);
  const cpu = median(results.map((r) => r.cpu))
    .toFixed(1)
    .padStart(7);
  console.log(`${label.padEnd(26)} ${wall} MiB/s ${cpu} MiB/cpu-s  ${extra}`);
}

const dir = await fsp.mkdtemp(join(tmpdir(), 'ferry-perf-'));
try {
  const data = randomBytes(size);
  const digest = createHash('sha256').update(data).digest('hex');
  const path = join(dir, 'in.bin');
  await fsp.writeFile(path, data);
  console.log(`file layer, ${size / MIB} MiB, median of ${runs} runs`);
  for (const blockSize of [1120, 32 * 1024]) {
    for (const reorder of [false, true]) {
      const results = [];
      calls.write = 0;
      calls.read = 0;
      for (let r = 0; r < runs; r++) results.push(await writeOnce(dir, data, digest, blockSize, reorder));
      report(
        `write ${blockSize} B ${reorder ? 'reordered' : 'in order'}`,
        results,
        `writes/run ${Math.round(calls.write / runs)}, read-backs/run ${Math.round(calls.read / runs)}`,
      );
    }
    for (const retransmit of [false, true]) {
      const results = [];
      calls.read = 0;
      for (let r = 0; r < runs; r++) results.push(await readOnce(path, digest, blockSize, retransmit));
      report(
        `read  ${blockSize} B ${retransmit ? '+2% again' : 'in order'}`,
        results,
        `reads/run ${Math.round(calls.read / runs)}`,
      );
    }
  }
} finally {
  await fsp.rm(dir, { recursive: true, force: true });
}
