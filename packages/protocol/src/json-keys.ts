/**
 * Duplicate member names in JSON text. JSON.parse keeps the last of duplicate names, so
 * `{"op":"stat",…,"op":"delete"}` would be read as a delete: control messages with duplicates are
 * invalid (PROTOCOL.md §14), and this finds them. One pass over text JSON.parse has accepted (so it
 * is well-formed), linear in its length; names are compared decoded (`"op"` and `"\u006fp"` are the
 * same name). An object's names are kept in an array reused per depth (a control message's objects
 * have a few members), and in a set once an object has more than SMALL_OBJECT.
 */
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const SMALL_OBJECT = 16;

interface Frame {
  /** null: an array. */
  names: string[] | null;
  large: Set<string> | undefined;
  expectName: boolean;
}

/** The first member name that occurs twice in one object of `text` (valid JSON), if any. */
export function firstDuplicateName(text: string): string | undefined {
  const stack: Frame[] = [];
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i + 1;
      // The string ends at the first quote not escaped by a backslash.
      let end = start;
      let escaped = false;
      for (;;) {
        const d = text.charCodeAt(end);
        if (d === QUOTE) break;
        if (d === BACKSLASH) {
          escaped = true;
          end += 2;
        } else {
          end++;
        }
      }
      i = end;
      const frame = depth > 0 ? stack[depth - 1]! : undefined;
      if (frame?.expectName) {
        frame.expectName = false;
        const raw = text.slice(start, end);
        const name = escaped ? (JSON.parse(`"${raw}"`) as string) : raw;
        const names = frame.names!;
        if (frame.large !== undefined) {
          if (frame.large.has(name)) return name;
          frame.large.add(name);
        } else {
          if (names.includes(name)) return name;
          names.push(name);
          if (names.length > SMALL_OBJECT) frame.large = new Set(names);
        }
      }
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      let frame = stack[depth];
      if (frame === undefined) {
        frame = { names: [], large: undefined, expectName: false };
        stack.push(frame);
      }
      depth++;
      frame.large = undefined;
      if (c === OPEN_OBJECT) {
        frame.names = frame.names ?? [];
        frame.names.length = 0;
        frame.expectName = true;
      } else {
        frame.names = null;
        frame.expectName = false;
      }
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    } else if (c === COMMA) {
      const frame = stack[depth - 1];
      if (frame !== undefined && frame.names !== null) frame.expectName = true;
    }
  }
  return undefined;
}
