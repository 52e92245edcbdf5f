/**
 * From a row of raw logits to the few labels worth showing.
 */

export interface Scored {
  index: number;
  score: number;
}

/** Softmax, shifted by the maximum so exp() cannot overflow on large logits. */
export function softmax(logits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i]! - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / sum;
  return out;
}

/**
 * The k highest scores, best first; equal scores keep the lower index first, so int8 ties
 * (which happen: see the model notes) come out the same on every run.
 * A small insertion list instead of sorting all 1000 classes.
 */
export function topK(scores: ArrayLike<number>, k: number): Scored[] {
  const n = Math.min(Math.max(0, Math.floor(k)), scores.length);
  const best: Scored[] = [];
  if (n === 0) return best;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (best.length === n && s <= best[n - 1]!.score) continue;
    let j = best.length;
    while (j > 0 && best[j - 1]!.score < s) j--;
    best.splice(j, 0, { index: i, score: s });
    if (best.length > n) best.pop();
  }
  return best;
}
