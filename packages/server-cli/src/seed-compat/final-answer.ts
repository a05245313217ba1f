import type { Conversation, SeedLink } from './conversation.js';
import type { ResendTimer } from './resend.js';

/** Times a final answer is sent again after a timeout, and again in reply to the client's datagrams. */
const TIMED_REPEATS = 2;
const REPLIES = 8;

/**
 * The last word of a command (FNE, a put's closing acknowledgement, a refusal), kept for a short while:
 * the seed's client waits for it without a timeout, so if it was lost ferry sends it again — after a
 * timeout, and whenever the client repeats itself — instead of leaving the client hanging.
 */
export class FinalAnswer implements Conversation {
  readonly transferring = false;
  readonly #link: SeedLink;
  readonly #datagram: Buffer;
  readonly #timer: ResendTimer;
  #repeats = TIMED_REPEATS;
  #replies = REPLIES;
  #ended = false;

  constructor(link: SeedLink, datagram: Buffer, timer: ResendTimer, now: number) {
    this.#link = link;
    this.#datagram = datagram;
    this.#timer = timer;
    link.send(datagram);
    timer.asked(now);
  }

  onDatagram(_datagram: Buffer, now: number): void {
    this.#timer.heard(now);
    if (this.#replies-- > 0) this.#link.send(this.#datagram);
  }

  onTick(now: number): void {
    if (!this.#timer.due(now)) return;
    if (this.#repeats-- > 0) {
      this.#link.counters.finalRepeats++;
      this.#link.send(this.#datagram);
    } else {
      this.#end();
    }
  }

  async abort(): Promise<void> {
    this.#end();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#link.ended();
  }
}
