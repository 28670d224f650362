/**
 * How busy the other processes on this machine were while something was timed: a benchmark
 * figure taken while another job shared the cores is not the runtime's, so the harness and the
 * benchmark scripts record it beside their timings.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';

/** os.cpus() counts 10 ms ticks: shorter windows cannot say how busy the other processes were. */
const HOST_LOAD_MIN_WINDOW_MS = 250;

/**
 * Starts measuring how much CPU other processes take: the returned function gives their
 * average use since the start, in cores (0: the machine was ours; 1: something else kept a
 * core busy). os.cpus() counts every process in 10 ms ticks, process.cpuUsage() this one
 * (its runtime threads included); null for windows too short for the ticks to tell.
 */
export function startHostLoadMeter(): () => number | null {
  const busyMs = () => os.cpus().reduce((sum, c) => sum + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
  const busy0 = busyMs();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const wallMs = performance.now() - t0;
    if (wallMs < HOST_LOAD_MIN_WINDOW_MS) return null;
    const own = process.cpuUsage(own0);
    return Math.max(0, (busyMs() - busy0 - (own.user + own.system) / 1000) / wallMs);
  };
}
