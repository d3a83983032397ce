// Pure statistics for the benchmarks: no I/O, no clock.

/** The median of the values (the mean of the middle two for an even count); NaN when empty. */
export const median = (values: readonly number[]): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/**
 * The nearest-rank percentile (p in 0..100) of values that are already sorted ascending:
 * the smallest value with at least p% of the values at or below it. NaN when empty.
 */
export const percentileSorted = (sorted: ArrayLike<number>, p: number): number => {
  if (sorted.length === 0) return Number.NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] as number;
};

/** The nearest-rank percentile of unsorted values (sorts a copy). */
export const percentile = (values: readonly number[], p: number): number =>
  percentileSorted(Float64Array.from(values).sort(), p);

/** Rounds to a fixed number of decimals (for results that people read). */
export const round = (value: number, decimals = 1): number => {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
};

/** `ours / theirs`, rounded; NaN-safe (0 when the baseline is 0). */
export const ratio = (ours: number, theirs: number, decimals = 2): number =>
  theirs > 0 ? round(ours / theirs, decimals) : 0;
