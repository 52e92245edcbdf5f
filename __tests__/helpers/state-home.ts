/**
 * Every test file gets a state directory of its own: a `roomcast serve` it starts keeps its
 * history under $XDG_STATE_HOME by default, and two servers on one directory would find it
 * locked (or a test would read another's history). A config directory of its own too: a TLS
 * client remembers servers in $XDG_CONFIG_HOME/roomcast/known_servers, and a test must neither
 * read nor change the real one. Both are removed when the file's tests are done.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dir = mkdtempSync(path.join(os.tmpdir(), 'roomcast-state-'));
process.env.XDG_STATE_HOME = dir;
process.env.XDG_CONFIG_HOME = path.join(dir, 'config');
mkdirSync(process.env.XDG_CONFIG_HOME);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
