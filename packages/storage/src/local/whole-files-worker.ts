/**
 * The thread that writes small files whole (see WholeFileWriter): it gets a directory (a descriptor
 * number, valid in every thread of the process) and a batch of files, writes them with synchronous
 * calls, and answers with one result per file. Nothing else of the store runs here.
 */
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { isFileError } from '../errors.js';
import { showPath } from '../paths.js';
import { nodeFileSystem } from './fs.js';
import { writeWholeFileSync } from './whole-files.js';
import type { WriteReply, WriteRequest } from './whole-files-writer.js';

parentPort?.on('message', (request: WriteRequest) => {
  const dir = {
    at: (name: string): string =>
      request.viaDescriptor ? `/proc/self/fd/${request.fd}/${name}` : join(request.path, name),
  };
  const reply: WriteReply = { id: request.id, results: [] };
  for (const f of request.files) {
    try {
      writeWholeFileSync(
        nodeFileSystem,
        dir,
        f.name,
        { ...f.file, data: Buffer.from(f.file.data.buffer, f.file.data.byteOffset, f.file.data.byteLength) },
        request.overwrite,
      );
      reply.results.push(null);
    } catch (error) {
      reply.results.push(
        isFileError(error)
          ? { code: error.code, message: error.message }
          : {
              system: (error as NodeJS.ErrnoException)?.code ?? null,
              message: `writing ${showPath(f.file.path)}: ${(error as Error)?.message ?? String(error)}`,
            },
      );
    }
  }
  parentPort?.postMessage(reply);
});
