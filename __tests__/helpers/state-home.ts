/**
 * Every test file gets a state directory of its own: a `roomcast serve` it starts keeps its
 * history under $XDG_STATE_HOME by default, and two servers on one directory would find it
 * locked (or a test would read another's history). Removed when the file's tests are done.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dir = mkdtempSync(path.join(os.tmpdir(), 'roomcast-state-'));
process.env.XDG_STATE_HOME = dir;
afterAll(() => rmSync(dir, { recursive: true, force: true }));
