/**
 * The web page's files, from one directory and nothing outside it.
 *
 * Every path segment is decoded first and a ".." (however it was written: "..", "%2e%2e",
 * "%2E."), a backslash or a NUL is refused outright rather than resolved; then the resolved
 * path, and the real path behind any symlink, must still be inside the directory. Dotfiles are
 * not served.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { httpError } from './errors.js';
import { decodeSegment } from './router.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

export class StaticFiles {
  private readonly root: string;
  private realRoot: Promise<string> | null = null;

  constructor(dir: string) {
    this.root = path.resolve(dir);
  }

  /** The file under the root that a raw (percent-encoded) URL path names; throws if none may be. */
  resolve(rawPath: string): string {
    const segments = rawPath.split('/').slice(1).map(decodeSegment);
    for (const s of segments) {
      if (s === '..' || s.includes('\\') || s.includes('\0') || s.includes('/'))
        throw httpError('BAD_PATH', 'it leaves the web directory');
      if (s.startsWith('.')) throw httpError('NOT_FOUND', rawPath.slice(0, 200));
    }
    const rel = segments.join('/');
    const file = path.resolve(this.root, rel === '' || rel.endsWith('/') ? rel + 'index.html' : rel);
    if (file !== this.root && !file.startsWith(this.root + path.sep)) throw httpError('BAD_PATH', 'it leaves the web directory');
    return file;
  }

  async serve(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<void> {
    let file = this.resolve(rawPath);
    const notFound = httpError('NOT_FOUND', rawPath.slice(0, 200));
    let real: string;
    let info;
    try {
      real = await realpath(file);
      info = await stat(real);
      if (info.isDirectory()) {
        file = path.join(file, 'index.html');
        real = await realpath(file);
        info = await stat(real);
      }
    } catch {
      throw notFound;
    }
    const root = await (this.realRoot ??= realpath(this.root).catch(() => this.root));
    if (!info.isFile() || (real !== root && !real.startsWith(root + path.sep))) throw notFound;

    const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    const headers = {
      'Content-Type': TYPES[path.extname(real).toLowerCase()] ?? 'application/octet-stream',
      'Cache-Control': 'no-cache',
      ETag: etag,
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': String(info.size) });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await new Promise<void>((resolve) => {
      const stream = createReadStream(real);
      stream.on('error', () => {
        res.destroy();
        resolve();
      });
      stream.on('end', resolve);
      stream.pipe(res);
    });
  }
}
