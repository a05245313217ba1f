// Seal/open throughput on one core: `pnpm turbo run build --filter=@ferry/crypto && node packages/crypto/test/throughput.mjs`.
// Plaintext MB/s (10^6 bytes) and tokens/s, after a warm-up; each size runs for about a second.
import { Fernet, generateKey } from '../dist/index.js';

const fernet = new Fernet(generateKey());
const sizes = [
  ['1 KiB', 1024],
  ['1200 B', 1200],
  ['16 KiB', 16 * 1024],
  ['64 KiB', 64 * 1024],
];

function measure(fn) {
  for (let i = 0; i < 2000; i++) fn();
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < 1) {
    for (let i = 0; i < 200; i++) fn();
    n += 200;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  return n / elapsed;
}

console.log(`node ${process.version}`);
console.log('size     seal MB/s  seal tok/s  open MB/s  open tok/s');
for (const [label, size] of sizes) {
  const header = Buffer.alloc(17, 1);
  const payload = Buffer.alloc(size - header.length, 2);
  const sealRate = measure(() => fernet.seal([header, payload], { headroom: 12 }));
  const token = fernet.seal([header, payload]);
  const openRate = measure(() => fernet.open(token, { ttl: 60 }));
  const mb = (rate) => ((rate * size) / 1e6).toFixed(0).padStart(9);
  const ops = (rate) => Math.round(rate).toString().padStart(11);
  console.log(`${label.padEnd(8)} ${mb(sealRate)} ${ops(sealRate)} ${mb(openRate)} ${ops(openRate)}`);
}
