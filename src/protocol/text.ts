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

/**
 * Scripts a nick may use, told apart with the engine's own Unicode data (\p{Script=...}).
 * A letter of any other script counts as a script of its own.
 */
const SCRIPTS = ['Latin', 'Cyrillic', 'Greek', 'Armenian', 'Georgian', 'Hebrew', 'Arabic', 'Devanagari', 'Bengali', 'Tamil', 'Thai', 'Han', 'Hiragana', 'Katakana', 'Bopomofo', 'Hangul'].map(
  (name) => [name, new RegExp(`\\p{Script=${name}}`, 'u')] as const,
);
/** Scripts written together (UTS #39's "highly restrictive" level): Japanese, Chinese with Bopomofo, Korean, each with Latin. */
const WRITTEN_TOGETHER = [new Set(['Latin', 'Han', 'Hiragana', 'Katakana']), new Set(['Latin', 'Han', 'Bopomofo']), new Set(['Latin', 'Han', 'Hangul'])];

/** The scripts of a nick's letters (digits, "_" and "-" belong to none). */
export function scriptsOf(nick: string): string[] {
  const found = new Set<string>();
  for (const ch of nick) {
    if (!/\p{L}/u.test(ch)) continue;
    found.add(SCRIPTS.find(([, re]) => re.test(ch))?.[0] ?? `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`);
  }
  return [...found];
}

/**
 * The confusables policy for nicks (docs/security.md): a nick's letters come from one script,
 * or from scripts written together. "аlice" with a Cyrillic а mixes Cyrillic and Latin, the
 * classic way to pass for someone else, and is refused; an all-Cyrillic or all-Greek nick is
 * fine. Returns the scripts mixed, or null when the nick is fine.
 */
export function mixedScripts(nick: string): string[] | null {
  const scripts = scriptsOf(nick);
  if (scripts.length <= 1 || WRITTEN_TOGETHER.some((set) => scripts.every((s) => set.has(s)))) return null;
  return scripts;
}

/** Room names are case-insensitive; "#" is accepted as IRC users type it, and dropped. */
export function normalizeRoom(name: string): string | null {
  const bare = (name.startsWith('#') ? name.slice(1) : name).normalize('NFC').toLowerCase();
  return ROOM_RE.test(bare) ? bare : null;
}

/**
 * The key under which a nick is unique: case-insensitive, and in compatibility form (NFKC), so
 * that look-alike spellings of one name (full-width "ａｌｉｃｅ", the ligature in "ﬁona",
 * a superscript digit) are the same nick.
 */
export function nickKey(nick: string): string {
  return nick.normalize('NFKC').toLowerCase();
}
