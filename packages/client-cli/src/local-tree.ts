/**
 * A local directory tree as a tree transfer sends it: its directories (empty ones too) and regular
 * files, in pre-order. Symbolic links are not followed unless asked, and never out of the tree: a
 * link that is not followed is skipped with a reason, as are special files (FIFOs, sockets,
 * devices). The scan is bounded in depth and cannot loop.
 */
import { type Dirent, lstatSync, readdirSync, realpathSync, type Stats, statSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { MAX_WALK_DEPTH, MODE_MASK } from '@ferry/protocol';
import { describeFileType } from '@ferry/storage';

export interface LocalTreeFile {
  /** Path relative to the tree's top, '/'-separated. */
  rel: string;
  /** Path to open. */
  path: string;
  size: number;
  mtimeMs: number;
  mode: number;
}

export interface LocalTreeDir {
  rel: string;
  mtimeMs: number;
  mode: number;
}

export interface LocalTree {
  dirs: LocalTreeDir[];
  files: LocalTreeFile[];
  /** Entries left out, each with why (a link not followed, a special file). */
  skipped: Array<{ rel: string; why: string }>;
  /** Directories that could not be read. */
  unreadable: Array<{ rel: string; error: NodeJS.ErrnoException }>;
}

export interface ScanOptions {
  /** Follow symbolic links whose target lies inside the tree (never one leading out of it). */
  followLinks: boolean;
}

/**
 * Scans the tree below `top` (which must be a directory). Synchronous: it runs before any transfer
 * starts, and a few system calls per entry without a round trip through the thread pool are what
 * make 10,000 entries take milliseconds rather than a second.
 */
export function scanLocal(top: string, options: ScanOptions): LocalTree {
  const tree: LocalTree = { dirs: [], files: [], skipped: [], unreadable: [] };
  const realTop = realpathSync(top);
  const topStats = statSync(top);
  // The directories from the top down to the one being read: a link back to one of them is a loop.
  const ancestors = new Set<string>([`${topStats.dev}:${topStats.ino}`]);
  const visit = (path: string, rel: string, depth: number): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch (error) {
      tree.unreadable.push({ rel, error: error as NodeJS.ErrnoException });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const childPath = join(path, entry.name);
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      let readPath = childPath;
      let stats: Stats;
      try {
        stats = lstatSync(childPath);
      } catch {
        continue; // gone since it was listed
      }
      if (stats.isSymbolicLink()) {
        if (!options.followLinks) {
          tree.skipped.push({
            rel: childRel,
            why: 'a symbolic link, not followed (--follow-links follows links that stay inside the tree)',
          });
          continue;
        }
        const target = linkTarget(childPath, realTop);
        if (target === undefined) {
          tree.skipped.push({
            rel: childRel,
            why: 'a symbolic link leading out of the tree (or nowhere); not followed',
          });
          continue;
        }
        stats = target.stats;
        readPath = target.real; // read what was checked, not whatever the link says later
      }
      if (stats.isFile()) {
        tree.files.push({
          rel: childRel,
          path: readPath,
          size: stats.size,
          mtimeMs: stats.mtimeMs,
          mode: stats.mode & MODE_MASK,
        });
      } else if (stats.isDirectory()) {
        const key = `${stats.dev}:${stats.ino}`;
        if (ancestors.has(key)) {
          tree.skipped.push({
            rel: childRel,
            why: 'a link back to a directory that contains it (a loop); not followed',
          });
          continue;
        }
        if (depth + 1 >= MAX_WALK_DEPTH) {
          tree.skipped.push({ rel: childRel, why: `more than ${MAX_WALK_DEPTH} directory levels deep` });
          continue;
        }
        tree.dirs.push({ rel: childRel, mtimeMs: stats.mtimeMs, mode: stats.mode & MODE_MASK });
        ancestors.add(key);
        visit(readPath, childRel, depth + 1);
        ancestors.delete(key);
      } else {
        tree.skipped.push({
          rel: childRel,
          why: `a ${describeFileType(stats)}; only regular files are sent`,
        });
      }
    }
  };
  visit(top, '', 0);
  return tree;
}

/** What a link leads to (its real path), if that is inside the tree `realTop`; undefined otherwise. */
function linkTarget(path: string, realTop: string): { real: string; stats: Stats } | undefined {
  try {
    const real = realpathSync(path);
    const inside = relative(realTop, real);
    if (inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) return undefined;
    return { real, stats: statSync(real) };
  } catch {
    return undefined;
  }
}
