/**
 * The seed's wire format, as its client speaks it (pure: no sockets, no files, no clocks).
 *
 * Each command is one ASCII datagram from a fresh socket: `get NAME`, `put NAME`, `rename OLD NEW`,
 * `list`, `exit`. Replies to list, rename and exit are one text datagram. A file travels stop-and-wait
 * as Fernet tokens (base64url text) of `CHUNK + "###-###0"`, each acknowledged with a text ending in
 * `###-###1` (next), `###-###0` (send it again) or `###-###2` (the transfer is over); a token whose
 * chunk is empty ends the file.
 */

/** The seed's hard-coded Fernet key. It is public: it gives no confidentiality and no authentication. */
export const SEED_KEY = 'Yq0_0faWZEdP1ij8qm4Fy9alpCIYUUj6tothiIla1H8=';

/** What separates a chunk (or an acknowledgement's text) from its flag. */
export const SEED_MARKER = '###-###';
const MARKER = Buffer.from(SEED_MARKER, 'latin1');
/** What the seed appends to every chunk: the marker and the flag "0" (new data). */
const FRAME_TAIL = Buffer.from(`${SEED_MARKER}0`, 'latin1');

/** Largest chunk in one token (the seed reads files 2,048 bytes at a time). */
export const SEED_CHUNK_BYTES = 2048;
/** The seed's client reads at most this many bytes of a list (or rename, or exit) reply. */
export const SEED_REPLY_BYTES = 2048;

/** The texts of the seed's protocol, exactly (its client compares some of them). */
export const SEED_TEXT = {
  fileExists: 'FE',
  fileNotExists: 'FNE',
  listHeader: 'Files in the server directory are: \n',
  renamed: 'File renamed.',
  renameMissing: "File doesn't exists.",
  renameExists: 'File name already exist. Please give another name.',
  renameOtherExtension: 'Please provide file name with same extension.',
  renameNoExtension: 'Please provide file with extension.',
  exit: 'Client and Server exit',
  ackNext: `ACK Packet received.${SEED_MARKER}1`,
  ackResend: `ACK Packet received.${SEED_MARKER}0`,
  ackDone: `ACK File transferred ${SEED_MARKER}2`,
} as const;

export type SeedCommand =
  | { kind: 'get'; name: string }
  | { kind: 'put'; name: string }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'list' }
  | { kind: 'exit' };

const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** rename with two paths of the longest ferry allows (4,096 bytes each), and some slack. */
const MAX_COMMAND_BYTES = 8300;

/**
 * A command datagram, or undefined for anything else (a token, an acknowledgement, FE/FNE, noise).
 * Words are separated by single spaces, as the seed's server split them; the command word is
 * case-insensitive and names are kept as sent (the seed's client has already lower-cased them).
 */
export function parseSeedCommand(datagram: Uint8Array): SeedCommand | undefined {
  if (datagram.length === 0 || datagram.length > MAX_COMMAND_BYTES) return undefined;
  // Tokens and acknowledgements arrive by the thousand: rule them out by the first word alone.
  const space = datagram.indexOf(0x20);
  const wordLength = space < 0 ? datagram.length : space;
  if (wordLength < 3 || wordLength > 6) return undefined;
  let text: string;
  try {
    text = UTF8.decode(datagram);
  } catch {
    return undefined;
  }
  const words = text.split(' ');
  const word = words[0]!.toLowerCase();
  switch (word) {
    case 'get':
    case 'put':
      return words[1] === undefined ? undefined : { kind: word, name: words[1] };
    case 'rename':
      return words[1] === undefined || words[2] === undefined
        ? undefined
        : { kind: 'rename', from: words[1], to: words[2] };
    case 'list':
    case 'exit':
      return { kind: word };
    default:
      return undefined;
  }
}

/** A chunk with the seed's tail appended: the plaintext of one token. */
export function frameChunk(chunk: Uint8Array): Buffer {
  return Buffer.concat([chunk, FRAME_TAIL]);
}

/**
 * A token's plaintext split into its chunk and flag, at the **last** marker: the seed's client cuts
 * files blindly every 2,048 bytes, so its chunks may contain the marker themselves.
 */
export function openFrame(plaintext: Buffer): { chunk: Buffer; flag: string } | undefined {
  const at = plaintext.lastIndexOf(MARKER);
  if (at < 0) return undefined;
  return { chunk: plaintext.subarray(0, at), flag: plaintext.toString('latin1', at + MARKER.length) };
}

export type SeedAck = 'next' | 'resend' | 'done';

/** An acknowledgement by its flag (the text before the marker is for people), or undefined. */
export function parseSeedAck(datagram: Uint8Array): SeedAck | undefined {
  const text = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.length).toString('latin1');
  const at = text.lastIndexOf(SEED_MARKER);
  if (at < 0) return undefined;
  switch (text.slice(at + SEED_MARKER.length)) {
    case '1':
      return 'next';
    case '0':
      return 'resend';
    case '2':
      return 'done';
    default:
      return undefined;
  }
}

/** An acknowledgement that ends a transfer, with a message the seed's client prints. */
export function finalAck(message: string): string {
  // A marker inside the message would move the flag the client reads.
  return `${message.replaceAll(SEED_MARKER, '###')} ${SEED_MARKER}2`;
}

/**
 * Suffixes a chunk must not end with. The seed's client splits a token's plaintext at the FIRST
 * marker, so `CHUNK + "###-###0"` must have its first marker where the chunk ends. The marker
 * "###-###" overlaps itself with periods 4, 5 and 6, so a chunk ending in "###-", "###-#" or
 * "###-##" forms an earlier marker with the tail; shorter runs of '#' (even a whole file of them)
 * are harmless, which a brute-force check over every ending of up to 7 bytes confirms.
 */
const UNSAFE_ENDINGS = ['###-', '###-#', '###-##'].map((s) => Buffer.from(s, 'latin1'));

function endsUnsafely(data: Uint8Array, start: number, end: number): boolean {
  for (const ending of UNSAFE_ENDINGS) {
    if (end - start < ending.length) continue;
    let match = true;
    for (let i = 0; i < ending.length && match; i++) {
      match = data[end - ending.length + i] === ending[i];
    }
    if (match) return true;
  }
  return false;
}

/**
 * The length of the next chunk of `data[start, end)` that the seed's client reassembles intact: at
 * most `max` bytes, never containing the marker, never ending with a marker prefix that would join
 * the tail. Shorter chunks cost a datagram each and nothing else. 0 only when start >= end.
 */
export function seedChunkLength(
  data: Uint8Array,
  start: number,
  end: number,
  max = SEED_CHUNK_BYTES,
): number {
  let length = Math.min(max, end - start);
  if (length <= 0) return 0;
  const window = Buffer.from(data.buffer, data.byteOffset + start, length);
  const marker = window.indexOf(MARKER);
  // Cut inside the first marker, after its "###": that ending is safe, and what follows starts with '-'.
  if (marker >= 0) length = marker + 3;
  // Each step removes one byte of an unsafe ending; one byte alone is always safe.
  while (endsUnsafely(data, start, start + length)) length--;
  return length;
}

/** The last line of a list reply that had to leave names out. */
export const LIST_MORE_LINE = '(more not shown: the seed client reads 2,048 bytes; ferry ls lists all)';

/**
 * The list reply: the header and the names, one per line, no trailing newline, within what the seed's
 * client reads (2,048 bytes of UTF-8). When names are left out (or `complete` is false: the directory
 * has more than `names`), the last line is LIST_MORE_LINE. Callers mark directories with a '/'.
 */
export function encodeListReply(
  names: readonly string[],
  complete: boolean,
  maxBytes = SEED_REPLY_BYTES,
): string {
  // With no names the header's own newline is the trailing one.
  if (names.length === 0 && complete) return SEED_TEXT.listHeader.slice(0, -1);
  const all = SEED_TEXT.listHeader + names.join('\n');
  if (complete && Buffer.byteLength(all) <= maxBytes) return all;
  const budget = maxBytes - Buffer.byteLength(LIST_MORE_LINE) - 1;
  let text = SEED_TEXT.listHeader;
  let bytes = Buffer.byteLength(text);
  let shown = 0;
  for (const name of names) {
    const line = (shown === 0 ? '' : '\n') + name;
    const lineBytes = Buffer.byteLength(line);
    if (bytes + lineBytes > budget) break;
    text += line;
    bytes += lineBytes;
    shown++;
  }
  return `${text}${shown === 0 ? '' : '\n'}${LIST_MORE_LINE}`;
}

/** The seed's idea of an extension: what follows the first '.' of the name, up to the next one. */
export function seedExtension(name: string): string | undefined {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const parts = base.split('.');
  return parts.length < 2 ? undefined : parts[1];
}

/**
 * The n-th name beside `path` for an upload that must not replace a file: `notes.txt` → `notes-1.txt`,
 * `a.tar.gz` → `a-1.tar.gz`, `.profile` → `.profile-1` (the seed's extension is kept).
 */
export function besideName(path: string, n: number): string {
  const slash = path.lastIndexOf('/') + 1;
  const base = path.slice(slash);
  const dot = base.indexOf('.', 1);
  const stem = dot < 0 ? base : base.slice(0, dot);
  const rest = dot < 0 ? '' : base.slice(dot);
  return `${path.slice(0, slash)}${stem}-${n}${rest}`;
}
