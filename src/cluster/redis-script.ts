/**
 * Running a Lua script in Redis. Most scripts go by their SHA1 (EVALSHA), sent whole (EVAL)
 * only when Redis does not have them (the first time, and after a restart or SCRIPT FLUSH).
 *
 * An `ordered` script is always sent whole. Its calls must run in the order they were made (a
 * room's publishes: the order is the numbering), and a call that fails with NOSCRIPT and is
 * sent again runs after calls made later that found the script loaded by then. EVAL costs
 * Redis a hash of the script's text per call, and never reorders.
 *
 * Only commands reach Redis through `CommandSender`, so any client (node-redis, a test's) will do.
 */
import { createHash } from 'node:crypto';

export interface CommandSender {
  sendCommand(args: string[]): Promise<unknown>;
}

const shas = new Map<string, string>();

export async function runScript(redis: CommandSender, script: string, keys: string[], args: string[], ordered = false): Promise<unknown> {
  const tail = [String(keys.length), ...keys, ...args];
  if (ordered) return redis.sendCommand(['EVAL', script, ...tail]);
  let sha = shas.get(script);
  if (sha === undefined) shas.set(script, (sha = createHash('sha1').update(script).digest('hex')));
  try {
    return await redis.sendCommand(['EVALSHA', sha, ...tail]);
  } catch (err) {
    if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
    return redis.sendCommand(['EVAL', script, ...tail]);
  }
}

/**
 * Options over their defaults, where an option given as undefined keeps its default (a plain
 * spread would put undefined in its place: a timer of undefined ms fires every millisecond).
 */
export function withDefaults<D extends object, O extends object>(defaults: D, opts: O): D & O {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) out[k] = v;
  return out as D & O;
}
