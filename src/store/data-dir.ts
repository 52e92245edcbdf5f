/**
 * Where the server keeps its state by default. History is state in the XDG sense (it should
 * survive a restart, it is not configuration and not a cache), so it goes under
 * $XDG_STATE_HOME, else ~/.local/state, as the XDG Base Directory specification says.
 */
import path from 'node:path';

/**
 * `$XDG_STATE_HOME/roomcast`, else `<home>/.local/state/roomcast`. The specification says a
 * relative $XDG_STATE_HOME is invalid and to be ignored, and so is an empty one.
 */
export function defaultDataDir(env: Readonly<Record<string, string | undefined>>, homedir: string): string {
  const state = env.XDG_STATE_HOME;
  const base = state && path.isAbsolute(state) ? state : path.join(homedir, '.local', 'state');
  return path.join(base, 'roomcast');
}
