/**
 * What user-supplied text may contain. Everything a user types ends up on somebody else's
 * terminal, so control codes are neutralised once, when the hub accepts the text, and every
 * wire format and every client can then print it as it is.
 */

/**
 * C0 controls except TAB, DEL, C1 controls, and the bidi overrides that reorder what a
 * terminal shows ("Trojan Source"), as the ranges of a regular expression's character class.
 */
export const UNSAFE_RANGES = String.raw`\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069`;
const UNSAFE = new RegExp(`[${UNSAFE_RANGES}]`, 'g');
// The same characters, for the common case of text with none of them: matching the whole
// string against what may pass is twice as fast in V8 as searching it with UNSAFE.
const SAFE = new RegExp(`^[^${UNSAFE_RANGES}]*$`);

function visible(ch: string): string {
  const c = ch.charCodeAt(0);
  if (c < 0x20) return String.fromCharCode(0x2400 + c); // U+2400 "control pictures": ␀ ␛ ...
  if (c === 0x7f) return '\u2421'; // ␡
  return '\ufffd';
}

/** Replaces control characters with visible stand-ins; keeps the rest exactly as sent. */
export function sanitize(text: string): string {
  return SAFE.test(text) ? text : text.replace(UNSAFE, visible);
}

/** Decodes UTF-8; invalid sequences become U+FFFD rather than raw bytes on someone's screen. */
const utf8 = new TextDecoder('utf-8', { fatal: false });
export function decodeUtf8(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

export const NICK_MAX = 24;
export const ROOM_MAX = 32;
export const TOPIC_MAX = 300;

const NICK_RE = /^[\p{L}_][\p{L}\p{N}_-]{0,23}$/u;
const ROOM_RE = /^[\p{L}\p{N}_][\p{L}\p{N}_.-]{0,31}$/u;

export function isValidNick(nick: string): boolean {
  return NICK_RE.test(nick);
}

/** Room names are case-insensitive; "#" is accepted as IRC users type it, and dropped. */
export function normalizeRoom(name: string): string | null {
  const bare = (name.startsWith('#') ? name.slice(1) : name).normalize('NFC').toLowerCase();
  return ROOM_RE.test(bare) ? bare : null;
}

/** The key under which a nick is unique: case-insensitive, and one Unicode form. */
export function nickKey(nick: string): string {
  return nick.normalize('NFC').toLowerCase();
}
