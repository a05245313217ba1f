import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { tmpdir } from 'node:os';
import { Fernet, type FernetKey } from '@ferry/crypto';
import { FerryError, truncateUtf8 } from '@ferry/protocol';
import { isFileError, parseClientPath, type ReadableFile, type Storage } from '@ferry/storage';
import type { ServerLogEvent } from '../session-handler.js';
import {
  encodeListReply,
  finalAck,
  parseSeedCommand,
  SEED_KEY,
  SEED_REPLY_BYTES,
  SEED_TEXT,
  type SeedCommand,
  seedExtension,
} from './codec.js';
import { type Conversation, newCounters, type SeedCompatCounters, type SeedLink } from './conversation.js';
import { FinalAnswer } from './final-answer.js';
import { SeedGet } from './get.js';
import { SeedPut } from './put.js';
import { DEFAULT_RESEND_POLICY, type ResendPolicy, ResendTimer } from './resend.js';

export const DEFAULT_SEED_COMPAT_HOST = '127.0.0.1';
export const DEFAULT_SEED_COMPAT_TRANSFERS = 16;
export const DEFAULT_SEED_UPLOAD_LIMIT = 4 * 1024 ** 3;
/** What --seed-compat-names puts before an uploaded file's name, as the seed's server did. */
export const SEED_UPLOAD_PREFIX = 'send_';
/** Entries read for one list reply at most (the reply holds 2,048 bytes: far fewer names). */
const LIST_PAGE = 256;
/** Conversations remembered at most, transfers and final answers together (oldest dropped first). */
const MAX_CONVERSATIONS = 4096;
/**
 * Commands answered per second, all clients together (and a burst of twice that). Any command can
 * come from a forged address, and its answer (a 2 KiB list, a token) is larger than it: the budget
 * bounds what the listener can be made to send to a third party.
 */
export const COMMANDS_PER_SECOND = 500;

export interface SeedCompatOptions {
  port: number;
  /** Address to bind (default 127.0.0.1: the seed's protocol has no security worth exposing). */
  host?: string;
  /** Accept put and rename (default: read-only). */
  writable?: boolean;
  /** The Fernet key (default: the seed's public key). */
  key?: FernetKey | string;
  /** Store uploads as send_NAME, as the seed's server did (default: the name sent). */
  seedNames?: boolean;
  /** Gets and puts at once; beyond it a get is answered FNE and a put refused. */
  maxTransfers?: number;
  /** Largest upload accepted, in bytes. */
  maxUploadBytes?: number;
  /** Where uploads wait until their last chunk (default: the OS temp directory). */
  spoolDir?: string;
  resend?: Partial<ResendPolicy>;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** A conversation's link as the listener's command handling uses it. */
interface CommandLink extends SeedLink {
  /** The command holds a transfer slot from now on, before its conversation exists. */
  holdSlot(): void;
  /** False once a newer command from the same address superseded this one (or it ended). */
  active(): boolean;
  attach(conversation: Conversation): void;
}

export interface SeedCompatAddress {
  address: string;
  port: number;
  family: string;
}

/**
 * A listener that speaks the seed's UDP protocol to its unmodified client, beside ferry's own port,
 * serving the same store with the same path rules. Every client socket is one command; commands from
 * many clients run at once, transfers up to `maxTransfers`. Read-only unless `writable`.
 *
 * What it cannot fix: the seed's key is public, so anyone who can reach the port can read what is
 * served (and, writable, write), and see and alter what travels; nothing checks a file end to end.
 */
export class SeedCompatListener {
  readonly #storage: Storage;
  readonly #options: SeedCompatOptions;
  readonly #log: (event: ServerLogEvent) => void;
  readonly #fernet: Fernet;
  readonly #policy: ResendPolicy;
  readonly #now: () => number;
  readonly #conversations = new Map<string, Conversation>();
  readonly #counters: SeedCompatCounters = newCounters();
  #socket: Socket | undefined;
  #tick: NodeJS.Timeout | undefined;
  #uploads = 0;
  #closing = false;
  #commandBudget = 2 * COMMANDS_PER_SECOND;
  #budgetAt: number;

  constructor(storage: Storage, options: SeedCompatOptions, log: (event: ServerLogEvent) => void = () => {}) {
    this.#storage = storage;
    this.#options = options;
    this.#log = log;
    this.#fernet = new Fernet(options.key ?? SEED_KEY);
    this.#policy = { ...DEFAULT_RESEND_POLICY, ...options.resend };
    this.#now = options.now ?? Date.now;
    this.#budgetAt = this.#now();
  }

  get writable(): boolean {
    return this.#options.writable === true;
  }

  get maxTransfers(): number {
    return this.#options.maxTransfers ?? DEFAULT_SEED_COMPAT_TRANSFERS;
  }

  async listen(): Promise<SeedCompatAddress> {
    const host = this.#options.host ?? DEFAULT_SEED_COMPAT_HOST;
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.#options.port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    }).catch((error: NodeJS.ErrnoException) => {
      socket.close();
      const why = error.code === 'EADDRINUSE' ? 'the port is already in use' : error.message;
      throw new FerryError(
        error.code === 'EACCES' ? 'EACCES' : 'EINVAL',
        `cannot open the seed-compatible listener on ${host} port ${this.#options.port}: ${why}`,
      );
    });
    // Errors on an unconnected UDP socket (e.g. ICMP unreachable) concern one client, never the listener.
    socket.on('error', () => {});
    socket.on('message', (datagram, rinfo) => this.#onMessage(datagram, rinfo));
    this.#socket = socket;
    const tickMs = Math.min(250, Math.max(10, this.#policy.minMs / 4));
    this.#tick = setInterval(() => this.#onTick(), tickMs);
    this.#tick.unref();
    const address = socket.address();
    return { address: address.address, port: address.port, family: address.family };
  }

  /** Counters (they only grow) and what is in progress. */
  stats(): SeedCompatCounters & { conversations: number; transfers: number } {
    return { ...this.#counters, conversations: this.#conversations.size, transfers: this.#transfers() };
  }

  /** Stops taking commands, lets transfers finish for up to `graceMs`, then ends the rest and closes. */
  async close(graceMs = 0): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && this.#transfers() > 0) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (this.#tick !== undefined) clearInterval(this.#tick);
    await Promise.all([...this.#conversations.values()].map((c) => c.abort('the server is stopping')));
    this.#conversations.clear();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  #transfers(): number {
    let n = 0;
    for (const c of this.#conversations.values()) if (c.transferring) n++;
    return n;
  }

  #onTick(): void {
    const now = this.#now();
    for (const conversation of [...this.#conversations.values()]) conversation.onTick(now);
  }

  #onMessage(datagram: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}`;
    const command = parseSeedCommand(datagram);
    const current = this.#conversations.get(key);
    if (command === undefined) {
      if (current !== undefined) current.onDatagram(datagram, this.#now());
      else this.#counters.dropped++;
      return;
    }
    if (this.#closing) return;
    if (!this.#takeCommandBudget()) {
      this.#counters.rateLimited++;
      return;
    }
    if (current !== undefined) {
      // The same address and port again with a command: a new client socket where an old one was.
      this.#conversations.delete(key);
      void current.abort('the client address started another command');
    }
    this.#counters.commands++;
    const link = this.#link(key, rinfo);
    void this.#command(command, link).catch((error: unknown) => {
      link.ended();
      this.#log({
        type: 'seed-error',
        level: 'error',
        msg: `seed client ${key}: ${command.kind} failed unexpectedly: ${(error as Error).message}`,
        client: key,
      });
    });
  }

  /**
   * The link of one command's conversation. It starts with a placeholder while the command's first
   * step runs (opening the file, listing); a newer command from the same address supersedes it, after
   * which nothing this link does reaches the client or the map.
   */
  /** One command's worth of the per-second budget (a token bucket), or false when it is spent. */
  #takeCommandBudget(): boolean {
    const now = this.#now();
    const refill = ((now - this.#budgetAt) / 1000) * COMMANDS_PER_SECOND;
    this.#commandBudget = Math.min(2 * COMMANDS_PER_SECOND, this.#commandBudget + refill);
    this.#budgetAt = now;
    if (this.#commandBudget < 1) return false;
    this.#commandBudget--;
    return true;
  }

  #link(key: string, rinfo: RemoteInfo): CommandLink {
    const listener = this;
    const placeholder: Conversation & { transferring: boolean } = {
      transferring: false,
      onDatagram() {},
      onTick() {},
      abort: async () => {},
    };
    let current: Conversation = placeholder;
    this.#remember(key, placeholder);
    const mine = (): boolean => listener.#conversations.get(key) === current;
    return {
      client: key,
      counters: this.#counters,
      now: this.#now,
      send: (datagram) => this.#socket?.send(datagram, rinfo.port, rinfo.address),
      log: (event) => this.#log(event),
      holdSlot() {
        placeholder.transferring = true;
      },
      active: mine,
      attach(conversation) {
        if (!mine()) {
          void conversation.abort('the client address started another command');
          return;
        }
        current = conversation;
        listener.#remember(key, conversation);
      },
      ended() {
        if (mine()) listener.#conversations.delete(key);
      },
      finalAnswer(datagram) {
        if (mine()) this.attach(new FinalAnswer(this, datagram, listener.#timer(), listener.#now()));
      },
    };
  }

  #remember(key: string, conversation: Conversation): void {
    this.#conversations.delete(key);
    this.#conversations.set(key, conversation);
    if (this.#conversations.size <= MAX_CONVERSATIONS) return;
    for (const [oldKey, old] of this.#conversations) {
      if (this.#conversations.size <= MAX_CONVERSATIONS) break;
      if (old.transferring) continue;
      this.#conversations.delete(oldKey);
    }
  }

  #timer(): ResendTimer {
    return new ResendTimer(this.#policy, this.#now());
  }

  async #command(command: SeedCommand, link: CommandLink): Promise<void> {
    const answer = (text: string): void => link.finalAnswer(Buffer.from(text, 'utf8'));
    const refuse = (what: string, reason: string, text: string): void => {
      this.#counters.refused++;
      this.#log({
        type: 'seed-refused',
        level: 'warn',
        msg: `seed client ${link.client} ${what} refused: ${reason}`,
        client: link.client,
        command: command.kind,
      });
      answer(text);
    };
    switch (command.kind) {
      case 'list': {
        let text: string;
        try {
          text = await this.#list();
        } catch (error) {
          const e = FerryError.from(error);
          refuse('list', `${e.code}: ${e.message}`, `List failed: ${truncateUtf8(e.message, 512)}`);
          return;
        }
        answer(text);
        return;
      }
      case 'exit':
        this.#log({
          type: 'seed-exit',
          level: 'info',
          msg: `seed client ${link.client} sent exit: that client leaves, the server keeps serving`,
          client: link.client,
        });
        answer(SEED_TEXT.exit);
        return;
      case 'rename': {
        const what = `rename ${command.from} ${command.to}`;
        if (!this.writable) {
          refuse(
            what,
            'the seed-compatible listener is read-only',
            'Rename refused: this server is read-only.',
          );
          return;
        }
        const outcome = await this.#rename(command.from, command.to);
        if (outcome.refused !== undefined) refuse(what, outcome.refused, outcome.text);
        else {
          if (outcome.text === SEED_TEXT.renamed) {
            this.#log({
              type: 'seed-rename',
              level: 'info',
              msg: `seed client ${link.client} renamed ${command.from} -> ${command.to}`,
              client: link.client,
              from: command.from,
              to: command.to,
            });
          }
          answer(outcome.text);
        }
        return;
      }
      case 'get': {
        this.#counters.gets++;
        const what = `get ${command.name}`;
        const fne = SEED_TEXT.fileNotExists;
        if (this.#transfers() >= this.maxTransfers) {
          refuse(what, `${this.maxTransfers} transfers are running (--seed-compat-max-transfers)`, fne);
          return;
        }
        link.holdSlot();
        let file: ReadableFile;
        try {
          parseClientPath(command.name);
          file = await this.#storage.openRead(command.name);
        } catch (error) {
          const e = FerryError.from(error);
          refuse(what, `${e.code}: ${e.message}`, fne);
          return;
        }
        if (this.#closing || !link.active()) {
          await file.close();
          link.ended();
          return;
        }
        link.attach(SeedGet.start(link, file, this.#fernet, this.#timer(), command.name));
        return;
      }
      case 'put': {
        this.#counters.puts++;
        const what = `put ${command.name}`;
        const refusal = (reason: string): string => finalAck(`Upload refused: ${reason}`);
        if (!this.writable) {
          refuse(what, 'the seed-compatible listener is read-only', refusal('this server is read-only.'));
          return;
        }
        const path = this.#uploadPath(command.name);
        try {
          parseClientPath(path);
        } catch (error) {
          const message = FerryError.from(error).message;
          refuse(what, message, refusal(`${truncateUtf8(message, 512)}.`));
          return;
        }
        if (this.#transfers() >= this.maxTransfers) {
          refuse(
            what,
            `${this.maxTransfers} transfers are running`,
            refusal('the server is busy; try again later.'),
          );
          return;
        }
        link.attach(
          new SeedPut(link, {
            storage: this.#storage,
            fernet: this.#fernet,
            timer: this.#timer(),
            path,
            spoolDir: this.#options.spoolDir ?? tmpdir(),
            maxBytes: this.#options.maxUploadBytes ?? DEFAULT_SEED_UPLOAD_LIMIT,
            identity: `seed-compat ${link.client} ${++this.#uploads} ${this.#now()}`,
          }),
        );
        return;
      }
    }
  }

  /** send_NAME with --seed-compat-names (in the same directory), else the name as sent. */
  #uploadPath(name: string): string {
    if (this.#options.seedNames !== true) return name;
    const slash = name.lastIndexOf('/') + 1;
    return `${name.slice(0, slash)}${SEED_UPLOAD_PREFIX}${name.slice(slash)}`;
  }

  /** The root's names, directories with a '/', as many as the seed's client reads. */
  async #list(): Promise<string> {
    const names: string[] = [];
    let bytes = 0;
    let cursor: string | undefined;
    do {
      const page = await this.#storage.list('', { limit: LIST_PAGE, ...(cursor ? { cursor } : {}) });
      for (const entry of page.entries) {
        const name = entry.type === 'dir' ? `${entry.name}/` : entry.name;
        names.push(name);
        bytes += Buffer.byteLength(name) + 1;
      }
      cursor = page.next;
    } while (cursor !== undefined && bytes <= SEED_REPLY_BYTES);
    return encodeListReply(names, cursor === undefined);
  }

  /** The seed's rename rules, in its order, on the store: one of its texts, or a refusal. */
  async #rename(from: string, to: string): Promise<{ text: string; refused?: string }> {
    const fromExtension = seedExtension(from);
    const toExtension = seedExtension(to);
    if (fromExtension === undefined || toExtension === undefined)
      return { text: SEED_TEXT.renameNoExtension };
    try {
      parseClientPath(from);
      parseClientPath(to);
    } catch (error) {
      const message = FerryError.from(error).message;
      return { text: `Rename refused: ${truncateUtf8(message, 512)}.`, refused: message };
    }
    const source = await this.#storage.stat(from).catch(() => undefined);
    if (source?.type !== 'file') return { text: SEED_TEXT.renameMissing };
    const target = await this.#storage.stat(to).catch(() => undefined);
    if (target !== undefined) return { text: SEED_TEXT.renameExists };
    if (fromExtension !== toExtension) return { text: SEED_TEXT.renameOtherExtension };
    try {
      await this.#storage.rename(from, to, { overwrite: false });
      return { text: SEED_TEXT.renamed };
    } catch (error) {
      if (isFileError(error, 'EEXIST') || isFileError(error, 'EISDIR'))
        return { text: SEED_TEXT.renameExists };
      if (isFileError(error, 'ENOENT')) return { text: SEED_TEXT.renameMissing };
      const e = FerryError.from(error);
      return { text: `Rename failed: ${truncateUtf8(e.message, 512)}`, refused: `${e.code}: ${e.message}` };
    }
  }
}

/**
 * The warning a server logs when it opens the seed-compatible listener: what anyone who can reach
 * the port can do. Deliberately not worded as a "udp://host:port" address (that is the serving line's).
 */
export function seedCompatWarning(bound: SeedCompatAddress, writable: boolean, keyFile?: string): string {
  const where = `seed-compatible listener on ${bound.address} port ${bound.port}`;
  const access = writable ? 'read-write: put and rename' : 'read-only';
  const reach = writable ? 'read every file served and add files' : 'read every file served';
  const key =
    keyFile === undefined
      ? `it uses the seed's public Fernet key: anyone who can reach this port can ${reach}, and see and alter what travels (no confidentiality, no authentication)`
      : `it uses the key in ${keyFile}: clients are not authenticated beyond holding it, replies can be replayed and nothing checks a file end to end`;
  const port =
    bound.port < 5001 ? "; the seed's client only accepts ports 5001-65535, so it cannot reach this one" : '';
  return `${where} (${access}); ${key}; see docs/SECURITY.md${port}`;
}
