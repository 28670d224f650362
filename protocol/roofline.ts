/**
 * A measured case against its runtime's limits (DeviceLimits, measured in the same run): the one
 * definition of the roofline fractions every view shows, so the CLI's table, the dashboard and a
 * reader of the JSON get the same numbers. Derived, not stored: a case is final when it streams
 * to the live dashboard, and the limits are measured after the runtime's cases.
 */
import type { BenchCase, DeviceLimits } from './results';

export interface Roofline {
  /** Achieved GFLOP/s over the runtime's fp32 matmul GFLOP/s. */
  matmulFraction: number;
  /** Estimated bytes moved per second (BenchCase.trafficBytes) over the runtime's read bandwidth. */
  bandwidthFraction: number;
}

export function rooflineOf(
  c: Pick<BenchCase, 'runtime' | 'gflopsPerSecond' | 'timingMs' | 'trafficBytes'>,
  limits: readonly DeviceLimits[] | undefined,
): Roofline | null {
  const l = limits?.find((x) => x.runtime === c.runtime);
  if (!l || c.gflopsPerSecond == null || !c.timingMs || c.trafficBytes == null) return null;
  return {
    matmulFraction: c.gflopsPerSecond / l.matmul.gflopsPerSecond,
    bandwidthFraction: c.trafficBytes / (c.timingMs.median * 1e6) / l.read.gbPerSecond,
  };
}
