import { createHash } from 'node:crypto';
import {
  blockCountFor,
  type CommitFilesReply,
  type CommitFilesRequest,
  type ControlMessage,
  FerryError,
  type FileFailure,
  type GetFilesItem,
  type GetFilesReply,
  type GetFilesRequest,
  type HashReply,
  type HashRequest,
  MAX_BATCH_BYTES,
  MAX_CONTROL_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  type MkdirRequest,
  type PutFilesReply,
  type PutFilesRequest,
  type RmdirRequest,
  truncateUtf8,
  type WalkReply,
  type WalkRequest,
} from '@ferry/protocol';
import { type FileContent, FileError, type Storage } from '@ferry/storage';
import { IncomingBundle, joinBundle, OutgoingBundle, splitBundle } from '@ferry/transfer';
import type { Session } from '@ferry/transport';

/**
 * The requests of feature Trees (docs/PROTOCOL.md §14.4): directories (mkdir, rmdir), the paged walk
 * of a tree, the SHA-256 of a file (resuming a tree), and batches of small files moved whole as one
 * transfer each (putFiles + commitFiles, getFiles).
 */

/** What the tree requests need of their session's handler. */
export interface TreeHost {
  readonly storage: Storage;
  readonly session: Session;
  readonly label: string;
  send(message: ControlMessage): number | undefined;
  log(type: string, level: 'info' | 'warn', msg: string, extra?: Record<string, unknown>): void;
  /** Throws EACCES unless the session may write. */
  writable(what: string): void;
  nextTransferId(): number;
}

/** Room in a walk reply for everything but its entries and cursor ({"op":"reply","id":…,"ok":true,…}). */
const WALK_ENVELOPE_BYTES = 128;

interface PutBatch {
  request: PutFilesRequest;
  /** Indices (in request.files) of the files being sent, in bundle order. */
  sending: number[];
  incoming: IncomingBundle;
}

export class TreeRequests {
  /** putFiles batches waiting for their commitFiles, by transfer id. */
  private readonly puts = new Map<number, PutBatch>();
  /** getFiles batches still sending. */
  private readonly gets = new Set<number>();

  constructor(private readonly host: TreeHost) {}

  /** Batches holding a transfer slot. */
  get activeTransfers(): number {
    return this.puts.size + this.gets.size;
  }

  async mkdir(m: MkdirRequest): Promise<void> {
    this.host.writable('mkdir');
    await this.host.storage.mkdir(m.path, {
      parents: m.parents,
      ...(m.mode !== undefined ? { mode: m.mode } : {}),
    });
    this.host.log('mkdir', 'info', `${this.host.label} made directory ${m.path}`, { path: m.path });
  }

  async rmdir(m: RmdirRequest): Promise<void> {
    this.host.writable('rmdir');
    await this.host.storage.rmdir(m.path);
    this.host.log('rmdir', 'info', `${this.host.label} removed directory ${m.path}`, { path: m.path });
  }

  async walk(m: WalkRequest): Promise<WalkReply> {
    const page = await this.host.storage.walk(m.path, {
      ...(m.cursor !== undefined ? { cursor: m.cursor } : {}),
      ...(m.limit !== undefined ? { limit: Math.min(m.limit, 10_000) } : {}),
      maxBytes: MAX_CONTROL_BYTES - WALK_ENVELOPE_BYTES,
    });
    return {
      op: 'reply',
      id: m.id,
      ok: true,
      entries: page.entries,
      ...(page.next !== undefined ? { next: page.next } : {}),
    };
  }

  async hash(m: HashRequest): Promise<HashReply> {
    const file = await this.host.storage.openRead(m.path);
    try {
      return { op: 'reply', id: m.id, ok: true, sha256: await file.sha256(), size: file.size };
    } finally {
      await file.close().catch(() => {});
    }
  }

  /**
   * A batch of small files to receive: files whose target already holds the same bytes are skipped
   * (with skipIdentical), files that cannot be written are refused up front, and the rest arrive as
   * one bundle, held in memory until commitFiles.
   */
  async putFiles(m: PutFilesRequest): Promise<PutFilesReply> {
    this.host.writable('put');
    const skipped: number[] = [];
    const failed: FileFailure[] = [];
    if (m.skipIdentical) await this.sameOrRefused(m, skipped, failed);
    const settled = new Set<number>([...skipped, ...failed.map((f) => f.index)]);
    const sending = m.files.map((_, i) => i).filter((i) => !settled.has(i));
    const size = sending.reduce((total, i) => total + m.files[i]!.size, 0);
    const transferId = this.host.nextTransferId();
    const blockSize = this.host.session.blockSize;
    // The receive side is open before the reply leaves, so no early block is dropped.
    const incoming = new IncomingBundle(this.host.session, transferId, size);
    this.puts.set(transferId, { request: m, sending, incoming });
    return fitFailures(
      (limit) => ({
        op: 'reply',
        id: m.id,
        ok: true,
        transferId,
        blockSize,
        blockCount: blockCountFor(size, blockSize),
        skipped,
        failed: failed.map((f) => ({ ...f, message: truncateUtf8(f.message, limit) })),
      }),
      MAX_CONTROL_BYTES,
    );
  }

  /** Which files of a resumed batch are already there (same size and SHA-256), or there and different. */
  private async sameOrRefused(m: PutFilesRequest, skipped: number[], failed: FileFailure[]): Promise<void> {
    const storage = this.host.storage;
    const entries = await Promise.all(m.files.map((f) => storage.stat(f.path).catch((e: unknown) => e)));
    const sameSize = m.files.map((_, i) => i).filter((i) => isFileEntry(entries[i], m.files[i]!.size));
    const contents =
      sameSize.length === 0
        ? []
        : await storage.readFiles(
            sameSize.map((i) => m.files[i]!.path),
            { maxBytes: MAX_BATCH_BYTES },
          );
    const identical = new Set<number>();
    sameSize.forEach((index, k) => {
      const content = contents[k];
      if (content instanceof FileError || content === undefined) return;
      if (sha256(content.data) === m.files[index]!.sha256) identical.add(index);
    });
    m.files.forEach((file, index) => {
      if (identical.has(index)) {
        skipped.push(index);
        return;
      }
      const entry = entries[index];
      if (entry instanceof Error) return; // not there (or not reachable): the write will tell
      const kind = (entry as { type: string }).type;
      if (kind === 'dir') {
        failed.push({ index, code: 'EISDIR', message: `${JSON.stringify(file.path)} is a directory` });
      } else if (!m.overwrite) {
        failed.push({
          index,
          code: 'EEXIST',
          message: `${JSON.stringify(file.path)} already exists with other contents (ask to overwrite to replace it)`,
        });
      }
    });
  }

  /** Places the files of a received batch; replies with those that could not be placed. */
  async commitFiles(m: CommitFilesRequest): Promise<CommitFilesReply> {
    const batch = this.puts.get(m.transferId);
    if (batch === undefined) {
      throw new FerryError('EINVAL', `no batch in progress with transfer id ${m.transferId}`);
    }
    try {
      const bundle = await batch.incoming.received;
      const files = batch.sending.map((i) => batch.request.files[i]!);
      const parts = splitBundle(
        bundle,
        files.map((f) => f.size),
      );
      const results = await this.host.storage.writeFiles(
        files.map((f, k) => ({
          path: f.path,
          data: parts[k]!,
          sha256: f.sha256,
          ...(f.mtimeMs !== undefined ? { mtimeMs: f.mtimeMs } : {}),
          ...(f.mode !== undefined ? { mode: f.mode } : {}),
        })),
        { overwrite: batch.request.overwrite },
      );
      const failed: FileFailure[] = [];
      results.forEach((error, k) => {
        if (error === undefined) return;
        failed.push({ index: batch.sending[k]!, code: error.replyCode, message: error.message });
      });
      const placed = files.length - failed.length;
      this.host.log(
        'put-batch',
        failed.length === 0 ? 'info' : 'warn',
        `${this.host.label} put ${placed} file(s) of a batch (${bundle.length} bytes)${
          failed.length > 0
            ? `; ${failed.length} refused: ${failed
                .slice(0, 3)
                .map((f) => `${batch.request.files[f.index]!.path} (${f.code})`)
                .join(', ')}`
            : ''
        }`,
        { files: placed, bytes: bundle.length, failed: failed.length },
      );
      return fitFailures(
        (limit) => ({
          op: 'reply',
          id: m.id,
          ok: true,
          failed: failed.map((f) => ({ ...f, message: truncateUtf8(f.message, limit) })),
        }),
        MAX_CONTROL_BYTES,
      );
    } finally {
      this.puts.delete(m.transferId);
    }
  }

  /**
   * A batch of small files to send: each is read whole, files the client already holds (the same
   * SHA-256) are not sent, and the rest go out as one bundle once the reply is acknowledged.
   */
  async getFiles(m: GetFilesRequest): Promise<void> {
    const contents = await this.host.storage.readFiles(
      m.files.map((f) => f.path),
      { maxBytes: MAX_BATCH_BYTES },
    );
    const described = contents.map((content, i) =>
      content instanceof FileError ? content : describe(content, m.files[i]!.sha256),
    );
    const items = (limit: number): GetFilesItem[] =>
      described.map((item) =>
        item instanceof FileError
          ? { code: item.replyCode, message: truncateUtf8(item.message, limit) }
          : item,
      );
    const parts: Buffer[] = [];
    described.forEach((item, i) => {
      if (!(item instanceof FileError) && item.sent) parts.push((contents[i] as FileContent).data);
    });
    const bundle = joinBundle(parts);
    const transferId = this.host.nextTransferId();
    const blockSize = this.host.session.blockSize;
    const reply = fitFailures(
      (limit): GetFilesReply => ({
        op: 'reply',
        id: m.id,
        ok: true,
        transferId,
        blockSize,
        blockCount: blockCountFor(bundle.length, blockSize),
        files: items(limit),
      }),
      MAX_CONTROL_BYTES,
    );
    const seq = this.host.send(reply);
    if (seq === undefined) return;
    this.gets.add(transferId);
    const started = Date.now();
    const outgoing = new OutgoingBundle(this.host.session, transferId, bundle, { afterMessage: seq });
    outgoing.sent.then(
      () => {
        this.gets.delete(transferId);
        this.host.log(
          'get-batch',
          'info',
          `${this.host.label} get ${parts.length} file(s) of a batch (${bundle.length} bytes) in ${((Date.now() - started) / 1000).toFixed(2)} s`,
          { files: parts.length, bytes: bundle.length },
        );
      },
      (error: unknown) => {
        this.gets.delete(transferId);
        const e = FerryError.from(error);
        this.host.log('get-failed', 'warn', `${this.host.label} get of a batch failed: ${e.message}`, {
          code: e.code,
        });
      },
    );
  }

  /** Stops a batch (cancel or abort from the client); true if it was one. */
  cancel(transferId: number): boolean {
    const known = this.puts.delete(transferId) || this.gets.delete(transferId);
    if (known) this.host.session.cancel(transferId);
    return known;
  }

  /** The session ended: forget every batch (their data was only in memory). */
  closed(): void {
    this.puts.clear();
    this.gets.clear();
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function isFileEntry(entry: unknown, size: number): boolean {
  const e = entry as { type?: unknown; size?: unknown } | undefined;
  return e?.type === 'file' && e.size === size;
}

/** A file of a getFiles reply: sent unless the client's SHA-256 already matches. */
function describe(content: FileContent, clientSha256: string | undefined): GetFilesItem & { sent: boolean } {
  const digest = sha256(content.data);
  return {
    size: content.data.length,
    mtimeMs: content.mtimeMs,
    ...(content.mode !== undefined ? { mode: content.mode } : {}),
    sha256: digest,
    sent: digest !== clientSha256,
  };
}

/**
 * The largest message limit under which `make(limit)` fits `maxBytes` as JSON: a batch's reply lists
 * up to MAX_BATCH_FILES failures, whose messages are shortened (never dropped) to fit one message.
 */
function fitFailures<T>(make: (limit: number) => T, maxBytes: number): T {
  for (const limit of [MAX_ERROR_MESSAGE_BYTES, 256, 100, 40, 0]) {
    const reply = make(limit);
    if (Buffer.byteLength(JSON.stringify(reply)) <= maxBytes) return reply;
  }
  return make(0);
}
