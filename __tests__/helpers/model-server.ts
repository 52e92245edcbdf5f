/**
 * A local stand-in for the model host, on 127.0.0.1 and a free port, serving the shared model
 * kit: /files/NAME whole, /cut/NAME dropping the connection halfway through the body.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { KIT } from './classifier.js';

export interface ModelServer {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

export async function startModelServer(): Promise<ModelServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const [, mode, name] = (req.url ?? '').split('/');
    const file = path.join(KIT, path.basename(name ?? ''));
    if (mode !== 'files' && mode !== 'cut') {
      res.writeHead(404).end('not found');
      return;
    }
    stat(file).then(
      (s) => {
        if (!s.isFile()) {
          res.writeHead(404).end('not found');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(s.size) });
        if (mode === 'files') {
          createReadStream(file).pipe(res);
        } else {
          const half = Math.floor(s.size / 2);
          createReadStream(file, { start: 0, end: half - 1 }).on('data', (c) => res.write(c)).on('end', () => {
            // Let the bytes leave, then drop the connection mid-body.
            setTimeout(() => req.socket.destroy(), 50);
          });
        }
      },
      () => res.writeHead(404).end('not found'),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Jest hooks for a test file that downloads: one model server for the file, and a fresh empty
 * directory for each test, handed over through `use` before every test.
 */
export function useModelServer(dirPrefix: string, use: (server: ModelServer, dir: string) => void): void {
  let server: ModelServer;
  let dir: string;
  beforeAll(async () => {
    server = await startModelServer();
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), dirPrefix));
    use(server, dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
}
