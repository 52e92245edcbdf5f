/**
 * `roomcast models list` and `roomcast models pull`: wiring around classifier/model-catalog.ts.
 */
import { errorMessage } from '../classifier/errors.js';
import { defaultModelsDir, list, pull } from '../classifier/model-catalog.js';
import { progressReporter } from './progress.js';
import { formatBytes } from '../format/units.js';

export async function runModelsList(opts: { dir?: string; json?: boolean }): Promise<number> {
  const dir = opts.dir ?? defaultModelsDir();
  let models;
  try {
    models = await list({ dir, verify: true });
  } catch (err) {
    console.error(`roomcast: ${errorMessage(err)}`);
    return 1;
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ dir, models }, null, 2)}\n`);
    return 0;
  }
  const status = (m: (typeof models)[number]): string => {
    if (m.verified) return 'installed';
    if (m.status.model === 'missing' && m.status.labels === 'missing') return 'not installed';
    return `damaged (model ${m.status.model}, labels ${m.status.labels}): pull it again`;
  };
  const rows = models.map((m) => [`${m.name}${m.isDefault ? ' (default)' : ''}`, formatBytes(m.size), status(m), m.description]);
  const head = ['NAME', 'SIZE', 'STATUS', 'DESCRIPTION'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  process.stdout.write(`models directory: ${dir}\n${[head, ...rows].map(fmt).join('\n')}\n`);
  if (!models.some((m) => m.verified)) process.stdout.write('Install the default model with: roomcast models pull\n');
  return 0;
}

export async function runModelsPull(name: string | undefined, opts: { dir?: string; baseUrl?: string }): Promise<number> {
  const progress = progressReporter(process.stderr);
  try {
    const r = await pull(name, { dir: opts.dir, baseUrl: opts.baseUrl, onProgress: (p) => progress.update(p) });
    progress.finish();
    const what = r.downloaded.length > 0 ? `installed (${r.downloaded.join(', ')} downloaded, sha256 verified)` : 'already installed and verified';
    console.log(`${r.name}: ${what}\n  model:  ${r.model}\n  labels: ${r.labels}`);
    return 0;
  } catch (err) {
    progress.finish();
    console.error(`roomcast: ${errorMessage(err)}`);
    return 1;
  }
}
