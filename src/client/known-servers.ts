/**
 * The known-servers file: the fingerprint of the certificate each TLS server presented when it
 * was first trusted, as ssh's known_hosts keeps host keys. One line a server,
 * `HOST:PORT SHA256:FP`; lines starting with # are comments. Configuration rather than state
 * (a person edits it: removing a line forgets a server), so it lives under $XDG_CONFIG_HOME.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hostPort } from '../net/address.js';
import { normalizeFingerprint } from '../tls/fingerprint.js';

/**
 * `$XDG_CONFIG_HOME/roomcast/known_servers`, else `<home>/.config/roomcast/known_servers`. A
 * relative or empty $XDG_CONFIG_HOME is ignored, as the XDG specification says.
 */
export function knownServersFile(env: Readonly<Record<string, string | undefined>> = process.env, homedir = os.homedir()): string {
  const config = env.XDG_CONFIG_HOME;
  const base = config && path.isAbsolute(config) ? config : path.join(homedir, '.config');
  return path.join(base, 'roomcast', 'known_servers');
}

/** How a server is written in the file: `host:port`, IPv6 in brackets, names in lower case
 *  (DNS does not care about case, and Chat.Lan must not look like another server). */
export function serverKey(host: string, port: number): string {
  return hostPort(host.toLowerCase(), port);
}

const HEADER =
  '# roomcast known servers: the SHA-256 fingerprint of the TLS certificate each server presented\n' +
  '# when it was first trusted. Remove a line to forget a server (its next certificate is asked about).\n';

/** The file's entries (the last line for a server wins); a missing file has none. */
function parse(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [key, fp, ...rest] = line.trim().split(/\s+/);
    if (!key || key.startsWith('#') || fp === undefined || rest.length > 0) continue;
    const fingerprint = normalizeFingerprint(fp);
    if (fingerprint !== null) entries.set(key, fingerprint);
  }
  return entries;
}

export class KnownServers {
  /**
   * Trusted in this process, whether or not the file could be written: a reconnect finds the
   * server known even on a read-only home directory. It comes before the file: it is newer.
   */
  private readonly session = new Map<string, string>();

  constructor(readonly file: string = knownServersFile()) {}

  /** The fingerprint remembered for a server (a serverKey). Throws when the file exists but cannot be read. */
  async get(server: string): Promise<string | undefined> {
    return this.session.get(server) ?? parse(await this.read()).get(server);
  }

  /**
   * Remembers a server's fingerprint, in place of any other line for it. The file is written
   * whole and renamed into place, so a reader never sees half of it. Throws when it cannot be
   * written; the server is remembered for this process all the same.
   */
  async remember(server: string, fingerprint: string): Promise<void> {
    this.session.set(server, fingerprint);
    const old = await this.read();
    const kept = old.split('\n').filter((line) => line.trim() !== '' && line.trim().split(/\s+/)[0] !== server);
    const text = (old === '' ? HEADER : '') + [...kept, `${server} ${fingerprint}`].join('\n') + '\n';
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, this.file);
  }

  private async read(): Promise<string> {
    try {
      return await readFile(this.file, 'utf8');
    } catch (err) {
      // No file, or no directory for it (a path through a file): nothing known yet.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return '';
      throw err;
    }
  }
}
