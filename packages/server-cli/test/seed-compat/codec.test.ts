import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  besideName,
  encodeListReply,
  finalAck,
  frameChunk,
  LIST_MORE_LINE,
  openFrame,
  parseSeedAck,
  parseSeedCommand,
  SEED_CHUNK_BYTES,
  SEED_MARKER,
  SEED_TEXT,
  seedChunkLength,
  seedExtension,
} from '../../src/seed-compat/codec.js';
import { ResendTimer } from '../../src/seed-compat/resend.js';

const MARKER = Buffer.from(SEED_MARKER, 'latin1');

/** What the seed's client does with a plaintext: split at the FIRST marker, chunk and flag. */
function clientSplit(plaintext: Buffer): { chunk: Buffer; flag: string } {
  const at = plaintext.indexOf(MARKER);
  const end = plaintext.indexOf(MARKER, at + MARKER.length);
  return {
    chunk: plaintext.subarray(0, at),
    flag: plaintext.toString('latin1', at + MARKER.length, end < 0 ? undefined : end),
  };
}

/** Cuts `data` as the compatible sender does and reassembles it as the seed's client would. */
function throughSeedClient(data: Buffer, cut: (start: number) => number): { copy: Buffer; chunks: number } {
  const parts: Buffer[] = [];
  let chunks = 0;
  for (let at = 0; at < data.length; ) {
    const length = cut(at);
    expect(length).toBeGreaterThan(0);
    expect(length).toBeLessThanOrEqual(SEED_CHUNK_BYTES);
    const { chunk, flag } = clientSplit(frameChunk(data.subarray(at, at + length)));
    // A flag other than 0 makes the client ask for the same chunk forever: count it as lost.
    if (flag === '0') parts.push(chunk);
    at += length;
    chunks++;
  }
  return { copy: Buffer.concat(parts), chunks };
}

/** Random bytes with the marker, its prefixes and runs of '#' planted at the given offsets. */
function planted(size: number, offsets: number[]): Buffer {
  const data = randomBytes(size);
  const pieces = ['###-###', '###-', '###-#', '###-##', '###-###0', '#'.repeat(9), '###-###-###'];
  offsets.forEach((offset, i) => {
    const piece = Buffer.from(pieces[i % pieces.length]!, 'latin1');
    if (offset < size) piece.copy(data, offset, 0, Math.min(piece.length, size - offset));
  });
  return data;
}

describe('seed commands', () => {
  it('parses the five commands, with the command word in any case and names as sent', () => {
    const parse = (text: string) => parseSeedCommand(Buffer.from(text));
    expect(parse('get notes.txt')).toEqual({ kind: 'get', name: 'notes.txt' });
    expect(parse('PUT Photo.JPG')).toEqual({ kind: 'put', name: 'Photo.JPG' });
    expect(parse('rename a.txt b.txt')).toEqual({ kind: 'rename', from: 'a.txt', to: 'b.txt' });
    expect(parse('list')).toEqual({ kind: 'list' });
    expect(parse('Exit')).toEqual({ kind: 'exit' });
    expect(parse('get')).toBeUndefined();
    expect(parse('rename a.txt')).toBeUndefined();
  });

  it('never takes a token, an acknowledgement or FE/FNE for a command', () => {
    const token = Buffer.from('gAAAAABmZ2V0IG5vdGVzLnR4dA==');
    for (const datagram of [token, Buffer.from(SEED_TEXT.ackNext), Buffer.from('FE'), Buffer.from('FNE')]) {
      expect(parseSeedCommand(datagram)).toBeUndefined();
    }
    expect(parseSeedCommand(Buffer.from([0x67, 0x65, 0x74, 0x20, 0xff, 0xfe]))).toBeUndefined();
  });

  it('reads an acknowledgement by its flag after the last marker', () => {
    expect(parseSeedAck(Buffer.from(SEED_TEXT.ackNext))).toBe('next');
    expect(parseSeedAck(Buffer.from(SEED_TEXT.ackResend))).toBe('resend');
    expect(parseSeedAck(Buffer.from(SEED_TEXT.ackDone))).toBe('done');
    expect(parseSeedAck(Buffer.from('ACK Packet received.'))).toBeUndefined();
    expect(finalAck('ACK File transferred')).toBe(SEED_TEXT.ackDone);
    // A marker in a message would move the flag the client reads.
    expect(clientSplit(Buffer.from(finalAck('as a###-###b.txt'))).flag).toBe('2');
  });
});

describe('chunks the seed client reassembles', () => {
  it('cuts files with the marker and its prefixes planted at every offset mod 2,048 so the client gets them intact', () => {
    // Every residue mod 2,048 gets a planted piece in some file; the naive 2,048-byte cut loses data.
    let naiveLosses = 0;
    for (let file = 0; file < 64; file++) {
      const size = 4 * SEED_CHUNK_BYTES + file * 37;
      const offsets: number[] = [];
      for (let residue = file * 32; residue < (file + 1) * 32; residue++) {
        offsets.push((residue % 4) * SEED_CHUNK_BYTES + residue);
      }
      const data = planted(size, offsets);
      const { copy } = throughSeedClient(data, (at) => seedChunkLength(data, at, data.length));
      expect(copy.equals(data), `file ${file}`).toBe(true);
      const naive = throughSeedClient(data, (at) => Math.min(SEED_CHUNK_BYTES, data.length - at));
      if (!naive.copy.equals(data)) naiveLosses++;
    }
    expect(naiveLosses, 'the naive cut loses data on these files').toBeGreaterThan(0);
  });

  it('holds for any bytes drawn from "#", "-", "0" and "x" (markers everywhere)', () => {
    const symbols = [35, 35, 35, 45, 45, 48, 120];
    const files = fc
      .uint8Array({ minLength: SEED_CHUNK_BYTES + 1, maxLength: 4 * SEED_CHUNK_BYTES, size: 'max' })
      .map((a) => Buffer.from(a.map((b) => symbols[b % symbols.length]!)));
    fc.assert(
      fc.property(files, (data) => {
        const { copy, chunks } = throughSeedClient(data, (at) => seedChunkLength(data, at, data.length));
        expect(copy.equals(data)).toBe(true);
        // A cut costs a datagram, and each chunk keeps at least 3 bytes of a marker-dense file or ends it.
        expect(chunks).toBeLessThanOrEqual(Math.ceil(data.length / 3) + 1);
      }),
      { numRuns: 200 },
    );
  });

  it('sends a file of nothing but "#" in full-size chunks: a run of "#" before the tail is harmless', () => {
    const data = Buffer.alloc(3 * SEED_CHUNK_BYTES, '#');
    const { copy, chunks } = throughSeedClient(data, (at) => seedChunkLength(data, at, data.length));
    expect(copy.equals(data)).toBe(true);
    expect(chunks).toBe(3);
  });

  it('cuts random data (no marker) at 2,048 bytes', () => {
    const data = Buffer.alloc(10_000, 'x');
    expect(seedChunkLength(data, 0, data.length)).toBe(2048);
    expect(seedChunkLength(data, 9000, data.length)).toBe(1000);
    expect(seedChunkLength(data, data.length, data.length)).toBe(0);
  });

  it('splits a received plaintext at the last marker, so blind 2,048-byte chunks with markers arrive whole', () => {
    for (const text of ['plain', 'a###-###b', 'ends###-', 'ends###-##', '###-###', '']) {
      const chunk = Buffer.from(text, 'latin1');
      const frame = openFrame(frameChunk(chunk));
      expect(frame?.chunk.equals(chunk)).toBe(true);
      expect(frame?.flag).toBe('0');
    }
    expect(openFrame(Buffer.from('no marker'))).toBeUndefined();
  });
});

describe('list replies', () => {
  it('is the header and the names, no trailing newline', () => {
    expect(encodeListReply(['a.txt', 'b/'], true)).toBe(`${SEED_TEXT.listHeader}a.txt\nb/`);
    expect(encodeListReply([], true)).toBe(SEED_TEXT.listHeader.slice(0, -1));
  });

  it('fits in the 2,048 bytes the seed client reads, saying when names were left out', () => {
    const names = Array.from({ length: 200 }, (_, i) => `${'é'.repeat(20)}-${i}.txt`);
    const reply = encodeListReply(names, true);
    expect(Buffer.byteLength(reply)).toBeLessThanOrEqual(2048);
    expect(reply.endsWith(`\n${LIST_MORE_LINE}`)).toBe(true);
    expect(
      reply
        .split('\n')
        .slice(1, -1)
        .every((line, i) => line === names[i]),
    ).toBe(true);
    expect(encodeListReply(['a'], false).endsWith(LIST_MORE_LINE)).toBe(true);
  });
});

describe('names', () => {
  it("takes the seed's extension: what follows the first dot of the name", () => {
    expect(seedExtension('notes.txt')).toBe('txt');
    expect(seedExtension('a.tar.gz')).toBe('tar');
    expect(seedExtension('dir.v2/readme')).toBeUndefined();
    expect(seedExtension('README')).toBeUndefined();
  });

  it('puts a number before the extension for a name beside an existing file', () => {
    expect(besideName('notes.txt', 1)).toBe('notes-1.txt');
    expect(besideName('a.tar.gz', 2)).toBe('a-2.tar.gz');
    expect(besideName('docs/.profile', 1)).toBe('docs/.profile-1');
    expect(besideName('Makefile', 3)).toBe('Makefile-3');
  });
});

describe('resend timing', () => {
  const policy = { minMs: 1000, maxMs: 8000, idleMs: 30_000 };

  it('repeats only after the minimum wait, doubling each time', () => {
    const timer = new ResendTimer(policy, 0);
    timer.asked(0);
    expect(timer.due(999)).toBe(false);
    expect(timer.due(1000)).toBe(true);
    expect(timer.due(2999)).toBe(false);
    expect(timer.due(3000)).toBe(true);
    expect(timer.waitMs).toBe(4000);
    timer.answered(3100);
    expect(timer.waitMs).toBe(1000);
    expect(timer.due(100_000)).toBe(false); // nothing awaited
  });

  it('waits longer than the round trips seen so far, and gives up on a silent client', () => {
    const timer = new ResendTimer(policy, 0);
    for (let t = 0; t < 10; t++) {
      timer.asked(t * 3000);
      timer.answered(t * 3000 + 2000);
    }
    expect(timer.waitMs).toBeGreaterThan(2000);
    const lastAnswer = 9 * 3000 + 2000;
    expect(timer.idle(lastAnswer + 29_999)).toBe(false);
    expect(timer.idle(lastAnswer + 30_000)).toBe(true);
  });
});
