import fc from 'fast-check';
import {
  type AckFields,
  type AckRange,
  type ClientHelloFields,
  type CloseFields,
  type ControlMessage,
  type Entry,
  encodeControlMessage,
  encodePacket,
  MAX_ACK_RANGES,
  MAX_BLOCK_COUNT,
  MAX_BLOCK_SIZE,
  MAX_CLOSE_REASON_BYTES,
  MAX_CURSOR_LENGTH,
  MAX_FILE_SIZE,
  MAX_FLOWS,
  MAX_RESUME_RANGES,
  MIN_BLOCK_SIZE,
  type PacketInput,
  REPLY_ERROR_NAMES,
  type ServerWelcomeFields,
} from '../src/index.js';

export const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const connId = fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn });
export const bytes = (length: number) =>
  fc.uint8Array({ minLength: length, maxLength: length }).map((b) => Buffer.from(b));
const blockSize = fc.integer({ min: MIN_BLOCK_SIZE, max: MAX_BLOCK_SIZE });
const idleTimeoutMs = fc.integer({ min: 1, max: 0xffff_ffff });

/** Version 1 (no features) or version 2 (with). */
export const clientHello: fc.Arbitrary<ClientHelloFields> = fc.record(
  {
    clientNonce: bytes(16),
    publicKey: bytes(32),
    maxBlockSize: blockSize,
    receiveWindow: u32,
    idleTimeoutMs,
    features: u32,
  },
  { requiredKeys: ['clientNonce', 'publicKey', 'maxBlockSize', 'receiveWindow', 'idleTimeoutMs'] },
);

export const serverWelcome: fc.Arbitrary<ServerWelcomeFields> = fc.record(
  {
    clientNonce: bytes(16),
    serverNonce: bytes(16),
    publicKey: bytes(32),
    sessionConnId: connId,
    blockSize,
    receiveWindow: u32,
    idleTimeoutMs,
    access: fc.constantFrom('read-only' as const, 'read-write' as const),
    resetToken: bytes(16),
    features: u32,
  },
  {
    requiredKeys: [
      'clientNonce',
      'serverNonce',
      'publicKey',
      'sessionConnId',
      'blockSize',
      'receiveWindow',
      'idleTimeoutMs',
      'access',
      'resetToken',
    ],
  },
);

export const serverTime = fc.record({ clientNonce: bytes(16) });

export const dataHeader = fc.record({
  packetNumber: u32,
  sendTime: u32,
  transferId: u32,
  blockIndex: fc.integer({ min: 0, max: MAX_BLOCK_COUNT - 1 }),
});

const smallPayload = fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b));
const anyPayload = fc
  .oneof(
    { weight: 8, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 200 }) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 1, max: MAX_BLOCK_SIZE }).map((n) => new Uint8Array(n).fill(n & 0xff)),
    },
  )
  .map((b) => Buffer.from(b));

const dataWith = (payload: fc.Arbitrary<Buffer>) =>
  fc.record({
    packetNumber: u32,
    sendTime: u32,
    transferId: u32,
    blockIndex: fc.integer({ min: 0, max: MAX_BLOCK_COUNT - 1 }),
    payload,
  });

/** DATA fields; sometimes with a payload of up to MAX_BLOCK_SIZE bytes. */
export const data = dataWith(anyPayload);

/** Valid ACK ranges: descending, separated by at least one missing packet number. */
export const ackRanges: fc.Arbitrary<AckRange[]> = fc
  .tuple(
    u32,
    fc.array(fc.tuple(fc.nat({ max: 1000 }), fc.nat({ max: 1000 })), { maxLength: MAX_ACK_RANGES + 1 }),
  )
  .map(([top, steps]) => {
    const ranges: AckRange[] = [];
    let next = top; // largest of the next range
    for (const [length, gap] of steps) {
      if (next < 0) break;
      const smallest = Math.max(0, next - length);
      ranges.push([smallest, next]);
      next = smallest - gap - 2;
    }
    return ranges;
  })
  .filter((ranges) => ranges.length >= 1);

export const flows = fc.uniqueArray(
  fc.tuple(u32, u32, u32).map(([transferId, a, b]) => ({
    transferId,
    cumulativeBlocks: Math.min(a, b),
    blockLimit: Math.max(a, b),
  })),
  { maxLength: MAX_FLOWS, selector: (f) => f.transferId },
);

export const ack: fc.Arbitrary<AckFields> = fc.record({
  packetNumber: u32,
  tsEcho: u32,
  ackDelay: u32,
  ranges: ackRanges,
  flows,
});

/** One code point: mostly the interesting ones, sometimes any scalar value. */
const character = fc.oneof(
  fc.constantFrom('a', 'Z', 'é', '日', '😀', '"', '\\', '/', '.', ' ', '\n', '\0'),
  fc
    .integer({ min: 0, max: 0x10ffff })
    .filter((c) => c < 0xd800 || c > 0xdfff)
    .map((c) => String.fromCodePoint(c)),
);

/** Well-formed text whose UTF-8 encoding is at most `maxBytes` bytes. */
export const text = (maxBytes: number, opts: { minBytes?: number; exclude?: string } = {}) =>
  fc
    .string({ unit: character })
    .map((s) => {
      let out = s;
      for (const c of opts.exclude ?? '') out = out.split(c).join('');
      while (Buffer.byteLength(out, 'utf8') > maxBytes) out = [...out].slice(0, -1).join('');
      return out;
    })
    .filter((s) => Buffer.byteLength(s, 'utf8') >= (opts.minBytes ?? 0));

export const close: fc.Arbitrary<CloseFields> = fc.record({
  packetNumber: u32,
  errorCode: u16,
  reason: text(MAX_CLOSE_REASON_BYTES),
});

// --- control messages ----------------------------------------------------------------------------
const mtimeMs = fc
  .oneof(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.double({ min: -1e15, max: 1e15, noNaN: true }))
  .map((x) => (x === 0 ? 0 : x));
const path = text(300, { exclude: '\0' });
const nonEmptyPath = text(300, { minBytes: 1, exclude: '\0' });
const size = fc.integer({ min: 0, max: MAX_FILE_SIZE });
const sha256 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const cursor = fc.stringMatching(/^[A-Za-z0-9_=-]+$/).filter((s) => s.length <= MAX_CURSOR_LENGTH);
const mode = fc.integer({ min: 0, max: 0o777 });
const code = fc.constantFrom(...REPLY_ERROR_NAMES);
const failure = fc.record({ index: u32, code, message: text(200) });
const blockRanges = fc
  .array(fc.tuple(fc.nat({ max: 1000 }), fc.integer({ min: 1, max: 1000 })), { maxLength: MAX_RESUME_RANGES })
  .map((steps) => {
    const ranges: [number, number][] = [];
    let at = 0;
    for (const [skip, length] of steps) {
      const start = at + skip;
      ranges.push([start, start + length]);
      at = start + length;
    }
    return ranges;
  });

export const entry: fc.Arbitrary<Entry> = fc.record({
  name: text(255, { minBytes: 1, exclude: '/\0' }),
  type: fc.constantFrom('file' as const, 'dir' as const, 'other' as const),
  size: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  mtimeMs,
});

export const controlMessage: fc.Arbitrary<ControlMessage> = fc.oneof(
  fc.record(
    {
      op: fc.constant('list' as const),
      id: u32,
      path,
      cursor,
      limit: fc.integer({ min: 1, max: 0xffff_ffff }),
    },
    { requiredKeys: ['op', 'id', 'path'] },
  ),
  fc.record({ op: fc.constant('stat' as const), id: u32, path }),
  fc.record(
    {
      op: fc.constant('get' as const),
      id: u32,
      path: nonEmptyPath,
      resume: fc.record({ size, mtimeMs, have: blockRanges }),
      maxBlockSize: blockSize,
    },
    { requiredKeys: ['op', 'id', 'path'] },
  ),
  fc.record(
    {
      op: fc.constant('put' as const),
      id: u32,
      path: nonEmptyPath,
      size,
      mtimeMs,
      overwrite: fc.boolean(),
      resume: fc.boolean(),
      mode,
      maxBlockSize: blockSize,
    },
    { requiredKeys: ['op', 'id', 'path', 'size', 'overwrite', 'resume'] },
  ),
  fc.record(
    { op: fc.constant('mkdir' as const), id: u32, path: nonEmptyPath, parents: fc.boolean(), mode },
    { requiredKeys: ['op', 'id', 'path', 'parents'] },
  ),
  fc.record({ op: fc.constant('rmdir' as const), id: u32, path: nonEmptyPath }),
  fc.record(
    {
      op: fc.constant('walk' as const),
      id: u32,
      path,
      cursor,
      limit: fc.integer({ min: 1, max: 0xffff_ffff }),
    },
    { requiredKeys: ['op', 'id', 'path'] },
  ),
  fc.record({ op: fc.constant('hash' as const), id: u32, path: nonEmptyPath }),
  fc.record({
    op: fc.constant('putFiles' as const),
    id: u32,
    files: fc.array(
      fc.record(
        {
          path: nonEmptyPath,
          size: fc.integer({ min: 0, max: 40_000 }),
          mtimeMs,
          mode,
          sha256,
        },
        { requiredKeys: ['path', 'size', 'sha256'] },
      ),
      { minLength: 1, maxLength: 5 },
    ),
    overwrite: fc.boolean(),
    skipIdentical: fc.boolean(),
  }),
  fc.record({ op: fc.constant('commitFiles' as const), id: u32, transferId: u32 }),
  fc.record({
    op: fc.constant('getFiles' as const),
    id: u32,
    files: fc.array(fc.record({ path: nonEmptyPath, sha256 }, { requiredKeys: ['path'] }), {
      minLength: 1,
      maxLength: 5,
    }),
  }),
  fc.record(
    {
      op: fc.constant('reply' as const),
      id: u32,
      ok: fc.constant(true as const),
      entries: fc.array(
        fc.record(
          {
            path: nonEmptyPath,
            type: fc.constantFrom('file' as const, 'dir' as const, 'link' as const, 'other' as const),
            size: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
            mtimeMs,
            mode,
          },
          { requiredKeys: ['path', 'type', 'size', 'mtimeMs'] },
        ),
        { maxLength: 5 },
      ),
      next: cursor,
    },
    { requiredKeys: ['op', 'id', 'ok', 'entries'] },
  ),
  fc.record({ op: fc.constant('reply' as const), id: u32, ok: fc.constant(true as const), sha256, size }),
  fc.record({
    op: fc.constant('reply' as const),
    id: u32,
    ok: fc.constant(true as const),
    transferId: u32,
    blockSize,
    blockCount: fc.integer({ min: 0, max: MAX_BLOCK_COUNT }),
    skipped: fc.array(u32, { maxLength: 5 }),
    failed: fc.array(failure, { maxLength: 5 }),
  }),
  fc.record({
    op: fc.constant('reply' as const),
    id: u32,
    ok: fc.constant(true as const),
    failed: fc.array(failure, { maxLength: 5 }),
  }),
  fc.record({
    op: fc.constant('reply' as const),
    id: u32,
    ok: fc.constant(true as const),
    transferId: u32,
    blockSize,
    blockCount: fc.integer({ min: 0, max: MAX_BLOCK_COUNT }),
    files: fc.array(
      fc.oneof(
        fc.record(
          { size, mtimeMs, mode, sha256, sent: fc.boolean() },
          { requiredKeys: ['size', 'mtimeMs', 'sha256', 'sent'] },
        ),
        fc.record({ code, message: text(200) }),
      ),
      { maxLength: 5 },
    ),
  }),
  fc.record({ op: fc.constant('commit' as const), id: u32, transferId: u32, sha256 }),
  fc.record({
    op: fc.constant('rename' as const),
    id: u32,
    from: nonEmptyPath,
    to: nonEmptyPath,
    overwrite: fc.boolean(),
  }),
  fc.record({ op: fc.constant('delete' as const), id: u32, path: nonEmptyPath }),
  fc.record({ op: fc.constant('cancel' as const), transferId: u32 }),
  fc.record({ op: fc.constant('digest' as const), transferId: u32, sha256 }),
  fc.record({ op: fc.constant('abort' as const), transferId: u32, code, message: text(1024) }),
  fc.record(
    {
      op: fc.constant('reply' as const),
      id: u32,
      ok: fc.constant(true as const),
      entries: fc.array(entry, { maxLength: 5 }),
      next: cursor,
    },
    { requiredKeys: ['op', 'id', 'ok', 'entries'] },
  ),
  fc.record({ op: fc.constant('reply' as const), id: u32, ok: fc.constant(true as const), entry }),
  fc.record(
    {
      op: fc.constant('reply' as const),
      id: u32,
      ok: fc.constant(true as const),
      transferId: u32,
      size,
      mtimeMs,
      blockSize,
      blockCount: fc.integer({ min: 0, max: MAX_BLOCK_COUNT }),
      restarted: fc.boolean(),
      mode,
    },
    { requiredKeys: ['op', 'id', 'ok', 'transferId', 'size', 'mtimeMs', 'blockSize', 'blockCount'] },
  ),
  fc.record({
    op: fc.constant('reply' as const),
    id: u32,
    ok: fc.constant(true as const),
    transferId: u32,
    blockSize,
    blockCount: fc.integer({ min: 0, max: MAX_BLOCK_COUNT }),
    have: blockRanges,
  }),
  fc.record({ op: fc.constant('reply' as const), id: u32, ok: fc.constant(true as const) }),
  fc.record({
    op: fc.constant('reply' as const),
    id: u32,
    ok: fc.constant(false as const),
    code,
    message: text(1024),
  }),
);

const packetWith = (payload: fc.Arbitrary<Buffer>): fc.Arbitrary<PacketInput> =>
  fc.oneof(
    clientHello.map((f) => ({ type: 'client-hello' as const, ...f })),
    serverWelcome.map((f) => ({ type: 'server-welcome' as const, ...f })),
    serverTime.map((f) => ({ type: 'server-time' as const, ...f })),
    dataWith(payload).map((f) => ({ type: 'data' as const, ...f })),
    ack.map((f) => ({ type: 'ack' as const, ...f })),
    fc
      .record({ packetNumber: u32, messageSeq: u32, message: controlMessage })
      .map(({ packetNumber, messageSeq, message }) => ({
        type: 'control' as const,
        packetNumber,
        messageSeq,
        body: encodeControlMessage(message),
      })),
    u32.map((packetNumber) => ({ type: 'ping' as const, packetNumber })),
    close.map((f) => ({ type: 'close' as const, ...f })),
    fc
      .record({ packetNumber: u32, padding: fc.integer({ min: 0, max: 1500 }) })
      .map((f) => ({ type: 'probe' as const, ...f })),
    fc
      .record({
        header: dataWith(payload),
        offset: fc.integer({ min: 0, max: MAX_BLOCK_SIZE - 200 }),
      })
      .map(({ header, offset }) => ({
        type: 'part' as const,
        packetNumber: header.packetNumber,
        sendTime: header.sendTime,
        transferId: header.transferId,
        blockIndex: header.blockIndex,
        offset: Math.min(offset, MAX_BLOCK_SIZE - header.payload.length),
        payload: header.payload,
      })),
  );

/** Any packet of any kind, as encodePacket takes it. */
export const packet = packetWith(anyPayload);

/** The plaintext of a valid packet of any kind (DATA payloads up to 200 bytes), with its kind. */
export const plaintext = fc
  .tuple(connId, packetWith(smallPayload))
  .map(([id, p]) => ({ kind: p.type, bytes: encodePacket(id, p) }));
