/** Timing one run, shared by the cases and the device-limit measurements. */
import { performance } from 'node:perf_hooks';

/**
 * One run's time in ms: the runtime's own device timing when `run` returns it (a number), else
 * the wall clock around it.
 */
export async function timeOnce(run: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  const measured = await run();
  return typeof measured === 'number' ? measured : performance.now() - t;
}
