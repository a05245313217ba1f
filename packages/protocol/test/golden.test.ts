import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  type ControlMessage,
  datagramLength,
  decodeControlMessage,
  decodePacket,
  decodeRejectDatagram,
  decodeResetDatagram,
  decodeVersionNegotiation,
  encodeControlMessage,
  encodePacket,
  encodeRejectDatagram,
  encodeResetDatagram,
  encodeVersionNegotiation,
  handshakeContext,
  type PacketInput,
  resetTokenFor,
} from '../src/index.js';

/**
 * Golden byte vectors: one JSON file per packet kind under test/golden/. A change to the encoding
 * shows up as a failing test and, once accepted with UPDATE_GOLDEN=1, as a diff in review.
 */
const GOLDEN_DIR = fileURLToPath(new URL('./golden/', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const CLIENT_ID = 0x1122_3344_5566_7788n;
const SESSION_ID = 0xa1b2_c3d4_e5f6_0718n;
const seq = (n: number, from = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff));

/** JSON form of a value: byte strings as "hex:…", bigints as "u64:0x…". */
function jsonable(value: unknown): unknown {
  if (value instanceof Uint8Array) return `hex:${Buffer.from(value).toString('hex')}`;
  if (typeof value === 'bigint') return `u64:0x${value.toString(16).padStart(16, '0')}`;
  if (Array.isArray(value)) return value.map(jsonable);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonable(v)]));
  }
  return value;
}

interface Vector {
  name: string;
  description: string;
  connId: string;
  fields: unknown;
  /** The token's plaintext (or, for tokenless datagrams, the whole datagram), hex. */
  hex: string;
  /** Length of the datagram that carries it: 12 + sealedLength(plaintext) for sealed packets. */
  datagramLength: number;
}

function checkGolden(file: string, vectors: Vector[]): void {
  const path = `${GOLDEN_DIR}${file}.json`;
  const text = `${JSON.stringify(vectors, null, 2)}\n`;
  if (UPDATE) {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(path, text);
    return;
  }
  if (!existsSync(path)) expect.fail(`missing golden file ${file}.json: run with UPDATE_GOLDEN=1`);
  const committed = JSON.parse(readFileSync(path, 'utf8')) as Vector[];
  expect(vectors, `${file}.json differs from the encoding: review, then UPDATE_GOLDEN=1`).toEqual(committed);
}

function sealedVector(name: string, description: string, connId: bigint, packet: PacketInput): Vector {
  const bytes = encodePacket(connId, packet);
  const decoded = decodePacket(bytes, bytes.subarray(0, 12));
  if (!decoded.ok) throw decoded.error;
  const { type: _type, ...fields } = packet;
  return {
    name,
    description,
    connId: jsonable(connId) as string,
    fields: jsonable(fields),
    hex: bytes.toString('hex'),
    datagramLength: datagramLength(bytes.length),
  };
}

const hello: PacketInput = {
  type: 'client-hello',
  clientNonce: seq(16, 0x00),
  publicKey: seq(32, 0x20),
  maxBlockSize: 64512,
  receiveWindow: 8 * 1024 * 1024,
  idleTimeoutMs: 30_000,
};
const welcome: PacketInput = {
  type: 'server-welcome',
  clientNonce: seq(16, 0x00),
  serverNonce: seq(16, 0x40),
  publicKey: seq(32, 0x60),
  sessionConnId: SESSION_ID,
  blockSize: 32768,
  receiveWindow: 4 * 1024 * 1024,
  idleTimeoutMs: 20_000,
  access: 'read-write',
  resetToken: seq(16, 0xf0),
};

const helloV2: PacketInput = { ...hello, features: 1 } as PacketInput;
const welcomeV2: PacketInput = { ...welcome, features: 1 } as PacketInput;

const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const CONTROL_EXAMPLES: ControlMessage[] = [
  { op: 'list', id: 1, path: '', limit: 100 },
  { op: 'list', id: 2, path: 'photos/2024', cursor: 'MTAw' },
  { op: 'stat', id: 3, path: 'notes.txt' },
  { op: 'get', id: 4, path: 'big.iso' },
  { op: 'get', id: 10, path: 'big.iso', maxBlockSize: 64512 },
  {
    op: 'get',
    id: 5,
    path: 'big.iso',
    resume: {
      size: 58720256,
      mtimeMs: 1700000000123.5,
      have: [
        [0, 10],
        [12, 20],
      ],
    },
  },
  {
    op: 'put',
    id: 6,
    path: 'up/report.pdf',
    size: 1000000,
    mtimeMs: 1700000000000,
    overwrite: false,
    resume: true,
  },
  {
    op: 'put',
    id: 11,
    path: 'up/report.pdf',
    size: 1000000,
    overwrite: false,
    resume: false,
    maxBlockSize: 1362,
  },
  {
    op: 'commit',
    id: 7,
    transferId: 2,
    sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  },
  { op: 'rename', id: 8, from: 'a.txt', to: 'b/ä.txt', overwrite: true },
  { op: 'delete', id: 9, path: 'old.log' },
  { op: 'cancel', transferId: 3 },
  { op: 'digest', transferId: 1, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
  { op: 'abort', transferId: 1, code: 'EFILECHANGED', message: 'big.iso changed while it was being sent' },
  {
    op: 'reply',
    id: 1,
    ok: true,
    entries: [
      { name: 'photos', type: 'dir', size: 4096, mtimeMs: 1700000000000 },
      { name: 'notes.txt', type: 'file', size: 12, mtimeMs: 1700000000000.25 },
    ],
    next: 'bm90ZXMudHh0',
  },
  {
    op: 'reply',
    id: 3,
    ok: true,
    entry: { name: 'notes.txt', type: 'file', size: 12, mtimeMs: 1700000000000 },
  },
  {
    op: 'reply',
    id: 4,
    ok: true,
    transferId: 1,
    size: 58720256,
    mtimeMs: 1700000000123.5,
    blockSize: 32768,
    blockCount: 1792,
  },
  {
    op: 'reply',
    id: 5,
    ok: true,
    transferId: 1,
    size: 58720256,
    mtimeMs: 1700000000123.5,
    blockSize: 32768,
    blockCount: 1792,
    restarted: true,
  },
  { op: 'reply', id: 6, ok: true, transferId: 2, blockSize: 32768, blockCount: 31, have: [[0, 4]] },
  { op: 'reply', id: 7, ok: true },
  { op: 'reply', id: 9, ok: false, code: 'ENOENT', message: 'old.log: no such file' },
  // Feature Trees.
  {
    op: 'put',
    id: 10,
    path: 'run.sh',
    size: 120,
    mtimeMs: 1700000000000,
    overwrite: false,
    resume: false,
    mode: 0o755,
  },
  { op: 'mkdir', id: 11, path: 'photos/2024', parents: true, mode: 0o750 },
  { op: 'rmdir', id: 12, path: 'photos/old' },
  { op: 'walk', id: 13, path: 'photos', limit: 500 },
  { op: 'walk', id: 14, path: 'photos', cursor: 'AXBob3Rvcy8yMDI0L2EuanBn' },
  { op: 'hash', id: 15, path: 'photos/big.raw' },
  {
    op: 'putFiles',
    id: 16,
    files: [
      { path: 'site/index.html', size: 1234, mtimeMs: 1700000000000, mode: 0o644, sha256: SHA },
      { path: 'site/css/a.css', size: 0, sha256: SHA },
    ],
    overwrite: false,
    skipIdentical: true,
  },
  { op: 'commitFiles', id: 17, transferId: 4 },
  { op: 'getFiles', id: 18, files: [{ path: 'site/index.html' }, { path: 'site/css/a.css', sha256: SHA }] },
  {
    op: 'reply',
    id: 13,
    ok: true,
    entries: [
      { path: '2024', type: 'dir', size: 0, mtimeMs: 1700000000000, mode: 0o755 },
      { path: '2024/a.jpg', type: 'file', size: 3000, mtimeMs: 1700000000000.5, mode: 0o644 },
      { path: '2024/latest', type: 'link', size: 0, mtimeMs: 1700000000000 },
    ],
    next: 'AXBob3Rvcy8yMDI0L2xhdGVzdA',
  },
  { op: 'reply', id: 15, ok: true, sha256: SHA, size: 0 },
  {
    op: 'reply',
    id: 16,
    ok: true,
    transferId: 4,
    blockSize: 64512,
    blockCount: 1,
    skipped: [1],
    failed: [],
  },
  {
    op: 'reply',
    id: 17,
    ok: true,
    failed: [{ index: 0, code: 'EEXIST', message: '"site/index.html" already exists' }],
  },
  {
    op: 'reply',
    id: 18,
    ok: true,
    transferId: 5,
    blockSize: 64512,
    blockCount: 1,
    files: [
      { size: 1234, mtimeMs: 1700000000000, mode: 0o644, sha256: SHA, sent: true },
      { code: 'ENOENT', message: '"site/css/a.css": no such file or directory' },
    ],
  },
  {
    op: 'reply',
    id: 19,
    ok: true,
    transferId: 6,
    size: 120,
    mtimeMs: 1700000000000,
    blockSize: 64512,
    blockCount: 1,
    mode: 0o755,
  },
  { op: 'reply', id: 12, ok: false, code: 'ENOTEMPTY', message: '"photos/old": the directory is not empty' },
];

describe('golden vectors', () => {
  it('handshake packets', () => {
    checkGolden('handshake', [
      sealedVector('client-hello', 'CLIENT_HELLO, padded to a 1205-byte datagram', CLIENT_ID, hello),
      sealedVector('server-welcome', 'SERVER_WELCOME answering it', CLIENT_ID, welcome),
      sealedVector('server-time', 'SERVER_TIME answering it when its timestamp is out of window', CLIENT_ID, {
        type: 'server-time',
        clientNonce: seq(16, 0x00),
      }),
      sealedVector(
        'client-hello-v2',
        'version-2 CLIENT_HELLO listing feature Trees (1), padded to a 1205-byte datagram',
        CLIENT_ID,
        helloV2,
      ),
      sealedVector(
        'server-welcome-v2',
        'version-2 SERVER_WELCOME granting feature Trees',
        CLIENT_ID,
        welcomeV2,
      ),
      sealedVector(
        'server-welcome-v2-path-mtu',
        'version-2 SERVER_WELCOME granting features Trees and PathMtu (1 | 2 = 3)',
        CLIENT_ID,
        { ...welcome, features: 3 } as PacketInput,
      ),
    ]);
  });

  it('data packets', () => {
    checkGolden('data', [
      sealedVector('data', 'DATA carrying 5 bytes of block 7 of transfer 1', SESSION_ID, {
        type: 'data',
        packetNumber: 42,
        sendTime: 123_456_789,
        transferId: 1,
        blockIndex: 7,
        payload: Buffer.from('hello'),
      }),
      sealedVector('data-max-fields', 'DATA with every header field at its maximum', SESSION_ID, {
        type: 'data',
        packetNumber: 0xffff_ffff,
        sendTime: 0xffff_ffff,
        transferId: 0xffff_ffff,
        blockIndex: 0xffff_fffe,
        payload: Buffer.from([0]),
      }),
    ]);
  });

  it('ack packets', () => {
    checkGolden('ack', [
      sealedVector('ack-single', 'ACK of packets 0..9, no flow entries', SESSION_ID, {
        type: 'ack',
        packetNumber: 3,
        tsEcho: 1000,
        ackDelay: 250,
        ranges: [[0, 9]],
        flows: [],
      }),
      sealedVector('ack-ranges', 'ACK of 90..100, 80..85 and 5..5 (gaps 3 and 73), two flows', SESSION_ID, {
        type: 'ack',
        packetNumber: 17,
        tsEcho: 0xdead_beef,
        ackDelay: 5000,
        ranges: [
          [90, 100],
          [80, 85],
          [5, 5],
        ],
        flows: [
          { transferId: 1, cumulativeBlocks: 64, blockLimit: 1088 },
          { transferId: 2, cumulativeBlocks: 0, blockLimit: 256 },
        ],
      }),
    ]);
  });

  it('control, ping and close packets', () => {
    checkGolden('session', [
      sealedVector('control', 'CONTROL carrying a list request', SESSION_ID, {
        type: 'control',
        packetNumber: 1,
        messageSeq: 0,
        body: encodeControlMessage({ op: 'list', id: 1, path: '' }),
      }),
      sealedVector('ping', 'PING', SESSION_ID, { type: 'ping', packetNumber: 99 }),
      sealedVector('part', 'PART: bytes 1000..1004 of block 7 of transfer 1', SESSION_ID, {
        type: 'part',
        packetNumber: 43,
        sendTime: 123456,
        transferId: 1,
        blockIndex: 7,
        offset: 1000,
        payload: seq(5, 0xa0),
      }),
      sealedVector('probe', 'PROBE padded to a 1461-byte datagram (a 1500-byte MTU over IPv4)', SESSION_ID, {
        type: 'probe',
        packetNumber: 7,
        padding: 1374,
      }),
      sealedVector('close-normal', 'CLOSE, normal', SESSION_ID, {
        type: 'close',
        packetNumber: 100,
        errorCode: 0,
        reason: '',
      }),
      sealedVector('close-error', 'CLOSE with EPROTO and a reason', SESSION_ID, {
        type: 'close',
        packetNumber: 101,
        errorCode: 14,
        reason: 'unexpected packet type 0x15',
      }),
    ]);
  });

  it('tokenless datagrams', () => {
    const key = seq(16, 0x80);
    const token = resetTokenFor(key, SESSION_ID);
    const reset = encodeResetDatagram(SESSION_ID, token);
    const vn = encodeVersionNegotiation(CLIENT_ID, [1]);
    const reject = encodeRejectDatagram(CLIENT_ID, 10);
    expect(
      decodeResetDatagram(reset).ok && decodeVersionNegotiation(vn).ok && decodeRejectDatagram(reject).ok,
    ).toBe(true);
    checkGolden('tokenless', [
      {
        name: 'reset',
        description:
          'RESET; token = HMAC-SHA256(psk signing key 80 81 .. 8f, "ferry reset" || conn id)[0..16)',
        connId: jsonable(SESSION_ID) as string,
        fields: jsonable({ pskSigningKey: key, resetToken: token }),
        hex: reset.toString('hex'),
        datagramLength: reset.length,
      },
      {
        name: 'reject',
        description: 'REJECT of a hello with EAUTH (wire number 10)',
        connId: jsonable(CLIENT_ID) as string,
        fields: { errorCode: 10 },
        hex: reject.toString('hex'),
        datagramLength: reject.length,
      },
      {
        name: 'version-negotiation',
        description: 'VERSION NEGOTIATION listing version 1',
        connId: jsonable(CLIENT_ID) as string,
        fields: { versions: [1] },
        hex: vn.toString('hex'),
        datagramLength: vn.length,
      },
      {
        name: 'handshake-context',
        description:
          'HKDF context: SHA-256(client hello plaintext || server welcome plaintext) of handshake.json',
        connId: jsonable(CLIENT_ID) as string,
        fields: {},
        hex: handshakeContext(encodePacket(CLIENT_ID, hello), encodePacket(CLIENT_ID, welcome)).toString(
          'hex',
        ),
        datagramLength: 0,
      },
    ]);
  });

  it('control messages (canonical JSON bodies)', () => {
    const vectors = CONTROL_EXAMPLES.map((message) => {
      const body = encodeControlMessage(message);
      expect(decodeControlMessage(body)).toEqual({ ok: true, value: message });
      return { json: body.toString('utf8'), bytes: body.length };
    });
    const path = `${GOLDEN_DIR}control-messages.json`;
    const text = `${JSON.stringify(vectors, null, 2)}\n`;
    if (UPDATE) writeFileSync(path, text);
    else {
      if (!existsSync(path))
        expect.fail('missing golden file control-messages.json: run with UPDATE_GOLDEN=1');
      expect(vectors).toEqual(JSON.parse(readFileSync(path, 'utf8')));
    }
  });
});
