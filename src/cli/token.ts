/**
 * `roomcast token create|revoke|list`: the API tokens of the server whose data directory this
 * is. The server reads the file again by itself when it changes (auth/api-tokens.ts).
 */
import { homedir } from 'node:os';
import { defaultDataDir } from '../store/data-dir.js';
import { normalizeRoom } from '../protocol/text.js';
import { TokenError, tokenFile } from '../auth/api-tokens.js';

export interface TokenFlags {
  dataDir?: string;
  room?: string;
  json?: boolean;
}

const fileOf = (flags: TokenFlags): string => tokenFile.path(flags.dataDir ?? defaultDataDir(process.env, homedir()));

async function run(action: () => Promise<void>): Promise<number> {
  try {
    await action();
    return 0;
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    console.error(`roomcast: ${err.message}`);
    return 1;
  }
}

export function runTokenCreate(name: string, flags: TokenFlags): Promise<number> {
  return run(async () => {
    let room: string | undefined;
    if (flags.room !== undefined) {
      room = normalizeRoom(flags.room) ?? undefined;
      if (room === undefined) throw new TokenError(`"${flags.room}" is not a room name: use 1-32 letters, digits, "_", "-" or "."`);
    }
    const file = fileOf(flags);
    const token = await tokenFile.create(file, name, room);
    // The token alone on stdout, for scripts; what it is for on stderr, for people.
    console.log(token);
    console.error(`roomcast: token "${name}"${room ? ` for room ${room}` : ''} kept (hashed) in ${file}; it is shown only now. Send it as: Authorization: Bearer TOKEN`);
  });
}

export function runTokenRevoke(name: string, flags: TokenFlags): Promise<number> {
  return run(async () => {
    await tokenFile.revoke(fileOf(flags), name);
    console.error(`roomcast: token "${name}" revoked; a running server stops taking it within a second`);
  });
}

export function runTokenList(flags: TokenFlags): Promise<number> {
  return run(async () => {
    const tokens = await tokenFile.list(fileOf(flags));
    if (flags.json) {
      console.log(JSON.stringify(tokens.map(({ sha256: _hash, ...rest }) => rest)));
      return;
    }
    if (tokens.length === 0) console.log('No API tokens. Make one with: roomcast token create NAME [--room ROOM]');
    for (const t of tokens) console.log(`${t.name}\t${t.room ?? 'every room'}\tcreated ${t.created}${t.revoked ? `\trevoked ${t.revoked}` : ''}`);
  });
}
