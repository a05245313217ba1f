import * as z from 'zod';
import {
  MAX_BATCH_BYTES,
  MAX_BATCH_FILES,
  MAX_BLOCK_COUNT,
  MAX_BLOCK_SIZE,
  MAX_CONTROL_BYTES,
  MAX_CURSOR_LENGTH,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_FILE_SIZE,
  MAX_NAME_BYTES,
  MAX_PATH_BYTES,
  MAX_RESUME_RANGES,
  MAX_WALK_CURSOR_LENGTH,
  MIN_BLOCK_SIZE,
  MODE_MASK,
} from './constants.js';
import {
  type DecodeResult,
  failure,
  protocolError,
  REPLY_ERROR_NAMES,
  type ReplyErrorName,
} from './errors.js';
import { firstDuplicateName } from './json-keys.js';
import { utf8String } from './schema-parts.js';
import { decodeUtf8 } from './wire.js';

// Control messages are few per transfer: compiling a fast-path parser per schema on first use (zod's
// JIT) costs more start-up time than it ever saves.
z.config({ jitless: true });

/**
 * Control messages: UTF-8 JSON objects, one per CONTROL packet, validated with these schemas (a
 * discriminated union on `op`). Every object is strict: an unknown key is a protocol error.
 */

const u32 = z.uint32();
/** A request id: chosen by the requester, echoed by the one reply. */
const id = u32;
const transferId = u32;
/** A path relative to the served root, '/'-separated; '' is the root itself. */
const path = utf8String(0, MAX_PATH_BYTES).refine((s) => !s.includes('\0'), 'must not contain NUL');
const nonEmptyPath = utf8String(1, MAX_PATH_BYTES).refine((s) => !s.includes('\0'), 'must not contain NUL');
const fileSize = z.int().min(0).max(MAX_FILE_SIZE);
const mtimeMs = z.number(); // milliseconds since the epoch, fractional allowed; finite (JSON has no others)
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');
const blockSize = z.int().min(MIN_BLOCK_SIZE).max(MAX_BLOCK_SIZE);
const blockCount = z.int().min(0).max(MAX_BLOCK_COUNT);
const errorCode = z.enum(REPLY_ERROR_NAMES as [ReplyErrorName, ...ReplyErrorName[]]);
const errorMessage = utf8String(0, MAX_ERROR_MESSAGE_BYTES);
const cursor = z
  .string()
  .min(1)
  .max(MAX_CURSOR_LENGTH)
  .regex(/^[A-Za-z0-9_=-]+$/, 'must use the base64url alphabet');
/** A walk's cursor: longer than a list's, as it may have to name any path of the tree. */
const walkCursor = z
  .string()
  .min(1)
  .max(MAX_WALK_CURSOR_LENGTH)
  .regex(/^[A-Za-z0-9_=-]+$/, 'must use the base64url alphabet');
/** Permission bits (0..0o777); set-id and sticky bits never travel. */
const mode = z.int().min(0).max(MODE_MASK);

/** Half-open block ranges [start, end): ascending, disjoint, each non-empty, at most MAX_RESUME_RANGES. */
export const BlockRangesSchema = z.lazy(() =>
  z
    .array(z.tuple([u32, u32]).refine(([start, end]) => start < end, 'start must be below end'))
    .max(MAX_RESUME_RANGES)
    .refine(
      (ranges) => ranges.every((r, i) => i === 0 || r[0] >= ranges[i - 1]![1]),
      'ranges must be ascending',
    ),
);

export const EntrySchema = z.lazy(() =>
  z.strictObject({
    /** One path component, 1..MAX_NAME_BYTES; '' only for the root in a stat reply. */
    name: utf8String(0, MAX_NAME_BYTES).refine((s) => !s.includes('/') && !s.includes('\0'), 'not a name'),
    type: z.enum(['file', 'dir', 'other']),
    size: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    mtimeMs,
  }),
);

/** One entry of a walk: its path relative to the directory walked. Symbolic links are 'link', never followed. */
export const WalkEntrySchema = z.lazy(() =>
  z.strictObject({
    path: nonEmptyPath,
    type: z.enum(['file', 'dir', 'link', 'other']),
    size: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    mtimeMs,
    mode: mode.optional(),
  }),
);

/** Why one file of a batch failed: its index in the request's `files`. */
export const FileFailureSchema = z.lazy(() =>
  z.strictObject({ index: u32, code: errorCode, message: errorMessage }),
);

// --- requests (each gets exactly one reply with the same id) --------------------------------------
export const ListRequestSchema = z.lazy(() =>
  z.strictObject({
    op: z.literal('list'),
    id,
    path,
    cursor: cursor.optional(),
    limit: z.int().min(1).max(0xffff_ffff).optional(),
  }),
);

export const StatRequestSchema = z.lazy(() => z.strictObject({ op: z.literal('stat'), id, path }));

export const ResumeStateSchema = z.lazy(() =>
  z.strictObject({ size: fileSize, mtimeMs, have: BlockRangesSchema }),
);

export const GetRequestSchema = z.lazy(() =>
  z.strictObject({
    op: z.literal('get'),
    id,
    path: nonEmptyPath,
    resume: ResumeStateSchema.optional(),
    /** Feature PathMtu only (PROTOCOL.md §18.1): the largest block the client takes for this get. */
    maxBlockSize: blockSize.optional(),
  }),
);

export const PutRequestSchema = z.lazy(() =>
  z.strictObject({
    op: z.literal('put'),
    id,
    path: nonEmptyPath,
    size: fileSize,
    mtimeMs: mtimeMs.optional(),
    overwrite: z.boolean(),
    resume: z.boolean(),
    /** Feature Trees: the permission bits the file gets. */
    mode: mode.optional(),
    /** Feature PathMtu only (PROTOCOL.md §18.1): the largest block the client can send now. */
    maxBlockSize: blockSize.optional(),
  }),
);

export const CommitRequestSchema = z.lazy(() =>
  z.strictObject({ op: z.literal('commit'), id, transferId, sha256 }),
);

export const RenameRequestSchema = z.lazy(() =>
  z.strictObject({
    op: z.literal('rename'),
    id,
    from: nonEmptyPath,
    to: nonEmptyPath,
    overwrite: z.boolean(),
  }),
);

export const DeleteRequestSchema = z.lazy(() =>
  z.strictObject({ op: z.literal('delete'), id, path: nonEmptyPath }),
);

// Feature Trees.
export const MkdirRequestSchema = z.lazy(() =>
  z.strictObject({
    op: z.literal('mkdir'),
    id,
    path: nonEmptyPath,
    /** Make missing parents too, and accept an existing directory. */
    parents: z.boolean(),
    mode: mode.optional(),
  }),
);

export const RmdirRequestSchema = z.lazy(() =>
  z.strictObject({ op: z.literal('rmdir'), id, path: nonEmptyPath }),
);

export const WalkRequestSchema = z.lazy(() =>
  z.strictObject({
    op: z.literal('walk'),
    id,
    path,
    cursor: walkCursor.optional(),
    limit: z.int().min(1).max(0xffff_ffff).optional(),
  }),
);

export const HashRequestSchema = z.lazy(() =>
  z.strictObject({ op: z.literal('hash'), id, path: nonEmptyPath }),
);

function batchBytes(files: ReadonlyArray<{ size: number }>): boolean {
  let total = 0;
  for (const f of files) total += f.size;
  return total <= MAX_BATCH_BYTES;
}

export const PutFilesRequestSchema = z.lazy(() =>
  z.strictObject({
    op: z.literal('putFiles'),
    id,
    files: z
      .array(
        z.strictObject({
          path: nonEmptyPath,
          size: fileSize,
          mtimeMs: mtimeMs.optional(),
          mode: mode.optional(),
          sha256,
        }),
      )
      .min(1)
      .max(MAX_BATCH_FILES)
      .refine(batchBytes, `the files must hold at most ${MAX_BATCH_BYTES} bytes in all`),
    overwrite: z.boolean(),
    /** Do not send a file whose target already holds the same bytes (same size and SHA-256). */
    skipIdentical: z.boolean(),
  }),
);

export const CommitFilesRequestSchema = z.lazy(() =>
  z.strictObject({ op: z.literal('commitFiles'), id, transferId }),
);

export const GetFilesRequestSchema = z.lazy(() =>
  z.strictObject({
    op: z.literal('getFiles'),
    id,
    files: z
      .array(
        z.strictObject({
          path: nonEmptyPath,
          /** The client holds a file with this SHA-256: the server sends the file only if it differs. */
          sha256: sha256.optional(),
        }),
      )
      .min(1)
      .max(MAX_BATCH_FILES),
  }),
);

// --- messages without a reply ---------------------------------------------------------------------
/** Either side: stop a transfer (a put's partial file is kept for resume). */
export const CancelMessageSchema = z.lazy(() => z.strictObject({ op: z.literal('cancel'), transferId }));
/** Server -> client after every block of a get was sent once: SHA-256 of the file as read. */
export const DigestMessageSchema = z.lazy(() =>
  z.strictObject({ op: z.literal('digest'), transferId, sha256 }),
);
/** Either side: the transfer failed. */
export const AbortMessageSchema = z.lazy(() =>
  z.strictObject({
    op: z.literal('abort'),
    transferId,
    code: errorCode,
    message: errorMessage,
  }),
);

// --- replies --------------------------------------------------------------------------------------
const okHead = { op: z.literal('reply'), id, ok: z.literal(true) } as const;

export const ListReplySchema = z.lazy(() =>
  z.strictObject({
    ...okHead,
    entries: z.array(EntrySchema),
    /** Present when the listing continues: send the same list request again with this cursor. */
    next: cursor.optional(),
  }),
);
export const StatReplySchema = z.lazy(() => z.strictObject({ ...okHead, entry: EntrySchema }));
export const GetReplySchema = z.lazy(() =>
  z.strictObject({
    ...okHead,
    transferId,
    size: fileSize,
    mtimeMs,
    blockSize,
    blockCount,
    /** The resume state no longer matched the file: the client discards its partial copy. */
    restarted: z.boolean().optional(),
    /** Feature Trees: the file's permission bits. */
    mode: mode.optional(),
  }),
);
export const PutReplySchema = z.lazy(() =>
  z.strictObject({
    ...okHead,
    transferId,
    blockSize,
    blockCount,
    /** Blocks the server already holds from an interrupted put of the same path and size. */
    have: BlockRangesSchema,
  }),
);
/** The reply to commit, rename, delete, mkdir and rmdir. */
export const OkReplySchema = z.lazy(() => z.strictObject(okHead));
export const WalkReplySchema = z.lazy(() =>
  z.strictObject({
    ...okHead,
    entries: z.array(WalkEntrySchema),
    /** Present when the walk continues: send the same walk request again with this cursor. */
    next: walkCursor.optional(),
  }),
);
export const HashReplySchema = z.lazy(() => z.strictObject({ ...okHead, sha256, size: fileSize }));
export const PutFilesReplySchema = z.lazy(() =>
  z.strictObject({
    ...okHead,
    transferId,
    blockSize,
    blockCount,
    /** Indices of files whose target already holds the same bytes: not sent, not written. */
    skipped: z.array(u32).max(MAX_BATCH_FILES),
    /** Files refused up front (for example EEXIST): not sent. */
    failed: z.array(FileFailureSchema).max(MAX_BATCH_FILES),
  }),
);
export const CommitFilesReplySchema = z.lazy(() =>
  z.strictObject({
    ...okHead,
    /** Files that could not be placed; every other file sent is in place. */
    failed: z.array(FileFailureSchema).max(MAX_BATCH_FILES),
  }),
);
/** One file of a getFiles reply: what it is and whether its bytes follow, or why it cannot be had. */
export const GetFilesItemSchema = z.lazy(() =>
  z.union([
    z.strictObject({
      size: fileSize,
      mtimeMs,
      mode: mode.optional(),
      sha256,
      /** False when the client's SHA-256 matched: its bytes are not in the transfer. */
      sent: z.boolean(),
    }),
    z.strictObject({ code: errorCode, message: errorMessage }),
  ]),
);
export const GetFilesReplySchema = z.lazy(() =>
  z.strictObject({
    ...okHead,
    transferId,
    blockSize,
    blockCount,
    /** One item per requested file, in order; the transfer carries the sent files back to back. */
    files: z.array(GetFilesItemSchema).max(MAX_BATCH_FILES),
  }),
);
export const ErrorReplySchema = z.lazy(() =>
  z.strictObject({
    op: z.literal('reply'),
    id,
    ok: z.literal(false),
    code: errorCode,
    message: errorMessage,
  }),
);

/** Any reply. Strict objects make the success shapes disjoint, so the union is unambiguous. */
export const ReplySchema = z.lazy(() =>
  z
    .looseObject({ op: z.literal('reply') })
    .pipe(
      z.discriminatedUnion('ok', [
        z
          .looseObject({ op: z.literal('reply'), ok: z.literal(true) })
          .pipe(
            z.union([
              OkReplySchema,
              ListReplySchema,
              StatReplySchema,
              GetReplySchema,
              PutReplySchema,
              WalkReplySchema,
              HashReplySchema,
              PutFilesReplySchema,
              CommitFilesReplySchema,
              GetFilesReplySchema,
            ]),
          ),
        ErrorReplySchema.unwrap(),
      ]),
    ),
);

/**
 * Each message's schema by `op`. Schemas are built on first use: a process validates only the
 * messages it meets, and building every schema at start-up cost a command several milliseconds.
 */
const SCHEMA_BY_OP = {
  list: ListRequestSchema,
  stat: StatRequestSchema,
  get: GetRequestSchema,
  put: PutRequestSchema,
  commit: CommitRequestSchema,
  rename: RenameRequestSchema,
  delete: DeleteRequestSchema,
  mkdir: MkdirRequestSchema,
  rmdir: RmdirRequestSchema,
  walk: WalkRequestSchema,
  hash: HashRequestSchema,
  putFiles: PutFilesRequestSchema,
  commitFiles: CommitFilesRequestSchema,
  getFiles: GetFilesRequestSchema,
  cancel: CancelMessageSchema,
  digest: DigestMessageSchema,
  abort: AbortMessageSchema,
  reply: ReplySchema,
} as const;

/** Every control message: a discriminated union on `op`. */
export const ControlMessageSchema = z.lazy(() =>
  z.discriminatedUnion('op', [
    ListRequestSchema.unwrap(),
    StatRequestSchema.unwrap(),
    GetRequestSchema.unwrap(),
    PutRequestSchema.unwrap(),
    CommitRequestSchema.unwrap(),
    RenameRequestSchema.unwrap(),
    DeleteRequestSchema.unwrap(),
    MkdirRequestSchema.unwrap(),
    RmdirRequestSchema.unwrap(),
    WalkRequestSchema.unwrap(),
    HashRequestSchema.unwrap(),
    PutFilesRequestSchema.unwrap(),
    CommitFilesRequestSchema.unwrap(),
    GetFilesRequestSchema.unwrap(),
    CancelMessageSchema.unwrap(),
    DigestMessageSchema.unwrap(),
    AbortMessageSchema.unwrap(),
    ReplySchema.unwrap(),
  ]),
);

export type BlockRanges = z.infer<typeof BlockRangesSchema>;
export type Entry = z.infer<typeof EntrySchema>;
export type WalkEntry = z.infer<typeof WalkEntrySchema>;
export type FileFailure = z.infer<typeof FileFailureSchema>;
export type GetFilesItem = z.infer<typeof GetFilesItemSchema>;
export type ResumeState = z.infer<typeof ResumeStateSchema>;
export type ListRequest = z.infer<typeof ListRequestSchema>;
export type StatRequest = z.infer<typeof StatRequestSchema>;
export type GetRequest = z.infer<typeof GetRequestSchema>;
export type PutRequest = z.infer<typeof PutRequestSchema>;
export type CommitRequest = z.infer<typeof CommitRequestSchema>;
export type RenameRequest = z.infer<typeof RenameRequestSchema>;
export type DeleteRequest = z.infer<typeof DeleteRequestSchema>;
export type MkdirRequest = z.infer<typeof MkdirRequestSchema>;
export type RmdirRequest = z.infer<typeof RmdirRequestSchema>;
export type WalkRequest = z.infer<typeof WalkRequestSchema>;
export type HashRequest = z.infer<typeof HashRequestSchema>;
export type PutFilesRequest = z.infer<typeof PutFilesRequestSchema>;
export type CommitFilesRequest = z.infer<typeof CommitFilesRequestSchema>;
export type GetFilesRequest = z.infer<typeof GetFilesRequestSchema>;
export type CancelMessage = z.infer<typeof CancelMessageSchema>;
export type DigestMessage = z.infer<typeof DigestMessageSchema>;
export type AbortMessage = z.infer<typeof AbortMessageSchema>;
export type ListReply = z.infer<typeof ListReplySchema>;
export type StatReply = z.infer<typeof StatReplySchema>;
export type GetReply = z.infer<typeof GetReplySchema>;
export type PutReply = z.infer<typeof PutReplySchema>;
export type OkReply = z.infer<typeof OkReplySchema>;
export type WalkReply = z.infer<typeof WalkReplySchema>;
export type HashReply = z.infer<typeof HashReplySchema>;
export type PutFilesReply = z.infer<typeof PutFilesReplySchema>;
export type CommitFilesReply = z.infer<typeof CommitFilesReplySchema>;
export type GetFilesReply = z.infer<typeof GetFilesReplySchema>;
export type ErrorReply = z.infer<typeof ErrorReplySchema>;
export type Reply = z.infer<typeof ReplySchema>;
export type Request =
  | ListRequest
  | StatRequest
  | GetRequest
  | PutRequest
  | CommitRequest
  | RenameRequest
  | DeleteRequest
  | MkdirRequest
  | RmdirRequest
  | WalkRequest
  | HashRequest
  | PutFilesRequest
  | CommitFilesRequest
  | GetFilesRequest;

/** A successful reply. */
export type SuccessReply = Exclude<Reply, ErrorReply>;

/** The successful reply each request gets. */
export interface ReplyByOp {
  list: ListReply;
  stat: StatReply;
  get: GetReply;
  put: PutReply;
  commit: OkReply;
  rename: OkReply;
  delete: OkReply;
  mkdir: OkReply;
  rmdir: OkReply;
  walk: WalkReply;
  hash: HashReply;
  putFiles: PutFilesReply;
  commitFiles: CommitFilesReply;
  getFiles: GetFilesReply;
}

/** The members that tell each successful reply from the others (all but op, id and ok). */
const REPLY_MEMBERS: { readonly [Op in keyof ReplyByOp]: readonly string[] } = {
  list: ['entries'],
  stat: ['entry'],
  get: ['transferId', 'size', 'mtimeMs'],
  put: ['transferId', 'have'],
  commit: [],
  rename: [],
  delete: [],
  mkdir: [],
  rmdir: [],
  walk: ['entries'],
  hash: ['sha256', 'size'],
  putFiles: ['transferId', 'skipped', 'failed'],
  commitFiles: ['failed'],
  getFiles: ['transferId', 'files'],
};

/**
 * Whether a (decoded, hence valid) successful reply is the kind of reply request `op` gets: its
 * distinguishing members are there, and a plain ok reply has none but op, id and ok.
 */
export function isReplyTo<Op extends keyof ReplyByOp>(op: Op, reply: SuccessReply): reply is ReplyByOp[Op] {
  const members = REPLY_MEMBERS[op];
  if (members.length === 0) return Object.keys(reply).length === 3;
  return members.every((member) => Object.hasOwn(reply, member));
}

/** Requests of feature Trees: a client sends them only in a session whose welcome listed it. */
export const TREE_OPS: ReadonlySet<string> = new Set([
  'mkdir',
  'rmdir',
  'walk',
  'hash',
  'putFiles',
  'commitFiles',
  'getFiles',
]);
export type ControlMessage = z.infer<typeof ControlMessageSchema>;
export type ControlOp = ControlMessage['op'];

const OPS = Object.keys(SCHEMA_BY_OP) as ControlOp[];

/** ControlMessageSchema.safeParse, through the schema of the message's own `op` alone. */
function validate(message: unknown): z.ZodSafeParseResult<ControlMessage> {
  const op = typeof message === 'object' && message !== null ? (message as { op?: unknown }).op : undefined;
  if (typeof op !== 'string' || !Object.hasOwn(SCHEMA_BY_OP, op)) {
    const error = new z.ZodError([
      {
        code: 'custom',
        path: ['op'],
        message: `must be one of ${OPS.join(', ')}`,
        input: op,
      },
    ]);
    return { success: false, error } as z.ZodSafeParseResult<ControlMessage>;
  }
  return SCHEMA_BY_OP[op as ControlOp].safeParse(message) as z.ZodSafeParseResult<ControlMessage>;
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid';
  return `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`;
}

/**
 * The JSON body of a CONTROL packet. Throws ProtocolError ('schema' for an invalid message, 'too-large'
 * above MAX_CONTROL_BYTES): both are bugs of the caller, which builds messages from valid data.
 */
export function encodeControlMessage(message: ControlMessage): Buffer {
  return encodeValid(message);
}

/** The fields of request `op`, but its op and id. */
export type RequestFields<Op extends keyof ReplyByOp> = Omit<Extract<Request, { op: Op }>, 'id' | 'op'>;

/** Encodes request `op` with id `id` (see encodeControlMessage). */
export function encodeRequest<Op extends keyof ReplyByOp>(
  op: Op,
  id: number,
  fields: RequestFields<Op>,
): Buffer {
  return encodeValid({ ...fields, op, id });
}

function encodeValid(message: unknown): Buffer {
  const parsed = validate(message);
  if (!parsed.success) throw protocolError('schema', describe(parsed.error));
  const body = Buffer.from(JSON.stringify(parsed.data), 'utf8');
  if (body.length > MAX_CONTROL_BYTES) {
    throw protocolError('too-large', `control message of ${body.length} bytes`);
  }
  return body;
}

/** Parses and validates a CONTROL body. Never throws. */
export function decodeControlMessage(body: Uint8Array): DecodeResult<ControlMessage> {
  if (body.length > MAX_CONTROL_BYTES) return failure('too-large', `control message of ${body.length} bytes`);
  const text = decodeUtf8(body);
  if (text === undefined) return failure('bad-utf8', 'control message');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return failure('bad-json');
  }
  // JSON.parse keeps the last of duplicate names: {"op":"stat",…,"op":"delete"} would act as a delete.
  const duplicate = firstDuplicateName(text);
  if (duplicate !== undefined) return failure('duplicate-name', `member "${duplicate.slice(0, 64)}" twice`);
  try {
    const parsed = validate(json);
    if (!parsed.success) return failure('schema', describe(parsed.error));
    return { ok: true, value: parsed.data };
  } catch {
    return failure('schema', 'validation failed');
  }
}

/** Whether a message is a request (it carries an id and expects exactly one reply). */
export function isRequest(message: ControlMessage): message is Request {
  return message.op !== 'reply' && 'id' in message;
}

// --- list paging ----------------------------------------------------------------------------------
function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

/**
 * How many leading `entries` one list reply can carry so that its JSON stays within `maxBytes`
 * (default MAX_CONTROL_BYTES), whatever its id and, when entries remain, with a `next` cursor of up to
 * `maxCursorLength` characters (default MAX_CURSOR_LENGTH). Returns entries.length when all fit;
 * otherwise the server sends that many and sets `next`. Throws ProtocolError 'too-large' when not even
 * one entry fits (never with the defaults).
 */
export function paginateEntries(
  entries: readonly Entry[],
  maxBytes: number = MAX_CONTROL_BYTES,
  maxCursorLength: number = MAX_CURSOR_LENGTH,
): number {
  const envelope = { op: 'reply', id: 0xffff_ffff, ok: true, entries: [] as Entry[] };
  const lastPage = maxBytes - jsonBytes(envelope);
  const page = maxBytes - jsonBytes({ ...envelope, next: 'x'.repeat(maxCursorLength) });
  let used = 0;
  let fitting = 0; // entries that fit in a page that has a cursor
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    used += jsonBytes({ name: e.name, type: e.type, size: e.size, mtimeMs: e.mtimeMs }) + (i > 0 ? 1 : 0);
    if (used <= page) fitting = i + 1;
    else if (used > lastPage) break;
  }
  if (used <= lastPage) return entries.length;
  if (fitting === 0) {
    throw protocolError('too-large', `a ${maxBytes}-byte list reply cannot hold the next entry`);
  }
  return fitting;
}
