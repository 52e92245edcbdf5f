/**
 * Class labels: line i names class i. Two formats are common next to ONNX classifiers: the
 * ImageNet synset file ("n01440764 tench, Tinca tinca") and one plain label per line.
 */
import { readFile } from 'node:fs/promises';
import { ClassifierError } from './errors.js';

export interface Label {
  /** The first name, which is what people expect to read ("tabby", not "tabby, tabby cat"). */
  name: string;
  /** Every name on the line. */
  names: string;
  /** WordNet id for synset files. */
  wnid?: string;
}

const SYNSET_LINE = /^(n\d{8})\s+(.+)$/;

export function parseLabels(text: string, source = 'labels'): Label[] {
  // Only the final newline is dropped: a blank line in the middle still stands for a class,
  // and dropping it would shift every label after it.
  const lines = text.replace(/^\uFEFF/, '').replace(/\r?\n$/, '').split(/\r?\n/);
  if (lines.length === 0 || (lines.length === 1 && lines[0]!.trim() === '')) {
    throw new ClassifierError('LABELS_INVALID', `${source} has no labels`);
  }
  const synset = lines.every((l) => SYNSET_LINE.test(l.trim()));
  return lines.map((raw) => {
    const line = raw.trim();
    if (synset) {
      const [, wnid, names] = SYNSET_LINE.exec(line)!;
      return { name: names!.split(',')[0]!.trim(), names: names!.trim(), wnid };
    }
    return { name: line, names: line };
  });
}

export async function loadLabels(path: string): Promise<Label[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ClassifierError(
      code === 'ENOENT' ? 'MODEL_NOT_FOUND' : 'LABELS_INVALID',
      code === 'ENOENT' ? `labels file not found: ${path}` : `cannot read labels file ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return parseLabels(text, path);
}
