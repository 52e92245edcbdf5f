/**
 * Known models (models/manifest.json), installing them, and finding the one to use.
 *
 * Weights are never committed: `roomcast models pull` downloads them into a models directory
 * (default <project>/models, or $ROOMCAST_MODELS, or --dir), checking size and sha256. A
 * download goes to a temporary file in the same directory and is renamed into place only once
 * verified, so the final name never holds a partial or tampered file, and the rename is atomic
 * because it stays on one file system.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassifierError, errorMessage, type ClassifierErrorCode } from './errors.js';
import type { PreprocessOptions } from './preprocess.js';
import { formatBytes } from '../format/units.js';

export interface RemoteFile {
  /** Name in the models directory. */
  file: string;
  url: string;
  size: number;
  sha256: string;
}

export interface ModelEntry extends RemoteFile {
  name: string;
  description: string;
  licence?: string;
  labels: RemoteFile & { format: 'synset' | 'lines' };
  input: { name: string; type: string; shape: (number | string)[]; layout: 'NCHW' };
  output?: { name: string; shape: (number | string)[]; kind: string };
  preprocessing: {
    orientation: 'exif';
    resizeShorter: number;
    crop: number;
    channels: 'RGB';
    scale: number;
    mean: [number, number, number];
    std: [number, number, number];
  };
}

export interface Manifest {
  default: string;
  models: ModelEntry[];
}

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MANIFEST_PATH = path.join(PROJECT_ROOT, 'models', 'manifest.json');

export function defaultModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.ROOMCAST_MODELS ? path.resolve(env.ROOMCAST_MODELS) : path.join(PROJECT_ROOT, 'models');
}

let manifestCache: Promise<Manifest> | undefined;

export function loadManifest(file = MANIFEST_PATH): Promise<Manifest> {
  if (file !== MANIFEST_PATH) return readManifest(file);
  manifestCache ??= readManifest(file).catch((err) => {
    manifestCache = undefined;
    throw err;
  });
  return manifestCache;
}

async function readManifest(file: string): Promise<Manifest> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
  } catch (err) {
    throw new ClassifierError('INTERNAL', `cannot read the model manifest ${file}: ${errorMessage(err)}`, { cause: err });
  }
  if (!Array.isArray(manifest.models) || !manifest.models.some((m) => m.name === manifest.default)) {
    throw new ClassifierError('INTERNAL', `the model manifest ${file} lists no default model`);
  }
  return manifest;
}

export function findEntry(manifest: Manifest, name?: string): ModelEntry {
  const wanted = name ?? manifest.default;
  const entry = manifest.models.find((m) => m.name === wanted);
  if (!entry) {
    throw new ClassifierError('MODEL_UNKNOWN', `unknown model "${wanted}"; known models: ${manifest.models.map((m) => m.name).join(', ')}`);
  }
  return entry;
}

/** The preprocessing options a manifest entry asks for. */
export function preprocessFor(entry: ModelEntry): Partial<PreprocessOptions> {
  const p = entry.preprocessing;
  return { inputSize: p.crop, resizeShorter: p.resizeShorter, mean: p.mean, std: p.std };
}

// ---- checking installed files ------------------------------------------------------------

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export type FileStatus = 'missing' | 'wrong-size' | 'wrong-checksum' | 'ok' | 'present';

/** 'present' when only the size was checked (verify false); 'ok' when the sha256 matched too. */
export async function checkFile(dir: string, f: RemoteFile, verify = true): Promise<FileStatus> {
  const where = path.join(dir, f.file);
  try {
    const s = await stat(where);
    if (!s.isFile()) return 'missing';
    if (s.size !== f.size) return 'wrong-size';
  } catch {
    return 'missing';
  }
  if (!verify) return 'present';
  return (await sha256File(where)) === f.sha256 ? 'ok' : 'wrong-checksum';
}

export interface ListedModel {
  name: string;
  description: string;
  isDefault: boolean;
  size: number;
  dir: string;
  model: string;
  labels: string;
  installed: boolean;
  /** Installed and both files matched their sha256 (only when list() was asked to verify). */
  verified: boolean;
  status: { model: FileStatus; labels: FileStatus };
}

export async function list(opts: { dir?: string; verify?: boolean; manifest?: Manifest } = {}): Promise<ListedModel[]> {
  const manifest = opts.manifest ?? (await loadManifest());
  const dir = opts.dir ?? defaultModelsDir();
  const verify = opts.verify ?? true;
  return Promise.all(
    manifest.models.map(async (m) => {
      const [model, labels] = await Promise.all([checkFile(dir, m, verify), checkFile(dir, m.labels, verify)]);
      const good = (s: FileStatus): boolean => s === 'ok' || s === 'present';
      return {
        name: m.name,
        description: m.description,
        isDefault: m.name === manifest.default,
        size: m.size + m.labels.size,
        dir,
        model: path.join(dir, m.file),
        labels: path.join(dir, m.labels.file),
        installed: good(model) && good(labels),
        verified: model === 'ok' && labels === 'ok',
        status: { model, labels },
      };
    }),
  );
}

// ---- downloading -------------------------------------------------------------------------

export interface PullProgress {
  file: string;
  received: number;
  total: number;
}

export interface PullOptions {
  dir?: string;
  /** Fetch every file from here instead (a mirror, or a test server): base + the URL's file name. */
  baseUrl?: string;
  onProgress?: (p: PullProgress) => void;
  manifest?: Manifest;
  /** Give up when no byte arrives for this long. */
  stallTimeoutMs?: number;
}

export interface PullResult {
  name: string;
  dir: string;
  model: string;
  labels: string;
  /** Files fetched now; the others were already installed and verified. */
  downloaded: string[];
}

function sourceUrl(f: RemoteFile, baseUrl?: string): string {
  if (!baseUrl) return f.url;
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return new URL(path.posix.basename(new URL(f.url).pathname), base).toString();
}

/** How to get a classifier running without this download, the last resort every failure to
 *  reach the files offers. */
const SERVE_WITH_FILES = 'start the server with model files you have: roomcast serve --model FILE.onnx --labels FILE.txt';

/** A --base-url that cannot work is refused before anything is created or fetched. */
function checkBaseUrl(baseUrl: string): void {
  let url: URL;
  try {
    url = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  } catch {
    throw new ClassifierError('PULL_BAD_URL', `--base-url "${baseUrl}" is not a URL: give the mirror's address, such as http://mirror.lan:8080/models/`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClassifierError('PULL_BAD_URL', `--base-url "${baseUrl}" is a ${url.protocol}// URL: a mirror is reached over http:// or https://, such as http://mirror.lan:8080/models/`);
  }
}

/** The errno-style code of a failed request: fetch wraps the socket's error as its cause, and a
 *  host with several addresses fails with an AggregateError whose first attempt tells. */
function failureCode(err: unknown): string | undefined {
  const cause = ((err as Error | undefined)?.cause ?? err) as (NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] }) | undefined;
  return cause?.code ?? cause?.errors?.[0]?.code;
}

/**
 * A request for `file` at `url` that failed before any answer came, in words a person can act
 * on: offline (the name could not be looked up), nothing listening, a URL that cannot be used;
 * each with its own code, and each ending with the ways round it.
 */
export function fetchFailure(file: string, url: string, err: unknown, opts: { baseUrl?: string; stalledMs?: number } = {}): ClassifierError {
  const target = new URL(url);
  const host = target.hostname;
  const cause = (err as Error | undefined)?.cause ?? err;
  // Read as a property: the error may come from another realm (a test's VM) where instanceof fails.
  const raw = typeof (cause as Error | undefined)?.message === 'string' ? (cause as Error).message : errorMessage(cause);
  const code = failureCode(err);
  let kind: ClassifierErrorCode = 'PULL_UNREACHABLE';
  let why: string;
  let retry = 'Run the pull again later';
  if (opts.stalledMs !== undefined) {
    kind = 'PULL_FAILED';
    why = `no answer within ${opts.stalledMs / 1000} s`;
  } else if (code === 'EAI_AGAIN' || code === 'ENOTFOUND' || code === 'EAI_NONAME' || code === 'EAI_FAIL') {
    kind = 'PULL_OFFLINE';
    why = `this machine seems offline or cannot resolve ${host} (${code})`;
    retry = 'Run the pull again once this machine is online';
  } else if (code === 'ECONNREFUSED') {
    why = `nothing answers at ${target.origin} (connection refused)`;
  } else if (code === 'ENETUNREACH' || code === 'ENETDOWN' || code === 'EHOSTUNREACH') {
    why = `this machine seems offline: there is no network route to ${host} (${code})`;
    retry = 'Run the pull again once this machine is online';
  } else if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    why = `${target.origin} did not answer (the connection timed out)`;
  } else if (raw === 'bad port') {
    // Fetch refuses the ports of other services (1, 25, 6000, ...) whatever listens there.
    kind = 'PULL_BAD_URL';
    why = `port ${target.port} is one downloads may not use, as it belongs to another kind of service`;
  } else if (raw === 'unknown scheme') {
    kind = 'PULL_BAD_URL';
    why = 'only http:// and https:// URLs can be downloaded from';
  } else {
    kind = 'PULL_FAILED';
    why = raw;
  }
  let next: string;
  if (opts.baseUrl === undefined) next = `${kind === 'PULL_BAD_URL' ? 'Pull' : `${retry}, pull`} from a mirror with --base-url URL, or ${SERVE_WITH_FILES}`;
  else if (raw === 'bad port') next = `Serve the mirror on another port, such as 8080, and give that in --base-url, or ${SERVE_WITH_FILES}`;
  else next = `Check that the mirror is running and that --base-url is right, or ${SERVE_WITH_FILES}`;
  return new ClassifierError(kind, `could not download ${file} from ${url}: ${why}. ${next}`, { cause: err });
}

export async function pull(name: string | undefined, opts: PullOptions = {}): Promise<PullResult> {
  const manifest = opts.manifest ?? (await loadManifest());
  const entry = findEntry(manifest, name);
  const dir = opts.dir ?? defaultModelsDir();
  if (opts.baseUrl !== undefined) checkBaseUrl(opts.baseUrl);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new ClassifierError('PULL_FAILED', `cannot create the models directory ${dir}: ${errorMessage(err)}`, { cause: err });
  }
  await removeStaleTemps(dir, [entry.file, entry.labels.file]);
  const downloaded: string[] = [];
  for (const f of [entry, entry.labels]) {
    if ((await checkFile(dir, f)) === 'ok') continue;
    await download(f, sourceUrl(f, opts.baseUrl), dir, opts);
    downloaded.push(f.file);
  }
  return { name: entry.name, dir, model: path.join(dir, entry.file), labels: path.join(dir, entry.labels.file), downloaded };
}

function tempName(file: string): string {
  return `.${file}.${process.pid}.${randomBytes(4).toString('hex')}.part`;
}

/**
 * Temporary files left by a pull that was killed (kill -9, power cut): the ones whose process
 * is gone. A pull still running elsewhere keeps its own.
 */
async function removeStaleTemps(dir: string, files: string[]): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const m = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.part$/.exec(name);
    if (!m || !files.includes(m[1]!)) continue;
    const pid = Number(m[2]);
    let alive = pid === process.pid;
    if (!alive) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
    if (!alive) await unlink(path.join(dir, name)).catch(() => undefined);
  }
}

async function download(f: RemoteFile, url: string, dir: string, opts: PullOptions): Promise<void> {
  const final = path.join(dir, f.file);
  // Hidden, unique, and in the same directory as the final name so rename() is atomic.
  const temp = path.join(dir, tempName(f.file));
  const stallMs = opts.stallTimeoutMs ?? 30_000;
  const controller = new AbortController();
  let stalled = false;
  let stallTimer = setTimeout(() => ((stalled = true), controller.abort()), stallMs);
  const touch = (): void => {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => ((stalled = true), controller.abort()), stallMs);
  };

  let received = 0;
  const fail = async (err: ClassifierError): Promise<never> => {
    clearTimeout(stallTimer);
    controller.abort();
    await unlink(temp).catch(() => undefined);
    throw err;
  };

  let response: Response;
  try {
    response = await fetch(url, { signal: controller.signal, redirect: 'follow' });
  } catch (err) {
    clearTimeout(stallTimer);
    throw fetchFailure(f.file, url, err, { baseUrl: opts.baseUrl, stalledMs: stalled ? stallMs : undefined });
  }
  if (!response.ok || !response.body) {
    clearTimeout(stallTimer);
    throw new ClassifierError('PULL_FAILED', `could not download ${f.file} from ${url}: the server answered ${response.status} ${response.statusText}`);
  }
  const announced = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(announced) && announced !== f.size && !response.headers.get('content-encoding')) {
    // Typically a Git LFS pointer or an HTML error page instead of the file.
    await response.body.cancel().catch(() => undefined);
    return fail(new ClassifierError('PULL_CHECKSUM', `${url} offers ${announced} bytes but ${f.file} is ${f.size} bytes: not the expected file; nothing was installed`));
  }

  const hash = createHash('sha256');
  const handle = await open(temp, 'wx');
  try {
    opts.onProgress?.({ file: f.file, received, total: f.size });
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      touch();
      received += chunk.length;
      if (received > f.size) throw new ClassifierError('PULL_CHECKSUM', `${url} sent more than the ${f.size} bytes ${f.file} should have: not the expected file; nothing was installed`);
      hash.update(chunk);
      await handle.write(chunk);
      opts.onProgress?.({ file: f.file, received, total: f.size });
    }
    // On disk before the rename, so a power cut cannot leave a verified name over empty blocks.
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    if (err instanceof ClassifierError) return fail(err);
    const why = stalled ? `nothing arrived for ${stallMs / 1000} s` : errorMessage((err as Error).cause ?? err);
    return fail(
      new ClassifierError('PULL_INTERRUPTED', `the download of ${f.file} was cut off after ${formatBytes(received)} of ${formatBytes(f.size)} (${why}); nothing was installed, run the pull again`, { cause: err }),
    );
  }
  await handle.close();
  clearTimeout(stallTimer);

  if (received !== f.size) {
    return fail(new ClassifierError('PULL_INTERRUPTED', `the download of ${f.file} ended after ${formatBytes(received)} of ${formatBytes(f.size)}; nothing was installed, run the pull again`));
  }
  const digest = hash.digest('hex');
  if (digest !== f.sha256) {
    return fail(
      new ClassifierError(
        'PULL_CHECKSUM',
        `${f.file} from ${url} failed its checksum (sha256 ${digest}, expected ${f.sha256}); it was not installed. The file on the server differs from the one this roomcast knows.`,
      ),
    );
  }
  try {
    await rename(temp, final);
  } catch (err) {
    return fail(new ClassifierError('PULL_FAILED', `cannot move ${f.file} into ${dir}: ${errorMessage(err)}`, { cause: err }));
  }
}

// ---- choosing the model to run -----------------------------------------------------------

export interface ModelChoice {
  model: string;
  labels: string;
  /** The manifest entry when the model came from the models directory. */
  entry?: ModelEntry;
  preprocess?: Partial<PreprocessOptions>;
}

/**
 * --model/--labels when given, else the installed default (or named) model. Checks only that
 * the files are there with the right size: hashing on every start would cost time for nothing,
 * since pull() verified them and the rename made them final.
 */
export async function findModel(opts: { model?: string; labels?: string; name?: string; dir?: string; manifest?: Manifest } = {}): Promise<ModelChoice> {
  if (opts.model || opts.labels) {
    if (!opts.model || !opts.labels) {
      throw new ClassifierError('MODEL_NOT_INSTALLED', '--model and --labels go together: pass the .onnx file and its labels file (one label per line, or synset.txt format)');
    }
    return { model: path.resolve(opts.model), labels: path.resolve(opts.labels) };
  }
  const manifest = opts.manifest ?? (await loadManifest());
  const entry = findEntry(manifest, opts.name);
  const dir = opts.dir ?? defaultModelsDir();
  const [m, l] = await Promise.all([checkFile(dir, entry, false), checkFile(dir, entry.labels, false)]);
  if (m !== 'present' || l !== 'present') {
    const pullCmd = entry.name === manifest.default ? 'roomcast models pull' : `roomcast models pull ${entry.name}`;
    throw new ClassifierError(
      'MODEL_NOT_INSTALLED',
      `the image classifier model "${entry.name}" is not installed in ${dir}. ` +
        `Install it with \`${pullCmd}\` (${formatBytes(entry.size + entry.labels.size)}), or pass --model FILE.onnx --labels FILE.txt`,
    );
  }
  return { model: path.join(dir, entry.file), labels: path.join(dir, entry.labels.file), entry, preprocess: preprocessFor(entry) };
}
