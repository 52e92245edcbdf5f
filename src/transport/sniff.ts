/**
 * Telling TLS, HTTP and chat apart on a shared port by the first bytes a client sends.
 *
 * TLS starts with a handshake record: type 22, then version major 3. No chat line starts with
 * byte 22 (a control character), so the one port serves both.
 *
 * Only a complete HTTP/1.x request line counts: "GET /path HTTP/1.1" and a line end. A person
 * typing "GET me a coffee" into netcat has no "HTTP/1.x" at the end and stays in the chat, and
 * a chat client that sends nothing is never waited on longer than the greeting delay.
 */
export type FirstBytes = 'tls' | 'http' | 'chat' | 'undecided';

const TLS_HANDSHAKE = 0x16;
const TLS_MAJOR = 0x03;

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'];
const REQUEST_LINE = /^(?:GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH) \S+ HTTP\/1\.[01]\r?\n/;
const VERSIONS = ['HTTP/1.0\r', 'HTTP/1.1\r'];

/** Longer than any request line worth waiting for (Node's own header limit is 16 KiB). */
export const MAX_REQUEST_LINE = 8192;

/** A whole line (without its end) that is an HTTP/1.x request line. */
export function isRequestLine(line: string): boolean {
  return REQUEST_LINE.test(line + '\n');
}

export function classifyFirstBytes(head: Buffer): FirstBytes {
  if (head[0] === TLS_HANDSHAKE) return head.length < 2 ? 'undecided' : head[1] === TLS_MAJOR ? 'tls' : 'chat';
  const nl = head.indexOf(0x0a);
  if (nl !== -1) return REQUEST_LINE.test(head.toString('latin1', 0, nl + 1)) ? 'http' : 'chat';
  if (head.length > MAX_REQUEST_LINE) return 'chat';
  return couldBeRequestLine(head.toString('latin1')) ? 'undecided' : 'chat';
}

/** Whether a line without its end yet can still become a request line. */
function couldBeRequestLine(s: string): boolean {
  const sp = s.indexOf(' ');
  if (sp === -1) return METHODS.some((m) => m.startsWith(s));
  if (!METHODS.includes(s.slice(0, sp))) return false;
  const rest = s.slice(sp + 1);
  const sp2 = rest.indexOf(' ');
  if (sp2 === -1) return !/\s/.test(rest);
  if (sp2 === 0 || /\s/.test(rest.slice(0, sp2))) return false;
  const version = rest.slice(sp2 + 1);
  return VERSIONS.some((v) => v.startsWith(version));
}
