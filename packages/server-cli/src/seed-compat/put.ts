import type { Fernet } from '@ferry/crypto';
import { FerryError, truncateUtf8 } from '@ferry/protocol';
import { FileError, isFileError, type Storage, type Upload } from '@ferry/storage';
import { besideName, finalAck, openFrame, SEED_TEXT } from './codec.js';
import type { Conversation, SeedLink } from './conversation.js';
import type { ResendTimer } from './resend.js';
import { Spool } from './spool.js';

/** Blocks of the store's upload when the spooled file is copied in. */
const STORE_BLOCK_BYTES = 1024 * 1024;
/** Names tried beside an existing file (notes-1.txt … notes-99.txt) before the upload is refused. */
const MAX_BESIDE = 99;
/** Tokens remembered to recognise the client sending one again (it resends the very same datagram). */
const RECENT_TOKENS = 8;
/** Datagrams waiting while the previous one is handled (the client sends one at a time). */
const MAX_QUEUED = 16;

const ACK_NEXT = Buffer.from(SEED_TEXT.ackNext, 'latin1');
const ACK_RESEND = Buffer.from(SEED_TEXT.ackResend, 'latin1');

export interface SeedPutOptions {
  storage: Storage;
  fernet: Fernet;
  timer: ResendTimer;
  /** Where the file goes (the --seed-compat-names prefix already applied). */
  path: string;
  spoolDir: string;
  /** Largest upload accepted. */
  maxBytes: number;
  /** Identifies this upload to the store (unique per upload: seed uploads never resume). */
  identity: string;
}

/**
 * A put from the seed's client: FE, then tokens of chunks, each acknowledged before the next comes,
 * and an empty chunk to end. The chunks go to a spool (the seed never says how large the file is),
 * then into the store's upload, committed with the SHA-256 of what arrived — the file appears under
 * its name only then, whole. A name already taken is never replaced: the file is stored beside it
 * (notes-1.txt), and the closing acknowledgement, which the client prints, says so. A chunk sent
 * again (the very same token) is acknowledged without being written twice; when the client is
 * silent too long, ferry asks it to send again (an acknowledgement ending in 0).
 */
export class SeedPut implements Conversation {
  readonly #link: SeedLink;
  readonly #options: SeedPutOptions;
  readonly #startedAt: number;
  readonly #spool: Promise<Spool>;
  readonly #recent: Buffer[] = [];
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;
  #state: 'receiving' | 'storing' | 'ended' = 'receiving';

  constructor(link: SeedLink, options: SeedPutOptions) {
    this.#link = link;
    this.#options = options;
    this.#startedAt = link.now();
    this.#spool = this.#prepare();
    this.#spool.catch(() => {}); // reported by the first chunk, as the answer to it
    options.timer.asked(this.#startedAt);
  }

  get transferring(): boolean {
    return this.#state !== 'ended';
  }

  onDatagram(datagram: Buffer, now: number): void {
    if (this.#state !== 'receiving') return;
    if (this.#queued >= MAX_QUEUED) {
      this.#link.counters.dropped++;
      return;
    }
    this.#queued++;
    this.#queue = this.#queue.then(async () => {
      try {
        if (this.#state === 'receiving') await this.#handle(datagram, now);
      } catch (error) {
        await this.#fail(error);
      } finally {
        this.#queued--;
      }
    });
  }

  onTick(now: number): void {
    if (this.#state !== 'receiving') return;
    const timer = this.#options.timer;
    if (timer.idle(now)) {
      this.#link.counters.timedOut++;
      void this.#end('warn', `the client was silent for ${Math.round((now - this.#startedAt) / 1000)} s`);
    } else if (timer.due(now)) {
      // The chunk or our acknowledgement of the last one was lost: either way the client, asked to
      // send again, repeats its current token, which is written once (a repeat is recognised).
      this.#link.counters.resentOnTimeout++;
      this.#link.send(ACK_RESEND);
    }
  }

  async abort(reason: string): Promise<void> {
    await this.#end('info', reason);
  }

  /** Checks that the file's directory exists (so a put into nowhere ends at once) and opens the spool. */
  async #prepare(): Promise<Spool> {
    const slash = this.#options.path.lastIndexOf('/');
    if (slash > 0) {
      const parent = this.#options.path.slice(0, slash);
      const entry = await this.#options.storage.stat(parent);
      if (entry.type !== 'dir') throw new FileError('ENOTDIR', `${parent} is not a directory`);
    }
    return Spool.create(this.#options.spoolDir);
  }

  async #handle(datagram: Buffer, now: number): Promise<void> {
    const timer = this.#options.timer;
    const text = datagram.length <= 3 ? datagram.toString('latin1') : '';
    if (text === SEED_TEXT.fileExists) {
      timer.heard(now);
      return;
    }
    if (text === SEED_TEXT.fileNotExists) {
      await this.#end('info', 'the client has no such file');
      return;
    }
    if (this.#recent.some((token) => token.equals(datagram))) {
      this.#link.counters.duplicateChunks++;
      timer.heard(now);
      this.#link.send(ACK_NEXT);
      return;
    }
    let plaintext: Buffer;
    try {
      plaintext = this.#options.fernet.decrypt(datagram.toString('latin1'));
    } catch {
      this.#link.counters.dropped++;
      return;
    }
    const frame = openFrame(plaintext);
    if (frame === undefined) {
      this.#link.counters.dropped++;
      return;
    }
    timer.answered(now);
    if (frame.flag !== '0') {
      // What the seed's server did with a flag other than 0: ask for the chunk again.
      this.#link.send(ACK_RESEND);
      timer.asked(now);
      return;
    }
    const spool = await this.#spool;
    this.#recent.push(datagram);
    if (this.#recent.length > RECENT_TOKENS) this.#recent.shift();
    if (frame.chunk.length === 0) {
      await this.#store();
      return;
    }
    if (spool.size + frame.chunk.length > this.#options.maxBytes) {
      await this.#end(
        'warn',
        `larger than the limit of ${this.#options.maxBytes} bytes`,
        `Upload refused: the file is larger than this server's limit of ${this.#options.maxBytes} bytes.`,
      );
      return;
    }
    spool.append(frame.chunk);
    // A slow disk holds the client back here: it sends nothing until acknowledged.
    if (spool.backlogged) await spool.drain();
    this.#link.send(ACK_NEXT);
    timer.asked(this.#link.now());
  }

  async #store(): Promise<void> {
    this.#state = 'storing';
    this.#options.timer.stop();
    const spool = await this.#spool;
    const sha256 = await spool.finish();
    const stored = await this.#place(spool, sha256);
    const seconds = (this.#link.now() - this.#startedAt) / 1000;
    const beside = stored !== this.#options.path;
    this.#link.log({
      type: 'seed-put',
      level: 'info',
      msg:
        `seed client ${this.#link.client} put ${stored} (${spool.size} bytes in ${seconds.toFixed(2)} s)` +
        (beside ? `, beside the existing ${this.#options.path}` : ''),
      client: this.#link.client,
      path: stored,
      requested: this.#options.path,
      bytes: spool.size,
      seconds,
      sha256,
    });
    await this.#close();
    this.#link.finalAnswer(
      Buffer.from(beside ? finalAck(`ACK File transferred as ${stored}`) : SEED_TEXT.ackDone, 'utf8'),
    );
  }

  /** Copies the spool into the store under the requested name, or the first free name beside it. */
  async #place(spool: Spool, sha256: string): Promise<string> {
    const { storage, path } = this.#options;
    for (let n = 0; n <= MAX_BESIDE; n++) {
      const candidate = n === 0 ? path : besideName(path, n);
      let upload: Upload;
      try {
        upload = await storage.beginUpload(candidate, {
          size: spool.size,
          blockSize: STORE_BLOCK_BYTES,
          overwrite: false,
          resume: false,
          identity: this.#options.identity,
        });
      } catch (error) {
        if (isTaken(error)) continue;
        throw error;
      }
      try {
        for (let index = 0; index < upload.blockCount; index++) {
          const offset = index * STORE_BLOCK_BYTES;
          await upload.write(
            index,
            await spool.read(offset, Math.min(STORE_BLOCK_BYTES, spool.size - offset)),
          );
        }
        await upload.commit({ sha256, overwrite: false });
        return candidate;
      } catch (error) {
        await upload.abort({ keep: false });
        // Taken between the check and the commit (another upload won): try the next name.
        if (isTaken(error)) continue;
        throw error;
      }
    }
    throw new FerryError('EEXIST', `${path} and the ${MAX_BESIDE} names beside it are all taken`);
  }

  async #fail(error: unknown): Promise<void> {
    const e = FerryError.from(error);
    await this.#end('warn', `${e.code}: ${e.message}`, `Upload failed: ${truncateUtf8(e.message, 512)}`);
  }

  /** Ends the put without storing anything; `answer` (a closing acknowledgement) tells the client. */
  async #end(level: 'info' | 'warn', reason: string, answer?: string): Promise<void> {
    if (this.#state === 'ended') return;
    this.#state = 'ended';
    this.#options.timer.stop();
    await this.#close();
    this.#link.log({
      type: 'seed-put-failed',
      level,
      msg: `seed client ${this.#link.client} put ${this.#options.path} ended without storing it: ${reason}`,
      client: this.#link.client,
      path: this.#options.path,
    });
    if (answer === undefined) this.#link.ended();
    else this.#link.finalAnswer(Buffer.from(finalAck(answer), 'utf8'));
  }

  async #close(): Promise<void> {
    this.#state = 'ended';
    const spool = await this.#spool.catch(() => undefined);
    await spool?.close();
  }
}

function isTaken(error: unknown): boolean {
  return isFileError(error) && (error.code === 'EEXIST' || error.code === 'EISDIR');
}
