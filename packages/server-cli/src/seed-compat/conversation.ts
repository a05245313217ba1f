import type { ServerLogEvent } from '../session-handler.js';

/** What a conversation with one seed client (one command, one client socket) may do. */
export interface SeedLink {
  /** The client's address and port, for logs. */
  readonly client: string;
  send(datagram: Buffer): void;
  /** The listener's clock (ms). */
  now(): number;
  log(event: ServerLogEvent): void;
  readonly counters: SeedCompatCounters;
  /** The conversation has ended; the listener forgets it. */
  ended(): void;
  /** The conversation has ended with this last word, which the listener keeps repeating if needed. */
  finalAnswer(datagram: Buffer): void;
}

/** A command in progress: a get, a put, or a final answer kept for a while in case it was lost. */
export interface Conversation {
  /** True while it holds a transfer slot (an open file or an upload). */
  readonly transferring: boolean;
  onDatagram(datagram: Buffer, now: number): void;
  /** Called every tick: repeat what is overdue, give up on a silent client. */
  onTick(now: number): void;
  /** Ends it at once (server closing, the client's address starting another command). */
  abort(reason: string): Promise<void>;
}

/** Counters of the seed-compatible listener, all only growing. */
export interface SeedCompatCounters {
  commands: number;
  gets: number;
  puts: number;
  /** Datagrams ferry sent again after a timeout (never asked for). */
  resentOnTimeout: number;
  /** Final answers sent again after a timeout (most reach a client that has already left). */
  finalRepeats: number;
  /** Datagrams ferry sent again because the client asked (an acknowledgement ending in 0). */
  resentOnRequest: number;
  /** Chunks the client sent again that were acknowledged and not written a second time. */
  duplicateChunks: number;
  /** Requests answered with a refusal (read-only, bad name, busy, missing file, …). */
  refused: number;
  /** Clients that went silent mid-transfer and were given up. */
  timedOut: number;
  /** Datagrams that were neither a command nor part of a conversation, or not a valid token. */
  dropped: number;
  /** Commands not answered because more than COMMANDS_PER_SECOND arrived (forged ones look the same). */
  rateLimited: number;
}

export function newCounters(): SeedCompatCounters {
  return {
    commands: 0,
    gets: 0,
    puts: 0,
    resentOnTimeout: 0,
    resentOnRequest: 0,
    finalRepeats: 0,
    duplicateChunks: 0,
    refused: 0,
    timedOut: 0,
    dropped: 0,
    rateLimited: 0,
  };
}
