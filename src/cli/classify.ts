/**
 * `roomcast classify FILE...`: the chat bot's pipeline, run locally on files. It goes through
 * a ClassifierPool of one worker, so what it prints is what the bot would answer (same limits,
 * same errors, same batching).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ClassifierError, errorCode, errorMessage, type ClassifierErrorCode } from '../classifier/errors.js';
import { findModel } from '../classifier/model-catalog.js';
import { ClassifierPool, type ClassifyResult } from '../classifier/pool.js';
import type { LabelScore } from '../classifier/image-classifier.js';
import { scorePercent } from '../format/units.js';

export interface ClassifyCommandOptions {
  files: string[];
  model?: string;
  labels?: string;
  dir?: string;
  top: number;
  json: boolean;
}

export type FileResult =
  | { file: string; ok: true; labels: LabelScore[]; batchSize: number; width: number; height: number; timings: ClassifyResult['timings'] }
  | { file: string; ok: false; code: ClassifierErrorCode; message: string };

/** Files in flight at once: enough to fill batches, few enough that a huge glob is not read into memory at once. */
const WINDOW = 16;

export async function runClassify(opts: ClassifyCommandOptions): Promise<number> {
  let choice;
  try {
    choice = await findModel({ model: opts.model, labels: opts.labels, dir: opts.dir });
  } catch (err) {
    console.error(`roomcast: ${errorMessage(err)}`);
    return 2;
  }

  const pool = new ClassifierPool({
    model: choice.model,
    labels: choice.labels,
    size: 1,
    top: opts.top,
    maxQueue: WINDOW,
    preprocess: choice.preprocess,
  });
  try {
    await pool.ready();
  } catch (err) {
    console.error(`roomcast: ${errorMessage(err)}`);
    await pool.close();
    return 2;
  }

  const results: FileResult[] = new Array(opts.files.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < opts.files.length) {
      const i = next++;
      const file = opts.files[i]!;
      const name = path.basename(file);
      try {
        const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) => {
          throw new ClassifierError('FILE_UNREADABLE', `cannot read ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
        });
        const r = await pool.classify(bytes, { name, top: opts.top });
        results[i] = { file, ok: true, labels: r.labels, batchSize: r.batchSize, width: r.width, height: r.height, timings: r.timings };
      } catch (err) {
        results[i] = { file, ok: false, code: errorCode(err), message: errorMessage(err) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, opts.files.length) }, lane));
  await pool.close();

  process.stdout.write(opts.json ? `${JSON.stringify(results, null, 2)}\n` : formatTable(results, opts.top));
  return results.every((r) => r.ok) ? 0 : 1;
}

export function formatTable(results: FileResult[], top: number): string {
  const rows = results.map((r) => {
    if (!r.ok) return [r.file, `error ${r.code}: ${r.message}`, ''];
    const labels = r.labels.map((l) => `${l.label} ${scorePercent(l.score, 1)}`).join(', ');
    // What this image cost: its own decode plus the run() of its batch.
    return [r.file, labels, (r.timings.decodeMs + r.timings.inferenceMs).toFixed(0)];
  });
  const header = ['FILE', `TOP ${top}`, 'MS'];
  const w0 = Math.max(header[0]!.length, ...rows.map((r) => r[0]!.length));
  const w1 = Math.max(header[1]!.length, ...rows.map((r) => (r[2] ? r[1]!.length : 0)));
  const line = (r: string[]): string => (r[2] ? `${r[0]!.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]!.padStart(4)}` : `${r[0]!.padEnd(w0)}  ${r[1]}`).trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
