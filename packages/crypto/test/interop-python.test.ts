import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Fernet, formatKey, generateKey, parseKey, tokenTimestamp } from '../src/index.js';

// Python's `cryptography` is the reference Fernet; it handles binary payloads, unlike the npm package.
// Requests go to one python3 process per test as JSON on stdin; bytes travel as hex.
const PYTHON_SCRIPT = `
import json, sys
from cryptography.fernet import Fernet, InvalidToken
req = json.load(sys.stdin)
f = Fernet(req["key"].encode())
out = {"decrypted": [], "encrypted": [], "parts": [], "rejected": []}
for t in req.get("decrypt", []):
    if "ttl" in t:
        pt = f.decrypt_at_time(t["token"].encode(), t["ttl"], t["now"])
    else:
        pt = f.decrypt(t["token"].encode())
    out["decrypted"].append(pt.hex())
for e in req.get("encrypt", []):
    out["encrypted"].append(f.encrypt_at_time(bytes.fromhex(e["hex"]), e["now"]).decode())
for p in req.get("parts", []):
    # A private helper, but the only way to fix the IV and compare tokens byte for byte.
    tok = f._encrypt_from_parts(bytes.fromhex(p["hex"]), p["now"], bytes.fromhex(p["iv"]))
    out["parts"].append(tok.decode() if isinstance(tok, bytes) else tok)
for t in req.get("reject", []):
    try:
        f.decrypt_at_time(t["token"].encode(), t["ttl"], t["now"])
        out["rejected"].append(False)
    except InvalidToken:
        out["rejected"].append(True)
if req.get("generate"):
    out["generated"] = Fernet.generate_key().decode()
json.dump(out, sys.stdout)
`;

interface PythonRequest {
  key: string;
  decrypt?: { token: string; ttl?: number; now?: number }[];
  encrypt?: { hex: string; now: number }[];
  parts?: { hex: string; now: number; iv: string }[];
  reject?: { token: string; ttl: number; now: number }[];
  generate?: boolean;
}
interface PythonReply {
  decrypted: string[];
  encrypted: string[];
  parts: string[];
  rejected: boolean[];
  generated?: string;
}

function runPython(request: PythonRequest): PythonReply {
  const result = spawnSync('python3', ['-c', PYTHON_SCRIPT], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`python3 failed: ${result.stderr || result.error?.message}`);
  return JSON.parse(result.stdout) as PythonReply;
}

function probePython(): string | undefined {
  const probe = spawnSync('python3', ['-c', 'import cryptography.fernet'], { encoding: 'utf8' });
  if (probe.error) return `python3 not runnable (${probe.error.message})`;
  if (probe.status !== 0) return 'python3 has no cryptography module (pip install cryptography)';
  return undefined;
}

const missing = probePython();
if (missing !== undefined) console.warn(`Python Fernet interop tests skipped: ${missing}`);
const skipNote = missing === undefined ? '' : ` [skipped: ${missing}]`;

const NOW = 1_700_000_000;
const SIZES = [0, 1, 15, 16, 17, 255, 1024, 1183, 16 * 1024, 65423];

/** Plaintexts that are not valid UTF-8: every byte value, then random bytes of the given sizes. */
function binaryPayloads(): Buffer[] {
  const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  return [allBytes, Buffer.from([0xff, 0xfe, 0x00, 0xc3]), ...SIZES.map((n) => randomBytes(n))];
}

describe.skipIf(missing !== undefined)(
  `interop with Python cryptography.fernet (binary payloads)${skipNote}`,
  () => {
    const key = generateKey();
    const ours = new Fernet(key);

    it('Python decrypts our binary tokens, with its TTL check at our timestamp', () => {
      const payloads = binaryPayloads();
      const tokens = payloads.map((p) => ours.encrypt(p, { now: NOW }));
      const reply = runPython({ key, decrypt: tokens.map((token) => ({ token, ttl: 60, now: NOW + 30 })) });
      expect(reply.decrypted).toEqual(payloads.map((p) => p.toString('hex')));
    });

    it('we decrypt and open Python binary tokens, reading its timestamp', () => {
      const payloads = binaryPayloads();
      const reply = runPython({ key, encrypt: payloads.map((p) => ({ hex: p.toString('hex'), now: NOW })) });
      reply.encrypted.forEach((token, i) => {
        const expected = payloads[i]!;
        expect(ours.decrypt(token, { ttl: 60, now: NOW + 59 }).equals(expected)).toBe(true);
        const raw = Buffer.from(token, 'base64url');
        expect(tokenTimestamp(raw)).toBe(NOW);
        expect(ours.open(raw).equals(expected)).toBe(true);
      });
    });

    it('produces byte-identical tokens to Python for the same time and IV', () => {
      const cases = binaryPayloads().map((p) => ({
        hex: p.toString('hex'),
        now: NOW,
        iv: randomBytes(16).toString('hex'),
      }));
      const reply = runPython({ key, parts: cases });
      cases.forEach((c, i) => {
        expect(ours.encrypt(Buffer.from(c.hex, 'hex'), { now: c.now, iv: Buffer.from(c.iv, 'hex') })).toBe(
          reply.parts[i],
        );
      });
    });

    it('round-trips arbitrary binary payloads both ways', () => {
      const payloads = fc
        .sample(fc.uint8Array({ maxLength: 3000, size: 'max' }), 60)
        .map((p) => Buffer.from(p));
      const reply = runPython({
        key,
        decrypt: payloads.map((p) => ({ token: ours.encrypt(p) })),
        encrypt: payloads.map((p) => ({ hex: p.toString('hex'), now: NOW })),
      });
      expect(reply.decrypted).toEqual(payloads.map((p) => p.toString('hex')));
      reply.encrypted.forEach((token, i) => {
        expect(ours.decrypt(token).equals(payloads[i]!)).toBe(true);
      });
    });

    it('agrees with Python on what the time window rejects', () => {
      const token = ours.encrypt(Buffer.from([1, 2, 3]), { now: NOW });
      const windows = [
        { ttl: 60, now: NOW + 60, ok: true },
        { ttl: 60, now: NOW + 61, ok: false },
        { ttl: 60, now: NOW - 60, ok: true },
        { ttl: 60, now: NOW - 61, ok: false },
      ];
      const reply = runPython({ key, reject: windows.map((w) => ({ token, ttl: w.ttl, now: w.now })) });
      windows.forEach((w, i) => {
        expect(reply.rejected[i]).toBe(!w.ok);
        expect(
          ours.tryOpen(Buffer.from(token, 'base64url'), { ttl: w.ttl, now: w.now }) instanceof Buffer,
        ).toBe(w.ok);
      });
    });

    it('shares keys: Python uses our generated key, and we parse Python generate_key()', () => {
      const reply = runPython({ key, generate: true });
      const pythonKey = reply.generated ?? '';
      expect(formatKey(parseKey(pythonKey))).toBe(pythonKey);
      const theirs = new Fernet(pythonKey);
      const back = runPython({ key: pythonKey, decrypt: [{ token: theirs.encrypt(Buffer.from([0, 255])) }] });
      expect(back.decrypted).toEqual(['00ff']);
    });
  },
);
