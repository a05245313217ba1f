import { RttEstimator } from '@ferry/transport';

export interface ResendPolicy {
  /** The shortest wait before ferry repeats itself (a lost datagram costs at least this). */
  minMs: number;
  /** The longest wait between repeats, after backoff. */
  maxMs: number;
  /** A client silent this long is given up. */
  idleMs: number;
}

export const DEFAULT_RESEND_POLICY: ResendPolicy = { minMs: 1000, maxMs: 8000, idleMs: 30_000 };

/**
 * When to repeat the last datagram of a stop-and-wait exchange with the seed's client (sans I/O: the
 * caller passes the time). The seed's protocol has no sequence numbers, so its client cannot tell a
 * repeat from the next datagram: a repeat sent while the answer was only late, not lost, can make it
 * write a chunk twice. The wait is therefore long — never below `minMs` (1 s), and at least
 * srtt + 4·rttvar of the exchanges so far — and doubles with each repeat.
 */
export class ResendTimer {
  readonly #policy: ResendPolicy;
  readonly #rtt = new RttEstimator(100, 0);
  #askedAt: number | undefined;
  #repeated = false;
  #backoff = 0;
  #lastHeard: number;

  constructor(policy: ResendPolicy, now: number) {
    this.#policy = policy;
    this.#lastHeard = now;
  }

  /** Something went out that the client answers; the wait starts now. */
  asked(now: number): void {
    this.#askedAt = now;
    this.#repeated = false;
  }

  /** The client answered: a sample of the round trip unless the question was repeated (Karn). */
  answered(now: number): void {
    this.#lastHeard = now;
    if (this.#askedAt !== undefined && !this.#repeated) this.#rtt.update(now - this.#askedAt, 0);
    this.#askedAt = undefined;
    this.#backoff = 0;
  }

  /** The client sent something that answers nothing (a duplicate, noise): it is alive. */
  heard(now: number): void {
    this.#lastHeard = now;
  }

  /** Nothing is awaited any more. */
  stop(): void {
    this.#askedAt = undefined;
  }

  /** The current wait before a repeat, with backoff. */
  get waitMs(): number {
    const base = Math.max(this.#policy.minMs, this.#rtt.samples > 0 ? this.#rtt.rto() : 0);
    return Math.min(base * 2 ** this.#backoff, this.#policy.maxMs);
  }

  /** True when the answer is overdue: the caller repeats itself, and the next wait is doubled. */
  due(now: number): boolean {
    if (this.#askedAt === undefined || now - this.#askedAt < this.waitMs) return false;
    this.#askedAt = now;
    this.#repeated = true;
    this.#backoff++;
    return true;
  }

  /** True once the client has been silent for the idle timeout. */
  idle(now: number): boolean {
    return now - this.#lastHeard >= this.#policy.idleMs;
  }
}
