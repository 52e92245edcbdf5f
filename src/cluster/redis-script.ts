/**
 * Running a Lua script in Redis: by its SHA1, sending its text only when Redis does not have it
 * (the first time, and after Redis restarted or flushed its scripts). Only commands reach Redis
 * through `CommandSender`, so any client (node-redis, a test's) will do.
 */
import { createHash } from 'node:crypto';

export interface CommandSender {
  sendCommand(args: string[]): Promise<unknown>;
}

const shas = new Map<string, string>();

export async function runScript(redis: CommandSender, script: string, keys: string[], args: string[]): Promise<unknown> {
  let sha = shas.get(script);
  if (sha === undefined) shas.set(script, (sha = createHash('sha1').update(script).digest('hex')));
  const tail = [String(keys.length), ...keys, ...args];
  try {
    return await redis.sendCommand(['EVALSHA', sha, ...tail]);
  } catch (err) {
    if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
    return redis.sendCommand(['EVAL', script, ...tail]);
  }
}
