/**
 * Name patterns, as sftp has them: `*` (any run of characters), `?` (one character) and `[…]` (one
 * of a set; `[!…]` or `[^…]` none of it) match within one path component, never a `/`, and a leading
 * `.` only when the pattern spells it. A backslash makes the next character literal (`\*` is a star).
 * Quotes only group words: `get 'holiday/*.jpg'` is a pattern, as in sftp.
 *
 * Local patterns (put) are matched against the local file system; remote ones (get, rm) against the
 * server's listings, by this client: the server needs no pattern support, so they work with any
 * ferry-server.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '@ferry/protocol';

const META = new Set(['*', '?', '[']);

/** Whether `word` holds an unescaped `*`, `?` or `[`. */
export function hasGlob(word: string): boolean {
  for (let i = 0; i < word.length; i++) {
    const ch = word[i]!;
    if (ch === '\\') i++;
    else if (META.has(ch)) return true;
  }
  return false;
}

/** `word` with its escapes removed (`\*` -> `*`): the literal name a pattern without magic means. */
export function unescapeGlob(word: string): string {
  return word.replace(/\\([*?[\]])/g, '$1');
}

/** A RegExp for one path component of a pattern. */
export function componentRegExp(component: string): RegExp {
  let source = '';
  for (let i = 0; i < component.length; i++) {
    const ch = component[i]!;
    if (ch === '\\' && i + 1 < component.length) {
      source += escapeRegExp(component[++i]!);
    } else if (ch === '*') {
      source += '[^/]*';
    } else if (ch === '?') {
      source += '[^/]';
    } else if (ch === '[') {
      const close = component.indexOf(']', i + 2);
      if (close < 0) {
        source += '\\[';
        continue;
      }
      let set = component.slice(i + 1, close);
      const negate = set.startsWith('!') || set.startsWith('^');
      if (negate) set = set.slice(1);
      source += `[${negate ? '^' : ''}${set.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else {
      source += escapeRegExp(ch);
    }
  }
  // A leading dot is matched only by a pattern that starts with one (hidden files stay hidden).
  const hidden = component.startsWith('.') ? '' : '(?!\\.)';
  return new RegExp(`^${hidden}${source}$`, 'u');
}

function escapeRegExp(ch: string): string {
  return ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** A named thing a pattern matched, and whether it is a directory. */
export interface Match {
  path: string;
  dir: boolean;
}

/**
 * Expands `pattern` with `list(dir)` (the names in a directory, '' for the top, and whether each is a
 * directory), component by component, in sorted order. A pattern without magic is returned as it is
 * (unescaped), whether or not it exists: the command itself says if it does not.
 */
export async function expand(
  pattern: string,
  list: (dir: string) => Promise<Array<{ name: string; dir: boolean }>>,
  join: (dir: string, name: string) => string,
): Promise<Match[] | undefined> {
  if (!hasGlob(pattern)) return undefined;
  const absolute = pattern.startsWith('/');
  const components = pattern.split('/').filter((c) => c !== '');
  let found: Match[] = [{ path: absolute ? '/' : '', dir: true }];
  for (const component of components) {
    const next: Match[] = [];
    for (const parent of found) {
      if (!parent.dir) continue;
      const names = await list(parent.path).catch(() => []);
      if (!hasGlob(component)) {
        // A literal component (`logs/*/today.gz`): kept where it exists.
        const name = unescapeGlob(component);
        const entry = names.find((e) => e.name === name);
        if (entry !== undefined) next.push({ path: join(parent.path, name), dir: entry.dir });
        continue;
      }
      const re = componentRegExp(component);
      for (const entry of names.filter((e) => re.test(e.name)).sort(byName)) {
        next.push({ path: join(parent.path, entry.name), dir: entry.dir });
      }
    }
    found = next;
    if (found.length === 0) break;
  }
  return found;
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Expands a local pattern against the file system; a pattern without magic is itself. */
export async function expandLocal(pattern: string): Promise<string[]> {
  const matches = await expand(
    pattern,
    async (dir) =>
      (await readdir(dir === '' ? '.' : dir, { withFileTypes: true })).map((e) => ({
        name: e.name,
        dir: e.isDirectory(),
      })),
    (dir, name) => (dir === '' ? name : join(dir, name)),
  );
  if (matches === undefined) return [unescapeGlob(pattern)];
  if (matches.length === 0) throw new FerryError('ENOENT', `no local file matches ${pattern}`);
  return matches.map((m) => m.path);
}
