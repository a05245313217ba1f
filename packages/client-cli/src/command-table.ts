/**
 * The one table of remote commands, shared by the one-shot subcommands (`ferry get HOST …`) and the
 * interactive shell (`get …`). Kept free of imports so that --help stays instant.
 */
export type CommandName = 'get' | 'put' | 'list' | 'rename' | 'delete' | 'stat' | 'mkdir' | 'rmdir';
export type CommandFlag =
  | 'force'
  | 'resume'
  | 'dir'
  | 'recursive'
  | 'preserve'
  | 'followLinks'
  | 'listRecursive'
  | 'parents';
/** What a positional argument names, for tab completion. */
export type ArgKind = 'remote' | 'local';

export interface CommandSpec {
  name: CommandName;
  aliases: readonly string[];
  /** Positional arguments after the host, in cac's syntax. */
  args: string;
  /** The shell's synopsis. */
  synopsis: string;
  /** The one-shot synopsis, after `ferry` (several forms separated by " | "). */
  usage: string;
  summary: string;
  flags: readonly CommandFlag[];
  /** Kind of each positional argument; the last one repeats. */
  completes: readonly ArgKind[];
}

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'get',
    aliases: [],
    args: '<...files>',
    synopsis: 'get NAME [LOCAL]',
    usage:
      'get HOST[:PORT] REMOTE [LOCAL]  |  get HOST[:PORT] A B C -d LOCALDIR  |  get -r HOST[:PORT] REMOTEDIR [LOCALDIR]',
    summary:
      "download NAME (as LOCAL; default: the same name here); several with -d DIR or a pattern ('logs/*.gz'); a directory with -r",
    flags: ['force', 'resume', 'dir', 'recursive', 'preserve'],
    completes: ['remote', 'local'],
  },
  {
    name: 'put',
    aliases: [],
    args: '<...files>',
    synopsis: 'put FILE [REMOTE]',
    usage:
      'put HOST[:PORT] LOCAL [REMOTE]  |  put HOST[:PORT] A B C -d REMOTEDIR  |  put -r HOST[:PORT] LOCALDIR [REMOTEDIR]',
    summary:
      'upload FILE (as REMOTE, or into it if a directory; default: the same name); several with -d DIR or a pattern; a directory with -r',
    flags: ['force', 'resume', 'dir', 'recursive', 'preserve', 'followLinks'],
    completes: ['local', 'remote'],
  },
  {
    name: 'rename',
    aliases: ['mv'],
    args: '<old> <new>',
    synopsis: 'rename OLD NEW',
    usage: 'rename HOST[:PORT] OLD NEW',
    summary: 'rename a file on the server (never replaces NEW without --force)',
    flags: ['force'],
    completes: ['remote', 'remote'],
  },
  {
    name: 'list',
    aliases: ['ls'],
    args: '[dir]',
    synopsis: 'list [DIR]',
    usage: 'list HOST[:PORT] [DIR]  |  list -R HOST[:PORT] [DIR]',
    summary: "list the server's files (name, size, time); the whole tree below DIR with -R",
    flags: ['listRecursive'],
    completes: ['remote'],
  },
  {
    name: 'delete',
    aliases: ['rm'],
    args: '<...names>',
    synopsis: 'delete NAME',
    usage: 'delete HOST[:PORT] NAME...',
    summary: "delete a file on the server (NAME may be a pattern: 'tmp/*')",
    flags: [],
    completes: ['remote'],
  },
  {
    name: 'mkdir',
    aliases: [],
    args: '<...dirs>',
    synopsis: 'mkdir DIR',
    usage: 'mkdir HOST[:PORT] DIR...',
    summary: 'make a directory on the server (-p: with its parents, and no error if it exists)',
    flags: ['parents'],
    completes: ['remote'],
  },
  {
    name: 'rmdir',
    aliases: [],
    args: '<...dirs>',
    synopsis: 'rmdir DIR',
    usage: 'rmdir HOST[:PORT] DIR...',
    summary: 'remove an empty directory on the server',
    flags: [],
    completes: ['remote'],
  },
  {
    name: 'stat',
    aliases: [],
    args: '<...names>',
    synopsis: 'stat NAME',
    usage: 'stat HOST[:PORT] NAME...',
    summary: 'size and modification time of a file on the server',
    flags: [],
    completes: ['remote'],
  },
];

export const FLAG_OPTIONS: Record<CommandFlag, { raw: string; description: string }> = {
  force: { raw: '-f, --force', description: 'Overwrite an existing file' },
  resume: { raw: '--resume', description: 'Continue an interrupted transfer from what was already received' },
  dir: { raw: '-d, --dir <dir>', description: 'Directory: local for get, remote for put (several files)' },
  recursive: { raw: '-r, --recursive', description: 'A whole directory, with everything inside it' },
  preserve: {
    raw: '-p, --preserve',
    description: 'Keep permission bits too (modification times are always kept)',
  },
  followLinks: {
    raw: '-L, --follow-links',
    description: 'Follow symbolic links that stay inside the directory (others are skipped)',
  },
  listRecursive: { raw: '-R, --recursive', description: 'Everything below DIR, directory by directory' },
  parents: { raw: '-p, --parents', description: 'Make missing parents too; no error if it exists' },
};

/** The command a word names, in any case (`LIST` is list); undefined for anything else. */
export function findCommand(word: string): CommandSpec | undefined {
  const name = word.toLowerCase();
  return COMMANDS.find((c) => c.name === name || c.aliases.includes(name));
}
