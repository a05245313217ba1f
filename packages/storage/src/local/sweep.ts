import { systemCode, toFileError } from '../errors.js';
import { PARTIAL_PREFIX } from '../paths.js';
import type { Dir } from './beneath.js';
import type { FileSystem } from './fs.js';
import { readState, STATE_SUFFIX } from './sidecar.js';

// Names an upload creates: data file, its state sidecar, and the sidecar's temp file.
const PARTIAL_NAME = /^\.ferry-partial-[0-9a-f]{32}(\.state(\.tmp)?)?$/;

/**
 * Deletes expired partials among `names` in `dir`: a partial whose sidecar says it was last updated
 * more than maxAgeMs before `now`, and data or sidecar files without their partner (or with an
 * unreadable sidecar) whose mtime is that old. Only names uploads create are touched, never
 * directories, and never a partial whose key (`dir.key/name`) is in `inUse`. Returns the names removed.
 */
export async function sweepPartials(
  fs: FileSystem,
  dir: Dir,
  names: readonly string[],
  maxAgeMs: number,
  now: number,
  inUse: ReadonlySet<string>,
): Promise<string[]> {
  const groups = new Map<string, string[]>();
  for (const name of names) {
    if (!PARTIAL_NAME.test(name)) continue;
    const base = name.slice(0, PARTIAL_PREFIX.length + 32);
    const group = groups.get(base);
    if (group === undefined) groups.set(base, [name]);
    else group.push(name);
  }
  const removed: string[] = [];
  for (const [base, members] of groups) {
    if (inUse.has(`${dir.key}/${base}`)) continue;
    let lastActivity = Number.NEGATIVE_INFINITY;
    const files: string[] = [];
    for (const name of members) {
      const stats = await fs.lstat(dir.at(name)).catch(() => undefined);
      if (stats === undefined || stats.isDirectory()) continue;
      files.push(name);
      lastActivity = Math.max(lastActivity, stats.mtimeMs);
    }
    const state = members.includes(base + STATE_SUFFIX)
      ? await readState(fs, dir.at(base + STATE_SUFFIX)).catch(() => undefined)
      : undefined;
    if (state !== undefined && members.includes(base)) lastActivity = state.updatedAt;
    if (files.length === 0 || now - lastActivity <= maxAgeMs) continue;
    // Sidecar first: a data file without a sidecar is never resumed, whatever happens next.
    files.sort((a, b) => b.length - a.length);
    for (const name of files) {
      try {
        await fs.unlink(dir.at(name));
        removed.push(name);
      } catch (error) {
        if (systemCode(error) !== 'ENOENT') throw toFileError(error, `removing expired partial ${name}`);
      }
    }
  }
  return removed;
}
