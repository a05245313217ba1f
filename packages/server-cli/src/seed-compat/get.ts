import type { Fernet } from '@ferry/crypto';
import type { ReadableFile } from '@ferry/storage';
import { frameChunk, parseSeedAck, SEED_TEXT, seedChunkLength } from './codec.js';
import type { Conversation, SeedLink } from './conversation.js';
import type { ResendTimer } from './resend.js';

/** The file is read a block of this size at a time, the next one ahead while the current one is sent. */
const READ_BLOCK_BYTES = 1024 * 1024;
const EMPTY = Buffer.alloc(0);
/** Repeats of the first token to a client that has acknowledged nothing yet (1 + 2 + 4 s by default). */
const UNANSWERED_REPEATS = 3;

/**
 * A get for the seed's client: FE, then one token per chunk, each sent once the previous one is
 * acknowledged, and a token with an empty chunk to end. Chunks are cut so that the client, which
 * splits at the first marker, reassembles the file intact (seedChunkLength). ferry repeats a token
 * whose acknowledgement is overdue, so a lost datagram delays the transfer instead of hanging it.
 */
export class SeedGet implements Conversation {
  readonly #link: SeedLink;
  readonly #file: ReadableFile;
  readonly #fernet: Fernet;
  readonly #timer: ResendTimer;
  readonly #path: string;
  readonly #startedAt: number;
  readonly #blockCount: number;
  #blockIndex = 0;
  #block: Buffer = EMPTY;
  #pos = 0;
  #ahead: Promise<Buffer> | undefined;
  #token: Buffer = EMPTY;
  #last = false;
  #state: 'loading' | 'waiting' | 'ended' = 'loading';
  #warnedResend = false;
  /** True once the client acknowledged anything: its address is its own, not a forged one. */
  #answered = false;
  #unansweredRepeats = 0;

  private constructor(link: SeedLink, file: ReadableFile, fernet: Fernet, timer: ResendTimer, path: string) {
    this.#link = link;
    this.#file = file;
    this.#fernet = fernet;
    this.#timer = timer;
    this.#path = path;
    this.#startedAt = link.now();
    this.#blockCount = Math.ceil(file.size / READ_BLOCK_BYTES);
  }

  /** Sends FE and the first token once the first block is read. */
  static start(
    link: SeedLink,
    file: ReadableFile,
    fernet: Fernet,
    timer: ResendTimer,
    path: string,
  ): SeedGet {
    const get = new SeedGet(link, file, fernet, timer, path);
    void get.#begin();
    return get;
  }

  get transferring(): boolean {
    return this.#state !== 'ended';
  }

  onDatagram(datagram: Buffer, now: number): void {
    if (this.#state !== 'waiting') return;
    const ack = parseSeedAck(datagram);
    if (ack === undefined) {
      this.#link.counters.dropped++;
      return;
    }
    this.#answered = true;
    if (ack === 'resend') {
      this.#link.counters.resentOnRequest++;
      this.#timer.heard(now);
      this.#send(this.#token, now);
    } else if (ack === 'done' || this.#last) {
      this.#timer.answered(now);
      void this.#finish();
    } else {
      this.#timer.answered(now);
      void this.#next();
    }
  }

  onTick(now: number): void {
    if (this.#state !== 'waiting') return;
    if (this.#timer.idle(now)) {
      this.#link.counters.timedOut++;
      void this.#fail(`the client was silent for ${Math.round((now - this.#startedAt) / 1000)} s`, 'timeout');
    } else if (this.#timer.due(now)) {
      // A get never acknowledged may come from a forged address: repeat it only a few times.
      if (!this.#answered && ++this.#unansweredRepeats > UNANSWERED_REPEATS) {
        this.#link.counters.timedOut++;
        void this.#fail('the client never acknowledged anything', 'timeout');
        return;
      }
      this.#link.counters.resentOnTimeout++;
      if (!this.#warnedResend) {
        this.#warnedResend = true;
        this.#link.log({
          type: 'seed-resend',
          level: 'warn',
          msg:
            `seed client ${this.#link.client} get ${this.#path}: no acknowledgement in time, sending the ` +
            `chunk again (if only its acknowledgement was lost, the seed client writes that chunk twice)`,
          client: this.#link.client,
          path: this.#path,
        });
      }
      this.#link.send(this.#token);
    }
  }

  async abort(reason: string): Promise<void> {
    await this.#fail(reason, 'aborted');
  }

  async #begin(): Promise<void> {
    try {
      if (this.#blockCount > 0) {
        this.#block = await this.#file.read(0, READ_BLOCK_BYTES);
        this.#readAhead();
      }
      if (this.#state === 'ended') return;
      this.#link.send(Buffer.from(SEED_TEXT.fileExists, 'latin1'));
      this.#sendNextChunk(this.#link.now());
    } catch (error) {
      await this.#fail((error as Error).message, 'failed');
    }
  }

  async #next(): Promise<void> {
    try {
      if (this.#pos >= this.#block.length && this.#blockIndex + 1 < this.#blockCount) {
        this.#state = 'loading';
        this.#file.release(this.#block);
        this.#blockIndex++;
        this.#block = await this.#ahead!;
        this.#pos = 0;
        if (this.#state !== 'loading') return; // aborted meanwhile
        this.#readAhead();
      }
      this.#sendNextChunk(this.#link.now());
    } catch (error) {
      await this.#fail((error as Error).message, 'failed');
    }
  }

  #readAhead(): void {
    const index = this.#blockIndex + 1;
    this.#ahead = index < this.#blockCount ? this.#file.read(index, READ_BLOCK_BYTES) : undefined;
    // Read failures are reported when the block is needed.
    this.#ahead?.catch(() => {});
  }

  /** The next chunk of the current block (or the empty one that ends the file), sealed and sent. */
  #sendNextChunk(now: number): void {
    const length = seedChunkLength(this.#block, this.#pos, this.#block.length);
    const chunk = this.#block.subarray(this.#pos, this.#pos + length);
    this.#pos += length;
    this.#last = length === 0;
    this.#token = Buffer.from(this.#fernet.encrypt(frameChunk(chunk)), 'latin1');
    this.#state = 'waiting';
    this.#send(this.#token, now);
  }

  #send(datagram: Buffer, now: number): void {
    this.#link.send(datagram);
    this.#timer.asked(now);
  }

  async #finish(): Promise<void> {
    this.#state = 'ended';
    this.#timer.stop();
    let sha256: string | undefined;
    try {
      // Hashed as it was read: nothing is read again; EFILECHANGED if it changed meanwhile.
      sha256 = await this.#file.sha256();
    } catch {
      sha256 = undefined;
    }
    await this.#file.close().catch(() => {});
    const seconds = (this.#link.now() - this.#startedAt) / 1000;
    this.#link.log({
      type: 'seed-get',
      level: 'info',
      msg: `seed client ${this.#link.client} got ${this.#path} (${this.#file.size} bytes in ${seconds.toFixed(2)} s)`,
      client: this.#link.client,
      path: this.#path,
      bytes: this.#file.size,
      seconds,
      ...(sha256 !== undefined ? { sha256 } : {}),
    });
    this.#link.ended();
  }

  async #fail(reason: string, how: 'timeout' | 'failed' | 'aborted'): Promise<void> {
    if (this.#state === 'ended') return;
    this.#state = 'ended';
    this.#timer.stop();
    await this.#file.close().catch(() => {});
    this.#link.log({
      type: 'seed-get-failed',
      level: how === 'aborted' ? 'info' : 'warn',
      msg: `seed client ${this.#link.client} get ${this.#path} ended early: ${reason}`,
      client: this.#link.client,
      path: this.#path,
      reason: how,
    });
    this.#link.ended();
  }
}
