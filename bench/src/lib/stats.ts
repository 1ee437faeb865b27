/**
 * Latency summaries from raw samples. Sorting every sample is exact and cheap at the counts a
 * bench run collects (≤ a few hundred thousand), so no HDR bucketing is needed.
 */

/** Percentiles reported for every latency figure; the distribution chart plots all of them. */
export const PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 99, 99.9, 100] as const;

export interface LatencySummary {
  count: number;
  mean: number;
  min: number;
  max: number;
  p50: number;
  p90: number;
  p99: number;
  /** Every percentile of {@link PERCENTILES}, keyed `p<q>` (`p0` = min, `p100` = max). */
  percentiles: Record<string, number>;
}

/**
 * Nearest-rank percentile of an ascending-sorted array (`q` in 0..100). Returns `NaN` for an
 * empty array so a missing figure never reads as zero.
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (q <= 0) return sorted[0]!;
  if (q >= 100) return sorted[n - 1]!;
  const rank = Math.ceil((q / 100) * n);
  return sorted[Math.min(n, Math.max(1, rank)) - 1]!;
}

/** Summarise samples (any unit); the input is not modified. */
export function summarize(samples: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const percentiles: Record<string, number> = {};
  for (const q of PERCENTILES) percentiles[`p${q}`] = percentile(sorted, q);
  return {
    count: sorted.length,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    min: percentile(sorted, 0),
    max: percentile(sorted, 100),
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    percentiles,
  };
}

/** Median of a few repeated figures (e.g. best-of-3 runs); `NaN` when empty. */
export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}
