import { systemCode, toFileError } from '../errors.js';
import { PARTIAL_PREFIX } from '../paths.js';
import type { Dir } from './beneath.js';
import type { FileSystem } from './fs.js';
import { STATE_SUFFIX } from './sidecar.js';

// Names an upload creates: data file, its state sidecar, and the sidecar's temp file.
const PARTIAL_NAME = /^\.ferry-partial-[0-9a-f]{32}(\.state(\.tmp)?)?$/;
// A whole small file of a batch while it is written (whole-files.ts).
const WHOLE_FILE_TEMP = /^\.ferry-partial-whole-[0-9a-f]{32}$/;

/**
 * Deletes expired partials among `names` in `dir`: a partial (data file, sidecar, the sidecar's temp
 * file, or any of them alone) none of whose files was modified in the maxAgeMs before `now`. Only names uploads create are touched, never
 * directories, and never a partial whose key (`dir.key/name`) is in `inUse`. Returns the names removed.
 */
export async function sweepPartials(
  fs: FileSystem,
  dir: Dir,
  names: readonly string[],
  maxAgeMs: number,
  now: number,
  inUse: ReadonlySet<string>,
  orphanedBefore = Number.NEGATIVE_INFINITY,
): Promise<string[]> {
  const groups = new Map<string, string[]>();
  const removed: string[] = [];
  for (const name of names) {
    // A whole small file being written by a batch is never resumed: one from before this store was
    // opened belongs to a process that died (or to a batch long over) and goes at once.
    if (WHOLE_FILE_TEMP.test(name)) {
      const stats = await fs.lstat(dir.at(name)).catch(() => undefined);
      if (stats?.isFile() && (stats.mtimeMs < orphanedBefore || now - stats.mtimeMs > maxAgeMs)) {
        await fs.unlink(dir.at(name)).then(
          () => removed.push(name),
          () => {},
        );
      }
      continue;
    }
    if (!PARTIAL_NAME.test(name)) continue;
    const base = name.slice(0, PARTIAL_PREFIX.length + 32);
    const group = groups.get(base);
    if (group === undefined) groups.set(base, [name]);
    else group.push(name);
  }
  for (const [base, members] of groups) {
    // Only lstat: nothing a local user planted at these names is ever opened.
    let lastActivity = Number.NEGATIVE_INFINITY;
    let sidecarTime: number | undefined;
    const files: string[] = [];
    for (const name of members) {
      const stats = await fs.lstat(dir.at(name)).catch(() => undefined);
      if (stats === undefined || stats.isDirectory()) continue;
      files.push(name);
      lastActivity = Math.max(lastActivity, stats.mtimeMs);
      if (name === base + STATE_SUFFIX && stats.isFile()) sidecarTime = stats.mtimeMs;
    }
    // A partial with its sidecar was last active when the sidecar was written (its time is set to
    // the upload's own clock); alone, a file's own time says it.
    if (sidecarTime !== undefined && members.includes(base)) lastActivity = sidecarTime;
    if (files.length === 0 || now - lastActivity <= maxAgeMs) continue;
    // Sidecar first: a data file without a sidecar is never resumed, whatever happens next.
    files.sort((a, b) => b.length - a.length);
    for (const name of files) {
      if (inUse.has(`${dir.key}/${base}`)) break; // resumed meanwhile: it is in use again
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
