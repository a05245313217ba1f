import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FileError, type FileErrorCode, toFileError } from '../errors.js';
import type { Dir } from './beneath.js';
import type { WholeFileInDir } from './whole-files.js';

/**
 * Writes batches of small files whole on a thread of their own, so that creating thousands of files
 * (a system call that can take a tenth of a millisecond each on a busy disk) runs beside the
 * session's network work instead of between it: the receiving side of a tree transfer then keeps
 * both cores busy. Started on the first batch; a store that cannot start it (no worker script next to
 * this module, as in a bundle built without it) writes on its own thread instead.
 */
export interface WriteRequest {
  id: number;
  fd: number;
  path: string;
  viaDescriptor: boolean;
  overwrite: boolean;
  files: WholeFileInDir[];
}

export type WriteResult =
  | null
  | { code: FileErrorCode; message: string }
  | { system: string | null; message: string };

export interface WriteReply {
  id: number;
  results: WriteResult[];
}

/** The worker's script: next to this module (the package's dist, or a bundle's directory). */
const SCRIPT = new URL('./whole-files-worker.js', import.meta.url);

export class WholeFileWriter {
  #worker: Worker | undefined;
  #broken = !existsSync(fileURLToPath(SCRIPT));
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (reply: WriteReply) => void; reject: (e: Error) => void }>();

  /** Whether batches can go to the thread (else the caller writes them itself). */
  get available(): boolean {
    return !this.#broken;
  }

  /** Writes `files` into `dir` (held open by the caller until this resolves); one result per file. */
  async write(dir: Dir, files: WholeFileInDir[], overwrite: boolean): Promise<Array<FileError | undefined>> {
    const worker = this.#start();
    const id = this.#nextId++;
    const reply = await new Promise<WriteReply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.ref(); // busy: keep the process up until the answer comes
      const request: WriteRequest = {
        id,
        fd: dir.handle.fd,
        path: dir.path,
        viaDescriptor: dir.viaDescriptor,
        overwrite,
        files,
      };
      worker.postMessage(request);
    });
    return reply.results.map((result, i) => {
      if (result === null) return undefined;
      if ('code' in result) return new FileError(result.code, result.message);
      const what = `writing ${files[i]!.file.path}`;
      return toFileError(Object.assign(new Error(result.message), { code: result.system ?? 'EIO' }), what);
    });
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(SCRIPT);
    worker.unref();
    worker.on('message', (reply: WriteReply) => {
      const waiter = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) worker.unref();
      waiter?.resolve(reply);
    });
    const fail = (why: string): void => {
      this.#broken = true;
      this.#worker = undefined;
      for (const waiter of this.#pending.values()) waiter.reject(new FileError('EIO', why));
      this.#pending.clear();
    };
    worker.on('error', (error) => fail(`the file-writing thread failed: ${error.message}`));
    worker.on('exit', (code) => fail(`the file-writing thread stopped (${code})`));
    this.#worker = worker;
    return worker;
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    this.#broken = true;
    await worker?.terminate();
  }
}
