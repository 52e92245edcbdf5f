/**
 * API tokens for programs that use the HTTP API: `roomcast token create NAME [--room R]` makes
 * one, prints it once, and keeps only its SHA-256 in a file of the data directory
 * (`api-tokens.json`). The file, not the history store, because the CLI writes it while the
 * server runs (the store is locked by the server); the server reads it again whenever it
 * changes, so a token made or revoked takes effect within a second, with no restart.
 *
 * A token is 32 random bytes: its SHA-256 is a safe thing to keep (nobody can guess back to a
 * random secret), and it is compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { watchFile, unwatchFile } from 'node:fs';
import { readFile, rename, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

export const TOKENS_FILE = 'api-tokens.json';
const PREFIX = 'rct_';

export interface TokenRecord {
  name: string;
  /** hex SHA-256 of the token. */
  sha256: string;
  /** The one room the token may use; absent: every room. */
  room?: string;
  created: string;
  revoked?: string;
}

/** A token that was shown: who it is, and what it may do. */
export interface TokenGrant {
  name: string;
  room?: string;
}

export class TokenError extends Error {}

const hash = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

async function readRecords(file: string): Promise<TokenRecord[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new TokenError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as { tokens?: TokenRecord[] };
    return Array.isArray(v.tokens) ? v.tokens : [];
  } catch {
    throw new TokenError(`${file} is not a token file roomcast wrote (it is not JSON): move it away, and make the tokens again`);
  }
}

/** The file written whole and renamed over the old one, so the server never reads half of it. */
async function writeRecords(file: string, tokens: TokenRecord[]): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify({ tokens }, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

/** What the CLI does: make, revoke and list tokens in a data directory's file. */
export const tokenFile = {
  path: (dataDir: string): string => path.join(dataDir, TOKENS_FILE),

  /** Makes a token; returns it (the only time it is seen). */
  async create(file: string, name: string, room?: string, now = new Date()): Promise<string> {
    if (!/^[\w.-]{1,64}$/.test(name)) throw new TokenError(`"${name}" is not a token name: use 1-64 letters, digits, "_", "-" or "."`);
    const tokens = await readRecords(file);
    if (tokens.some((t) => t.name === name && !t.revoked)) throw new TokenError(`there is a token called "${name}" already: revoke it first (roomcast token revoke ${name}) or pick another name`);
    const token = PREFIX + randomBytes(32).toString('base64url');
    tokens.push({ name, sha256: hash(token).toString('hex'), ...(room ? { room } : {}), created: now.toISOString() });
    await writeRecords(file, tokens);
    return token;
  },

  async revoke(file: string, name: string, now = new Date()): Promise<void> {
    const tokens = await readRecords(file);
    const live = tokens.filter((t) => t.name === name && !t.revoked);
    if (live.length === 0) throw new TokenError(`there is no token called "${name}" (roomcast token list shows them)`);
    for (const t of live) t.revoked = now.toISOString();
    await writeRecords(file, tokens);
  },

  list: readRecords,
};

/** The server's view of the file: the live tokens, read again whenever the file changes. */
export class ApiTokens {
  private live: { sha256: Buffer; grant: TokenGrant }[] = [];
  private watching = false;

  constructor(
    readonly file: string,
    private readonly failed: (err: Error) => void = () => {},
  ) {}

  /** Reads the file now, and again whenever it changes (checked every second). */
  async start(): Promise<void> {
    await this.reload();
    if (this.watching) return;
    this.watching = true;
    watchFile(this.file, { interval: 1000, persistent: false }, () => void this.reload());
  }

  stop(): void {
    if (this.watching) unwatchFile(this.file);
    this.watching = false;
  }

  private async reload(): Promise<void> {
    try {
      const records = await readRecords(this.file);
      this.live = records
        .filter((t) => !t.revoked && /^[0-9a-f]{64}$/.test(t.sha256))
        .map((t) => ({ sha256: Buffer.from(t.sha256, 'hex'), grant: { name: t.name, ...(t.room ? { room: t.room } : {}) } }));
    } catch (err) {
      // The last good list stays: a file caught half-edited by hand must not lock everyone out.
      this.failed(err as Error);
    }
  }

  /** Who a token is, or null for none that is live (unknown or revoked). */
  check(token: string): TokenGrant | null {
    const h = hash(token);
    let found: TokenGrant | null = null;
    // Every live token is compared, so the time taken does not say how far a guess got.
    for (const t of this.live) if (timingSafeEqual(t.sha256, h)) found = t.grant;
    return found;
  }
}
