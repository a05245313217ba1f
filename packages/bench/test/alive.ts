import { readFileSync } from 'node:fs';

/**
 * Whether a process with this pid runs. A zombie (exited, not yet reaped by its parent, e.g. an
 * orphan on a machine whose init reaps late) counts as gone.
 */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
