/**
 * The limits beside every figure. Once per run and runtime, after its cases, the device under the
 * runtime is measured at two things it does at best: fp32 matrix multiply (an n×n by n×n matmul,
 * rows summed so only a column comes back over the bus) and read bandwidth (a row sum over one
 * large tensor). Each case is then shown as a fraction of them (protocol/roofline.ts) — a roofline —
 * so "4 ms" reads as "62 % of what this device's matmul does". Both graphs are built on the op set and run by the same
 * runner as the cases, so they go through the same lowering, session and timing.
 */
import type { DeviceLimits, RuntimeDescription } from '../../../protocol/results';
import { Graph } from '../../core/engine/graph';
import { mapWeights } from '../../core/engine/lowerings/reference';
import { numel } from '../../core/shape';
import type { Runner } from '../../runtimes/runner';
import { summarize } from './stats';
import { timeOnce } from './timing';

/** Sizes per kind of device: large enough to saturate it, small enough to take well under a second or two. */
function sizes(d: RuntimeDescription): { n: number; readElements: number } | null {
  if (d.id === 'reference') return null; // the oracle: its speed is no device's limit
  const gpu =
    !d.software &&
    (d.id === 'ort-webgpu' ||
      d.id === 'ort-cuda' ||
      d.id === 'tfjs-webgpu' ||
      d.id === 'torch-cuda' ||
      d.id === 'torch-cuda-compiled' ||
      d.id === 'torch-mps' ||
      d.id === 'tfjs-node-gpu');
  const slow = d.software || d.id === 'tfjs-cpu' || d.id === 'tfjs-wasm';
  const n = gpu ? 4096 : slow ? 384 : 1024;
  // 64 MiB (under a 128 MiB WebGPU buffer limit), or 16 MiB where the runtime is slow.
  let readElements = slow ? 4 << 20 : 16 << 20;
  if (d.maxBufferBytes) readElements = Math.min(readElements, Math.floor(d.maxBufferBytes / 8));
  return { n, readElements };
}

/** Deterministic values in [-1, 1). */
function values(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s >>> 8) / 2 ** 23 - 1;
  }
  return out;
}

/** Median ms of a graph on the runner: warmed up, then timed until `budgetMs` (3 to 20 runs). */
async function medianMs(
  runner: Runner,
  graph: Graph,
  output: ReturnType<Graph['input']>,
  budgetMs: number,
): Promise<number> {
  const feeds = Object.fromEntries(graph.inputs.map((i, k) => [i.name, values(numel(i.tensor.shape), k + 1)]));
  const prepared = await runner.prepare(graph, [output], mapWeights(new Map()));
  try {
    const run = prepared.timedRun ? () => prepared.timedRun!(feeds) : () => prepared.run(feeds);
    await run();
    await run();
    const samples: number[] = [];
    const started = Date.now();
    while (samples.length < 20 && (samples.length < 3 || Date.now() - started < budgetMs))
      samples.push(await timeOnce(run));
    return summarize(samples).median;
  } finally {
    await prepared.release();
  }
}

/** The runtime's matmul throughput and read bandwidth, or null where they say nothing (the reference). */
export async function measureDeviceLimits(runner: Runner, budgetMs = 600): Promise<DeviceLimits | null> {
  const size = sizes(runner.description);
  if (!size) return null;
  const { n, readElements } = size;

  const mm = new Graph();
  const product = mm.matmul(mm.input('a', [n, n]), mm.input('b', [n, n]));
  const matmulMs = await medianMs(runner, mm, mm.reduce('sum', product, 1), budgetMs);

  const rd = new Graph();
  const cols = 4096;
  const rows = Math.max(1, Math.floor(readElements / cols));
  const readMs = await medianMs(runner, rd, rd.reduce('sum', rd.input('x', [rows, cols]), 1), budgetMs);
  const bytes = rows * cols * 4;
  return {
    runtime: runner.description.id,
    // The row sum after the matmul is n² adds against 2n³ flops: left out of the rate.
    matmul: { n, medianMs: matmulMs, gflopsPerSecond: (2 * n ** 3) / (matmulMs * 1e6) },
    read: { bytes, medianMs: readMs, gbPerSecond: bytes / (readMs * 1e6) },
  };
}
