/**
 * Statistics for the benchmark: a latency histogram and medians across runs.
 *
 * A fan-out run delivers millions of messages, so latencies go into a fixed-size log-linear
 * histogram (HdrHistogram's layout, 1024 sub-buckets per power of two: under 0.1 % error)
 * instead of an array of samples. Recording is two integer operations and an increment, cheap
 * enough to do for every delivery without the generator becoming the bottleneck.
 */

const SUB_BITS = 10;
const SUB = 1 << SUB_BITS; // 1024
const LINEAR = SUB * 2; // values below 2048 µs get their own bucket
const MAX_SHIFT = 31 - SUB_BITS; // values up to 2^31 µs (about 35 minutes)
const BUCKETS = LINEAR + MAX_SHIFT * SUB;

/** Latencies in whole microseconds. */
export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  max = 0;
  private sum = 0;

  record(micros: number): void {
    let v = micros | 0;
    if (v < 0) v = 0; // clocks are monotonic; a negative value can only be rounding
    if (v > 0x7fffffff) v = 0x7fffffff;
    this.counts[bucketOf(v)]++;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  /** Adds every count of another histogram to this one. */
  merge(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  /** The value (µs) at or below which `p` percent of the recordings fall. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(valueOf(i), this.max);
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }
}

function bucketOf(v: number): number {
  if (v < LINEAR) return v;
  // v is in [2^(SUB_BITS+shift), 2^(SUB_BITS+shift+1)): keep its top SUB_BITS+1 bits.
  const shift = 31 - Math.clz32(v) - SUB_BITS;
  return LINEAR + (shift - 1) * SUB + ((v >>> shift) - SUB);
}

/** Upper edge of a bucket, so percentiles are never reported lower than they were. */
function valueOf(index: number): number {
  if (index < LINEAR) return index;
  const shift = Math.floor((index - LINEAR) / SUB) + 1;
  const mantissa = ((index - LINEAR) % SUB) + SUB;
  return (mantissa + 1) * 2 ** shift - 1; // not <<: it would overflow 32 bits
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function spread(values: number[]): Spread {
  return {
    median: median(values),
    min: values.length ? Math.min(...values) : NaN,
    max: values.length ? Math.max(...values) : NaN,
    runs: values,
  };
}

/** Median and spread of each figure over the runs. */
export function figuresOf(runs: Record<string, number>[], keys: readonly string[]): { median: Record<string, number>; spread: Record<string, Spread> } {
  const medians: Record<string, number> = {};
  const spreads: Record<string, Spread> = {};
  for (const key of keys) {
    spreads[key] = spread(runs.map((r) => r[key] ?? NaN));
    medians[key] = spreads[key].median;
  }
  return { median: medians, spread: spreads };
}
