/**
 * What the built CLI loads. The client must not load the server: `roomcast join --help`,
 * `--version` and the client's modules load none of sharp, prom-client, busboy, onnxruntime-node
 * or ws, nor the hub, the HTTP server, the classifier or the bot. Each command's module loads
 * only when it runs, and serve's defaults (read from the server's modules) still show in its
 * help. Run `npm run build` first: this tests dist/.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildProgram } from '../../src/cli/main.js';
import { SERVE_DEFAULTS } from '../../src/cli/serve.js';
import { BIN, CLI_ENV, ROOT } from '../helpers/cli-child.js';

/** Packages only the server, the classifier or the WebSocket side needs. */
const HEAVY = ['sharp', 'prom-client', 'busboy', 'onnxruntime-node', 'ws'];
/** The server's own modules under dist/. */
const SERVER_SIDE = ['server.js', 'hub/', 'http/', 'classifier/', 'images/'];

/**
 * A preload for the child: every module the ES loader loads (reported by a loader hook, which
 * runs on a thread of its own and so writes to the file at once), then at exit every CommonJS
 * module in require's cache (those a CommonJS package requires inside itself).
 */
function tracer(out: string): string {
  const hooks = `
    import { appendFileSync } from 'node:fs';
    let out;
    export function initialize(data) { out = data.out; }
    export async function load(url, context, next) { appendFileSync(out, url + '\\n'); return next(url, context); }`;
  const preload = `
    import { register, createRequire } from 'node:module';
    import { appendFileSync } from 'node:fs';
    const out = ${JSON.stringify(out)};
    register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)}, { data: { out } });
    const cache = createRequire(process.cwd() + '/').cache;
    process.on('exit', () => appendFileSync(out, Object.keys(cache).map((f) => 'file://' + f + '\\n').join('')));`;
  return `data:text/javascript,${encodeURIComponent(preload)}`;
}

interface Traced {
  status: number | null;
  stdout: string;
  /** Package names and dist/ paths (relative) of everything loaded. */
  packages: Set<string>;
  dist: Set<string>;
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'roomcast-loads-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let runs = 0;
function traced(args: string[]): Promise<Traced> {
  const out = path.join(tmp, `run-${++runs}.txt`);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', tracer(out), ...args], { cwd: ROOT, env: CLI_ENV, timeout: 15_000 }, (err, stdout, stderr) => {
      if (!existsSync(out)) return reject(new Error(`the traced node wrote no module list (${err?.message})\n${stderr}`));
      const urls = readFileSync(out, 'utf8').split('\n').filter((u) => u.startsWith('file://'));
      const packages = new Set<string>();
      const dist = new Set<string>();
      const distUrl = pathToFileURL(path.join(ROOT, 'dist')).href + '/';
      for (const url of urls) {
        const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
        if (pkg) packages.add(pkg[1]!);
        else if (url.startsWith(distUrl)) dist.add(url.slice(distUrl.length));
      }
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, packages, dist });
    });
  });
}

function serverSide(run: Traced): string[] {
  return [...HEAVY.filter((p) => run.packages.has(p)), ...[...run.dist].filter((f) => SERVER_SIDE.some((s) => f.startsWith(s)))];
}

test('the tracer sees the heavy modules when they load (serve --help loads the server for its defaults)', async () => {
  const run = await traced([BIN, 'serve', '--help']);
  expect(run.status).toBe(0);
  expect([...run.packages]).toEqual(expect.arrayContaining(['sharp', 'prom-client', 'busboy', 'commander']));
  expect([...run.dist]).toEqual(expect.arrayContaining(['server.js', 'hub/hub.js', 'classifier/pool.js', 'cli/serve.js']));
});

test.each([[['join', '--help']], [['post', '--help']], [['--version']], [['--help']]])('roomcast %j loads only the command line', async (args) => {
  const run = await traced([BIN, ...args]);
  expect(run.status).toBe(0);
  expect(run.stdout).not.toBe('');
  expect(serverSide(run)).toEqual([]);
  // Declaring the commands loads none of them.
  expect([...run.dist].filter((f) => f.startsWith('client/') || (f.startsWith('cli/') && !['cli/main.js', 'cli/numbers.js'].includes(f)))).toEqual([]);
  expect([...run.packages]).toEqual(['commander']);
});

test("the client's modules load nothing of the server", async () => {
  const entries = ['client/join.js', 'client/post.js', 'client/pick-server.js'].map((f) => pathToFileURL(path.join(ROOT, 'dist', f)).href);
  const run = await traced(['--input-type=module', '-e', entries.map((u) => `await import(${JSON.stringify(u)});`).join('\n')]);
  expect(run.status).toBe(0);
  expect([...run.dist]).toEqual(expect.arrayContaining(['client/join.js', 'client/chat-client.js', 'client/terminal.js', 'lan/browse.js']));
  expect(serverSide(run)).toEqual([]);
});

function roomcast(...args: string[]): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: CLI_ENV, timeout: 15_000 }, (err, stdout) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout });
    });
  });
}

test("serve's help shows the server's defaults, through --help and through the help command", async () => {
  const [viaFlag, viaCommand] = await Promise.all([roomcast('serve', '--help'), roomcast('help', 'serve')]);
  expect(viaFlag.status).toBe(0);
  expect(viaCommand).toEqual(viaFlag);
  const flat = viaFlag.stdout.replace(/\s+/g, ' ');
  const serve = buildProgram().commands.find((c) => c.name() === 'serve')!;
  for (const [key, value] of Object.entries(SERVE_DEFAULTS)) {
    const option = serve.options.find((o) => o.attributeName() === key)!;
    const choices = option.argChoices ? `choices: ${option.argChoices.map((c) => JSON.stringify(c)).join(', ')}, ` : '';
    expect(flat).toContain(`${option.flags} ${option.description} (${choices}default: ${JSON.stringify(value)})`);
  }
  expect(flat).toContain('-p, --port <port> TCP port; 0 picks a free one and prints it (default: 7447)');
});
