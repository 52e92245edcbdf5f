/**
 * `roomcast models pull` when the files cannot be reached: an offline machine, nothing
 * listening, a --base-url no download can use. Each failure has its own code and ends with the
 * ways round it (a mirror, or serving with files one has). Only loopback is used: a real DNS
 * failure would need a query to a name server, so the offline case is the error Node's fetch
 * gives for it, handed to the mapping directly.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ClassifierError } from '../../src/classifier/errors.js';
import { fetchFailure, pull } from '../../src/classifier/model-catalog.js';
import { BIN, CLI_ENV } from '../helpers/cli-child.js';

const MODEL_URL = 'https://github.com/onnx/models/raw/main/validated/vision/classification/mobilenet/model/mobilenetv2-12-int8.onnx';
const SERVE_WITH_FILES = 'start the server with model files you have: roomcast serve --model FILE.onnx --labels FILE.txt';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'roomcast-offline-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<ClassifierError> {
  try {
    await p;
  } catch (err) {
    return err as ClassifierError;
  }
  throw new Error('expected a failure');
}

/** What fetch rejects with when the socket fails: a TypeError whose cause is the system error. */
function fetchError(message: string, fields: Record<string, unknown> = {}): TypeError {
  return new TypeError('fetch failed', { cause: Object.assign(new Error(message), fields) });
}

/** A port on 127.0.0.1 that was free a moment ago: connecting to it is refused. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: CLI_ENV, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('a request that fails before any answer, in words', () => {
  test('a failed name lookup (EAI_AGAIN, as offline) says the machine seems offline, and what to do', () => {
    const cause = { code: 'EAI_AGAIN', errno: -3001, syscall: 'getaddrinfo', hostname: 'github.com' };
    const err = fetchFailure('mobilenetv2-12-int8.onnx', MODEL_URL, fetchError('getaddrinfo EAI_AGAIN github.com', cause));
    expect(err).toBeInstanceOf(ClassifierError);
    expect(err.code).toBe('PULL_OFFLINE');
    expect(err.message).toBe(
      `could not download mobilenetv2-12-int8.onnx from ${MODEL_URL}: this machine seems offline or cannot resolve github.com (EAI_AGAIN). ` +
        `Run the pull again once this machine is online, pull from a mirror with --base-url URL, or ${SERVE_WITH_FILES}`,
    );
  });

  test('an unknown host name (ENOTFOUND) is the same failure, with its code', () => {
    const err = fetchFailure('synset.txt', 'http://mirror.lan/synset.txt', fetchError('getaddrinfo ENOTFOUND mirror.lan', { code: 'ENOTFOUND' }), {
      baseUrl: 'http://mirror.lan/',
    });
    expect(err.code).toBe('PULL_OFFLINE');
    expect(err.message).toContain('this machine seems offline or cannot resolve mirror.lan (ENOTFOUND)');
    // With a mirror, the first thing to check is the mirror.
    const tail = `Check that the mirror is running and that --base-url is right, or ${SERVE_WITH_FILES}`;
    expect(err.message.slice(-tail.length)).toBe(tail);
  });

  test('no route, a refusal from every address, a timeout: unreachable, each said plainly', () => {
    const unreachable = fetchFailure('synset.txt', MODEL_URL, fetchError('connect ENETUNREACH 140.82.121.4:443', { code: 'ENETUNREACH' }));
    expect(unreachable.code).toBe('PULL_UNREACHABLE');
    expect(unreachable.message).toContain('this machine seems offline: there is no network route to github.com (ENETUNREACH). Run the pull again once this machine is online');

    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const several = new TypeError('fetch failed', { cause: new AggregateError([refused, refused]) });
    const both = fetchFailure('synset.txt', 'http://localhost:8080/synset.txt', several, { baseUrl: 'http://localhost:8080/' });
    expect(both.code).toBe('PULL_UNREACHABLE');
    expect(both.message).toContain('nothing answers at http://localhost:8080 (connection refused)');

    const slow = fetchFailure('synset.txt', MODEL_URL, fetchError('Connect Timeout Error', { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    expect(slow.message).toContain('https://github.com did not answer (the connection timed out). Run the pull again later, pull from a mirror with --base-url URL');
  });

  test('anything else keeps its own words and still says what to do', () => {
    const err = fetchFailure('synset.txt', MODEL_URL, fetchError('certificate has expired', { code: 'CERT_HAS_EXPIRED' }));
    expect(err.code).toBe('PULL_FAILED');
    expect(err.message).toBe(
      `could not download synset.txt from ${MODEL_URL}: certificate has expired. Run the pull again later, pull from a mirror with --base-url URL, or ${SERVE_WITH_FILES}`,
    );
  });
});

describe('pull against loopback', () => {
  test('nothing listening at --base-url: PULL_UNREACHABLE, nothing installed', async () => {
    const port = await closedPort();
    const err = await failure(pull(undefined, { dir, baseUrl: `http://127.0.0.1:${port}/models/` }));
    expect(err.code).toBe('PULL_UNREACHABLE');
    expect(err.message).toBe(
      `could not download mobilenetv2-12-int8.onnx from http://127.0.0.1:${port}/models/mobilenetv2-12-int8.onnx: ` +
        `nothing answers at http://127.0.0.1:${port} (connection refused). Check that the mirror is running and that --base-url is right, or ${SERVE_WITH_FILES}`,
    );
    expect(await readdir(dir)).toEqual([]);
  });

  test('a port downloads may not use (http://127.0.0.1:1/) is explained, not "bad port"', async () => {
    const err = await failure(pull(undefined, { dir, baseUrl: 'http://127.0.0.1:1/' }));
    expect(err.code).toBe('PULL_BAD_URL');
    expect(err.message).toBe(
      'could not download mobilenetv2-12-int8.onnx from http://127.0.0.1:1/mobilenetv2-12-int8.onnx: ' +
        'port 1 is one downloads may not use, as it belongs to another kind of service. ' +
        `Serve the mirror on another port, such as 8080, and give that in --base-url, or ${SERVE_WITH_FILES}`,
    );
    expect(err.message).not.toMatch(/^bad port|: bad port/);
  });

  test('a --base-url that is not an http(s) URL is refused before anything is created', async () => {
    const inside = path.join(dir, 'models');
    const notUrl = await failure(pull(undefined, { dir: inside, baseUrl: 'mirror.lan/models' }));
    expect(notUrl.code).toBe('PULL_BAD_URL');
    expect(notUrl.message).toBe(`--base-url "mirror.lan/models" is not a URL: give the mirror's address, such as http://mirror.lan:8080/models/`);
    const ftp = await failure(pull(undefined, { dir: inside, baseUrl: 'ftp://127.0.0.1/models/' }));
    expect(ftp.code).toBe('PULL_BAD_URL');
    expect(ftp.message).toContain('is a ftp:// URL: a mirror is reached over http:// or https://');
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('roomcast models pull (the built CLI)', () => {
  test('--base-url http://127.0.0.1:1/: exit 1 with the explanation and what to do', async () => {
    const run = await cli('models', 'pull', '--dir', dir, '--base-url', 'http://127.0.0.1:1/');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('roomcast: could not download mobilenetv2-12-int8.onnx from http://127.0.0.1:1/mobilenetv2-12-int8.onnx: port 1 is one downloads may not use');
    expect(run.stderr.trimEnd()).toMatch(/or start the server with model files you have: roomcast serve --model FILE\.onnx --labels FILE\.txt$/);
  });

  test('nothing listening: exit 1, "nothing answers at"', async () => {
    const port = await closedPort();
    const run = await cli('models', 'pull', '--dir', dir, '--base-url', `http://127.0.0.1:${port}`);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`nothing answers at http://127.0.0.1:${port} (connection refused). Check that the mirror is running`);
    expect(await readdir(dir)).toEqual([]);
  });
});
