import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_HELLO_PADDING,
  CONTROL_HEADER_LENGTH,
  DATA_HEADER_LENGTH,
  DEFAULT_BLOCK_SIZE,
  dataDatagramLength,
  datagramLength,
  decodeControlMessage,
  ERROR_NAMES,
  ERRORS,
  encodeControl,
  encodeControlMessage,
  encodeData,
  errorByName,
  errorByWire,
  exitCodeFor,
  FerryError,
  INTERNET_BLOCK_SIZE,
  INTERNET_MAX_DATAGRAM,
  isRequest,
  type ListReply,
  MAX_BLOCK_SIZE,
  MAX_CLOSE_REASON_BYTES,
  MAX_CONTROL_BYTES,
  MAX_CURSOR_LENGTH,
  MAX_DATAGRAM,
  MIN_BLOCK_SIZE,
  MIN_HELLO_DATAGRAM,
  MIN_HELLO_PLAINTEXT,
  maxPlaintextLength,
  ProtocolError,
  paginateEntries,
  REPLY_ERROR_NAMES,
  sealedLength,
  WIRE_ERROR_NAMES,
} from '../src/index.js';
import * as arb from './arbitraries.js';

describe('sizes computed from the Fernet layout', () => {
  it('sealedLength matches a real AES-128-CBC/PKCS#7 ciphertext plus the 57 bytes of overhead', () => {
    const key = Buffer.alloc(16, 1);
    const iv = Buffer.alloc(16, 2);
    for (const n of [0, 1, 15, 16, 17, 31, 32, 1000, 1120, 65394]) {
      const cipher = createCipheriv('aes-128-cbc', key, iv);
      const ciphertext = Buffer.concat([cipher.update(Buffer.alloc(n)), cipher.final()]);
      expect(sealedLength(n)).toBe(1 + 8 + 16 + ciphertext.length + 32);
    }
  });

  it('block sizes are the largest that fit their datagram budgets', () => {
    expect(MAX_BLOCK_SIZE).toBe(64512);
    expect(dataDatagramLength(MAX_BLOCK_SIZE)).toBe(64613);
    expect(dataDatagramLength(MAX_BLOCK_SIZE + 1024)).toBeGreaterThan(MAX_DATAGRAM);
    expect(INTERNET_BLOCK_SIZE).toBe(1120);
    expect(dataDatagramLength(INTERNET_BLOCK_SIZE)).toBe(1221);
    expect(dataDatagramLength(INTERNET_BLOCK_SIZE + 16)).toBeGreaterThan(INTERNET_MAX_DATAGRAM);
    expect(DEFAULT_BLOCK_SIZE).toBe(64512);
    expect(MIN_BLOCK_SIZE).toBeLessThanOrEqual(INTERNET_BLOCK_SIZE);
    expect(dataDatagramLength(MAX_BLOCK_SIZE)).toBe(datagramLength(DATA_HEADER_LENGTH + MAX_BLOCK_SIZE));
  });

  it('the hello is padded to the smallest plaintext whose datagram reaches 1200 bytes', () => {
    expect(MIN_HELLO_PLAINTEXT).toBe(1120);
    expect(CLIENT_HELLO_PADDING).toBe(1045);
    expect(datagramLength(MIN_HELLO_PLAINTEXT)).toBe(1205);
    expect(datagramLength(MIN_HELLO_PLAINTEXT - 1)).toBeLessThan(MIN_HELLO_DATAGRAM);
  });

  it('maxPlaintextLength is the largest plaintext whose datagram fits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 12 + 57 + 16, max: MAX_DATAGRAM }), (budget) => {
        const n = maxPlaintextLength(budget);
        expect(datagramLength(n)).toBeLessThanOrEqual(budget);
        expect(datagramLength(n + 1)).toBeGreaterThan(budget);
      }),
    );
  });

  it('the largest DATA and CONTROL packets fit one datagram', () => {
    const data = encodeData(1n, {
      packetNumber: 0,
      sendTime: 0,
      transferId: 0,
      blockIndex: 0,
      payload: Buffer.alloc(MAX_BLOCK_SIZE),
    });
    expect(datagramLength(data.length)).toBeLessThanOrEqual(MAX_DATAGRAM);
    const control = encodeControl(1n, {
      packetNumber: 0,
      messageSeq: 0,
      body: Buffer.alloc(MAX_CONTROL_BYTES, 0x20),
    });
    expect(datagramLength(control.length)).toBeLessThanOrEqual(MAX_DATAGRAM);
  });
});

describe('the error table', () => {
  it('has unique wire numbers and names, and the exit codes of the specification', () => {
    const wires = WIRE_ERROR_NAMES.map((n) => ERRORS[n].wire);
    expect(new Set(wires).size).toBe(wires.length);
    expect(ERROR_NAMES.length).toBe(25);
    expect(Object.fromEntries(ERROR_NAMES.map((n) => [n, [ERRORS[n].wire, ERRORS[n].exitCode]]))).toEqual({
      OK: [0, 0],
      EINTERNAL: [1, 1],
      EUSAGE: [null, 2],
      ENOENT: [2, 3],
      EEXIST: [3, 4],
      EACCES: [4, 5],
      EINVAL: [5, 2],
      EISDIR: [6, 3],
      ENOTDIR: [7, 3],
      ENOSPC: [8, 6],
      EIO: [9, 6],
      EAUTH: [10, 7],
      ETIMEDOUT: [11, 8],
      ECONNRESET: [12, 8],
      EHOSTUNREACH: [null, 8],
      ECONNREFUSED: [null, 8],
      EBUSY: [13, 8],
      EPROTO: [14, 9],
      EVERSION: [15, 9],
      EINTEGRITY: [16, 10],
      EFILECHANGED: [17, 10],
      ECANCELED: [18, 130],
      ETOOBIG: [19, 2],
      ENAMETOOLONG: [20, 2],
      ENOTEMPTY: [21, 4],
    });
    expect(REPLY_ERROR_NAMES).not.toContain('OK');
    expect(REPLY_ERROR_NAMES).not.toContain('EUSAGE');
  });

  it('looks errors up by wire number and by name', () => {
    expect(errorByWire(12)?.name).toBe('ECONNRESET');
    expect(errorByWire(21)?.name).toBe('ENOTEMPTY');
    expect(errorByWire(22)).toBeUndefined();
    expect(errorByName('EACCES')?.wire).toBe(4);
    expect(errorByName('toString')).toBeUndefined();
    expect(exitCodeFor('ECANCELED')).toBe(130);
    expect(exitCodeFor('ENOPE')).toBe(1);
  });

  it('FerryError maps to CLOSE fields, error replies and back', () => {
    const error = new FerryError('ENOSPC', 'disk full');
    expect(error).toBeInstanceOf(Error);
    expect(error.exitCode).toBe(6);
    expect(error.toWire()).toEqual({ errorCode: 8, reason: 'disk full' });
    expect(error.toReply(7)).toEqual({ op: 'reply', id: 7, ok: false, code: 'ENOSPC', message: 'disk full' });
    expect(new FerryError('EUSAGE', 'x').toWire().errorCode).toBe(1);
    expect(new FerryError('EHOSTUNREACH', 'x').toReply(1).code).toBe('EINTERNAL');
    const back = FerryError.fromWire(8, 'disk full');
    expect([back.code, back.message]).toEqual(['ENOSPC', 'disk full']);
    expect(FerryError.fromWire(0, '').code).toBe('OK');
    expect(FerryError.fromWire(999, 'new').code).toBe('EPROTO');
    const long = new FerryError('EIO', 'é'.repeat(300)).toWire().reason;
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
    expect(long).toBe('é'.repeat(128));
  });

  it('ProtocolError is a FerryError with a reason and the EPROTO or EVERSION code', () => {
    const error = new ProtocolError('truncated', 'ack');
    expect(error).toBeInstanceOf(FerryError);
    expect([error.code, error.reason, error.message]).toEqual(['EPROTO', 'truncated', 'truncated: ack']);
    expect(new ProtocolError('unsupported-version', undefined, 'EVERSION').code).toBe('EVERSION');
  });
});

describe('control messages', () => {
  it('rejects bad UTF-8, bad JSON, schema failures and oversize bodies with their reasons', () => {
    const reason = (body: Uint8Array) => {
      const r = decodeControlMessage(body);
      return r.ok ? 'ok' : r.error.reason;
    };
    expect(reason(Buffer.from([0xc3, 0x28]))).toBe('bad-utf8');
    expect(reason(Buffer.from('{"op":'))).toBe('bad-json');
    expect(reason(Buffer.from('{"op":"stat","id":1}'))).toBe('schema');
    expect(reason(Buffer.from('{"op":"stat","id":1,"path":"","extra":true}'))).toBe('schema');
    expect(reason(Buffer.from('{"op":"commit","id":1,"transferId":1,"sha256":"AB"}'))).toBe('schema');
    expect(reason(Buffer.from('{"op":"reply","id":1,"ok":false,"code":"EUSAGE","message":""}'))).toBe(
      'schema',
    );
    expect(
      reason(Buffer.from('{"op":"get","id":1,"path":"a","resume":{"size":1,"mtimeMs":0,"have":[[5,3]]}}')),
    ).toBe('schema');
    expect(reason(Buffer.alloc(MAX_CONTROL_BYTES + 1, 0x20))).toBe('too-large');
    expect(reason(Buffer.from('{"op":"stat","id":1,"path":""}'))).toBe('ok');
  });

  it('refuses a message with a member name twice, at any depth, however the name is escaped', () => {
    const reason = (text: string) => {
      const r = decodeControlMessage(Buffer.from(text));
      return r.ok ? 'ok' : r.error.reason;
    };
    // JSON.parse would keep the last one: this stat would have been a delete of victim.txt.
    expect(reason('{"op":"stat","id":1,"path":"a","op":"delete","path":"victim.txt"}')).toBe(
      'duplicate-name',
    );
    expect(reason('{"op":"delete","id":1,"path":"a","\\u0070ath":"victim.txt"}')).toBe('duplicate-name');
    expect(reason('{"op":"get","id":1,"path":"a","resume":{"size":1,"mtimeMs":0,"have":[],"size":2}}')).toBe(
      'duplicate-name',
    );
    expect(
      reason(
        '{"op":"reply","id":1,"ok":true,"entries":[{"name":"x","type":"file","size":1,"mtimeMs":0,"name":"y"}]}',
      ),
    ).toBe('duplicate-name');
    // The same names in different objects, and names inside string values, are not duplicates.
    expect(
      reason(
        '{"op":"reply","id":1,"ok":true,"entries":[{"name":"op","type":"file","size":1,"mtimeMs":0},{"name":"\\"op\\":","type":"dir","size":2,"mtimeMs":0}]}',
      ),
    ).toBe('ok');
    expect(reason('{"op":"stat","id":1,"path":"{\\"op\\":1,\\"op\\":2}"}')).toBe('ok');
    expect(reason(' { "op" : "stat" , "id" : 1 , "path" : "" } ')).toBe('ok');
  });

  it('enforces path and name limits in UTF-8 bytes, not characters', () => {
    const stat = (path: string) =>
      decodeControlMessage(Buffer.from(JSON.stringify({ op: 'stat', id: 1, path }))).ok;
    expect(stat('é'.repeat(2048))).toBe(true); // 4096 bytes
    expect(stat(`${'é'.repeat(2048)}a`)).toBe(false);
    const entry = (name: string) =>
      decodeControlMessage(
        Buffer.from(
          JSON.stringify({
            op: 'reply',
            id: 1,
            ok: true,
            entry: { name, type: 'file', size: 0, mtimeMs: 0 },
          }),
        ),
      ).ok;
    expect(entry('日'.repeat(85))).toBe(true); // 255 bytes
    expect(entry('日'.repeat(86))).toBe(false);
    expect(entry('a/b')).toBe(false);
  });

  it('encodeControlMessage refuses invalid and oversize messages', () => {
    expect(() => encodeControlMessage({ op: 'stat', id: -1, path: '' })).toThrow(ProtocolError);
    const huge = {
      op: 'reply' as const,
      id: 1,
      ok: true as const,
      entries: Array.from({ length: 200 }, () => ({
        name: 'x'.repeat(200),
        type: 'file' as const,
        size: 0,
        mtimeMs: 0,
      })),
    };
    expect(() => encodeControlMessage(huge)).toThrow(/too-large/);
  });

  it('isRequest tells requests from replies and events', () => {
    expect(isRequest({ op: 'stat', id: 1, path: '' })).toBe(true);
    expect(isRequest({ op: 'cancel', transferId: 1 })).toBe(false);
    expect(isRequest({ op: 'reply', id: 1, ok: true })).toBe(false);
  });

  it('paginateEntries pages a listing so that every reply fits, with a cursor, and loses nothing', () => {
    fc.assert(
      fc.property(
        fc.array(arb.entry, { maxLength: 400 }),
        fc.constantFrom(
          [MAX_CONTROL_BYTES, MAX_CURSOR_LENGTH],
          [4096, MAX_CURSOR_LENGTH],
          [maxPlaintextLength(INTERNET_MAX_DATAGRAM) - CONTROL_HEADER_LENGTH, 344],
        ),
        (entries, [maxBytes, cursorLength]) => {
          let rest = entries;
          let pages = 0;
          while (rest.length > 0 || pages === 0) {
            const n = paginateEntries(rest, maxBytes, cursorLength);
            if (rest.length > 0) expect(n).toBeGreaterThan(0);
            const more = n < rest.length;
            const reply: ListReply = {
              op: 'reply',
              id: 0xffff_ffff,
              ok: true,
              entries: rest.slice(0, n),
              ...(more ? { next: 'A'.repeat(cursorLength) } : {}),
            };
            expect(encodeControlMessage(reply).length).toBeLessThanOrEqual(maxBytes);
            rest = rest.slice(n);
            pages++;
            if (rest.length === 0) break;
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
