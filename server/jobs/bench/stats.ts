/**
 * Statistics for benchmark timings: robust summaries, a stopping rule for repetitions,
 * power-law fits for scaling plots, and MAC→FLOP throughput.
 *
 * Pure functions with no I/O, so the CLI, the language server and tests share one
 * definition of "median" and "p90" and their numbers agree.
 *
 * Percentiles use linear interpolation between closest ranks on the sorted sample
 * (Hyndman & Fan type 7: numpy's default, R's default, Excel's PERCENTILE.INC):
 *   h = (n − 1)·p,  q(p) = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).
 * Type 7 is chosen because it is what a reader checking our numbers with numpy gets.
 */
import type { TimingSummary } from '../../../protocol/results';

/** Arithmetic floating-point operations per multiply–accumulate (one multiply + one add). */
export const FLOPS_PER_MAC = 2;

function requireSamples(samples: readonly number[], what: string): void {
  if (samples.length === 0) throw new RangeError(`${what}: no samples (need at least one timing)`);
  for (const [i, v] of samples.entries()) {
    if (!Number.isFinite(v)) throw new RangeError(`${what}: sample ${i} is not a finite number (${v})`);
  }
}

/**
 * Type-7 percentile of an already sorted, non-empty array; p in [0, 1].
 * Exported so callers with a pre-sorted array avoid re-sorting.
 */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile: empty array');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`percentile: p must be in [0, 1], got ${p}`);
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (h - lo) * (b - a);
}

/** Type-7 percentile of unsorted samples; p in [0, 1]. */
export function percentile(samples: readonly number[], p: number): number {
  requireSamples(samples, 'percentile');
  return percentileSorted(
    [...samples].sort((x, y) => x - y),
    p,
  );
}

/** Median, p10/p90 (type 7), extremes, mean and relative spread of timings in ms. */
export function summarize(samplesMs: readonly number[]): TimingSummary {
  requireSamples(samplesMs, 'summarize');
  const sorted = [...samplesMs].sort((x, y) => x - y);
  const median = percentileSorted(sorted, 0.5);
  const p10 = percentileSorted(sorted, 0.1);
  const p90 = percentileSorted(sorted, 0.9);
  let sum = 0;
  for (const v of sorted) sum += v;
  // A zero median (a timer too coarse for the work) would make the ratio meaningless;
  // report an infinite spread so a stopping rule never calls such data "stable".
  const relSpread = median > 0 ? (p90 - p10) / median : p90 === p10 ? 0 : Number.POSITIVE_INFINITY;
  return {
    n: sorted.length,
    median,
    p10,
    p90,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    mean: sum / sorted.length,
    relSpread,
  };
}

export interface StabilityOptions {
  /** Size of the most recent block of samples compared against the rest. */
  window: number;
  /**
   * Relative tolerance, e.g. 0.02 = 2 %: the median of the last `window` samples must be
   * within this fraction of the overall median, and adding the last window must move
   * relSpread by at most this much (relSpread is already relative, so the tolerance is
   * an absolute difference there).
   */
  tolerance: number;
  /** Never call fewer samples stable; defaults to 2·window so there is a "before" block to compare. */
  minSamples?: number;
}

export interface StabilityVerdict {
  stable: boolean;
  /** Why it is (not) stable, for logs and the UI. */
  reason: string;
  /** |median(last window) − median(all)| / median(all); NaN when not computed. */
  medianDrift: number;
  /** |relSpread(all) − relSpread(all but last window)|; NaN when not computed. */
  spreadDrift: number;
}

/**
 * The stopping rule for "repeat until the spread is stable", with its reason.
 *
 * Stable means both:
 * 1. the last window's median agrees with the median of all samples within `tolerance`
 *    (no drift from thermal throttling, JIT tiering, caches still warming), and
 * 2. the relative spread has settled: the last window changed relSpread by ≤ `tolerance`.
 * The spread itself may be large (a noisy 2-core box); what matters is that more
 * repetitions would no longer change the reported numbers.
 */
export function checkStability(samples: readonly number[], opts: StabilityOptions): StabilityVerdict {
  const { window, tolerance } = opts;
  if (!Number.isInteger(window) || window < 1)
    throw new RangeError(`isStable: window must be a positive integer, got ${window}`);
  if (!(tolerance >= 0)) throw new RangeError(`isStable: tolerance must be ≥ 0, got ${tolerance}`);
  const minSamples = Math.max(opts.minSamples ?? 2 * window, window + 1);
  if (samples.length < minSamples) {
    return {
      stable: false,
      reason: `only ${samples.length} of at least ${minSamples} samples`,
      medianDrift: Number.NaN,
      spreadDrift: Number.NaN,
    };
  }
  const all = summarize(samples);
  const last = summarize(samples.slice(-window));
  const before = summarize(samples.slice(0, -window));
  const medianDrift =
    all.median > 0
      ? Math.abs(last.median - all.median) / all.median
      : last.median === all.median
        ? 0
        : Number.POSITIVE_INFINITY;
  const spreadDrift = Math.abs(all.relSpread - before.relSpread);
  if (!(medianDrift <= tolerance)) {
    return {
      stable: false,
      reason: `last-${window} median drifts ${(medianDrift * 100).toFixed(2)} % from the overall median (> ${(tolerance * 100).toFixed(2)} %)`,
      medianDrift,
      spreadDrift,
    };
  }
  if (!(spreadDrift <= tolerance)) {
    return {
      stable: false,
      reason: `relative spread still moving by ${spreadDrift.toFixed(4)} (> ${tolerance})`,
      medianDrift,
      spreadDrift,
    };
  }
  return {
    stable: true,
    reason: `median within ${(medianDrift * 100).toFixed(2)} %, spread moved ${spreadDrift.toFixed(4)} over the last ${window}`,
    medianDrift,
    spreadDrift,
  };
}

/** `checkStability(...).stable`: whether further repetitions would barely change the summary. */
export function isStable(samples: readonly number[], opts: StabilityOptions): boolean {
  return checkStability(samples, opts).stable;
}

export interface PowerLawFit {
  /** k in y = c·x^k. */
  exponent: number;
  /** c in y = c·x^k. */
  coefficient: number;
  /** Coefficient of determination of the straight-line fit in log–log space (1 = exact). */
  r2: number;
}

/**
 * Least-squares fit of y = c·x^k as ln y = ln c + k·ln x.
 * Fitting in log space weighs every point's relative error equally, which is what a
 * scaling plot (N from 1k to 64k) needs; a linear-space fit would be dominated by the
 * largest N. r² is therefore also the log-space one.
 */
export function fitPowerLaw(xs: readonly number[], ys: readonly number[]): PowerLawFit {
  if (xs.length !== ys.length) throw new RangeError(`fitPowerLaw: ${xs.length} xs but ${ys.length} ys`);
  if (xs.length < 2) throw new RangeError(`fitPowerLaw: need at least 2 points, got ${xs.length}`);
  const lx: number[] = [];
  const ly: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    const y = ys[i]!;
    if (!(x > 0 && Number.isFinite(x)) || !(y > 0 && Number.isFinite(y))) {
      throw new RangeError(
        `fitPowerLaw: point ${i} (${x}, ${y}) is not positive and finite; a log–log fit needs x > 0 and y > 0`,
      );
    }
    lx.push(Math.log(x));
    ly.push(Math.log(y));
  }
  const n = lx.length;
  const mx = lx.reduce((a, b) => a + b, 0) / n;
  const my = ly.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = lx[i]! - mx;
    const dy = ly[i]! - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx === 0) throw new RangeError('fitPowerLaw: all xs are equal, so no exponent can be fitted');
  const exponent = sxy / sxx;
  const intercept = my - exponent * mx;
  let ssRes = 0;
  for (let i = 0; i < n; i++) {
    const r = ly[i]! - (intercept + exponent * lx[i]!);
    ssRes += r * r;
  }
  // Constant ys are fitted exactly by k = 0; call that a perfect fit rather than 0/0.
  const r2 = syy === 0 ? 1 : 1 - ssRes / syy;
  return { exponent, coefficient: Math.exp(intercept), r2 };
}

/** FLOPs of `macs` multiply–accumulates (FLOP = 2·MAC). */
export function flopsFromMacs(macs: number): number {
  return FLOPS_PER_MAC * macs;
}

/**
 * Throughput in GFLOP/s (10⁹ floating-point operations per second) of work counted in
 * MACs that took `ms` milliseconds. Takes MACs, not FLOPs, because the profiler and
 * docs/MATHS.md (§4.5) count MACs (the "FLOPs" in papers are usually MACs); the factor 2 lives here only.
 */
export function gflops(macs: number, ms: number): number {
  if (!(macs >= 0) || !Number.isFinite(macs))
    throw new RangeError(`gflops: macs must be a finite number ≥ 0, got ${macs}`);
  if (!(ms > 0) || !Number.isFinite(ms)) throw new RangeError(`gflops: ms must be a finite number > 0, got ${ms}`);
  return flopsFromMacs(macs) / (ms * 1e-3) / 1e9;
}
