import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * ferry's state directory: `$XDG_STATE_HOME/ferry` (default `~/.local/state/ferry`), for what the
 * client remembers between runs (the shell's history, where interrupted trees went). The XDG spec
 * says to ignore a relative XDG_STATE_HOME.
 */
export function stateDir(env: NodeJS.ProcessEnv): string {
  const state = env.XDG_STATE_HOME;
  const base =
    state !== undefined && state !== '' && isAbsolute(state)
      ? state
      : join(env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir(), '.local', 'state');
  return join(base, 'ferry');
}
