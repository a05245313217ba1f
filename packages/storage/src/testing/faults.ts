import type { FileHandle } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import type { FileSystem } from '../local/fs.js';

/**
 * Fault injection for tests (here and in the server's end-to-end tests): file systems whose calls
 * fail the way a full or broken disk does, passed as the `fs` option of
 * LocalDiskStorage.
 */

/** An Error shaped like Node's system errors (code, syscall), e.g. systemError('ENOSPC', 'write'). */
export function systemError(code: string, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated failure, ${syscall}`), { code, syscall });
}

export type HandleOverrides = Partial<
  Pick<FileHandle, 'write' | 'writev' | 'read' | 'datasync' | 'sync' | 'stat'>
>;

/**
 * The real node:fs/promises, except that handles opened on paths accepted by `match` have the
 * methods returned by `overrides(realHandle)` replaced.
 */
export function faultyFileSystem(
  match: (path: string) => boolean,
  overrides: (real: FileHandle) => HandleOverrides,
): Partial<FileSystem> {
  const open = (async (path: Parameters<FileSystem['open']>[0], ...rest: unknown[]) => {
    const handle = await (fsp.open as (...args: unknown[]) => Promise<FileHandle>)(path, ...rest);
    if (!match(String(path))) return handle;
    const replaced = overrides(handle) as Record<PropertyKey, unknown>;
    return new Proxy(handle, {
      get(target, prop) {
        if (Object.hasOwn(replaced, prop)) return replaced[prop];
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }) as FileSystem['open'];
  return { open };
}

const PARTIAL_DATA = /\.ferry-partial-[0-9a-f]{32}$/;

/**
 * Partial data files whose writes fail with `code` (default ENOSPC) once `limit` bytes were
 * written in total across all of them: a disk that fills up mid-transfer.
 */
export function failPartialWritesAfter(limit: number, code = 'ENOSPC'): Partial<FileSystem> {
  let written = 0;
  return faultyFileSystem(
    (path) => PARTIAL_DATA.test(path),
    (real) => ({
      write: (async (buffer: Uint8Array, offset: number, length: number, position: number) => {
        if (written + length > limit) throw systemError(code, 'write');
        written += length;
        return real.write(buffer, offset, length, position);
      }) as FileHandle['write'],
      writev: (async (buffers: NodeJS.ArrayBufferView[], position: number) => {
        const length = buffers.reduce((n, b) => n + b.byteLength, 0);
        if (written + length > limit) throw systemError(code, 'write');
        written += length;
        return real.writev(buffers, position);
      }) as FileHandle['writev'],
    }),
  );
}
