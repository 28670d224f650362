/**
 * Seeded random weights for a graph, for benchmarks and for the pinv analysis before a
 * checkpoint is loaded. They follow the official initialisation closely enough that
 * activations have realistic scales: trunc-normal(0.02) for Linear/patch weights (§2.9),
 * fan-in scaled uniform for convolutions, LayerNorm/BatchNorm affine at identity, zero biases,
 * layer-scale and UFO γ at 1.
 */
import { numel } from '../shape';
import type { WeightSource } from './lowerings/reference';
import type { Graph } from './graph';

/** Mulberry32: small, fast, and identical on every platform. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box–Muller) from a uniform source. */
export function normals(n: number, rand: () => number, std = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

function initialValues(key: string, shape: readonly number[], rand: () => number): Float32Array {
  const n = numel(shape);
  const leaf = key.slice(key.lastIndexOf('.') + 1);
  if (leaf === 'running_var' || /(^|\.)gamma\d?$/.test(key)) return new Float32Array(n).fill(1);
  if (leaf === 'bias' || leaf === 'running_mean') return new Float32Array(n);
  if (leaf === 'weight' && shape.length === 1) return new Float32Array(n).fill(1); // LayerNorm / BatchNorm affine
  if (shape.length === 4) {
    const fanIn = numel(shape.slice(1));
    const bound = 1 / Math.sqrt(fanIn);
    return Float32Array.from({ length: n }, () => (2 * rand() - 1) * bound);
  }
  // Truncated normal, std 0.02, cut at ±2 std.
  return normals(n, rand, 0.02).map((x) => Math.max(-0.04, Math.min(0.04, x)));
}

export function randomWeights(graph: Graph, seed = 0): WeightSource & { bytes: number } {
  const map = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  let bytes = 0;
  for (const { key, tensor } of graph.weights) {
    if (map.has(key)) continue;
    // One stream per key, so a weight does not change when another layer is added to the graph.
    let h = seed;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
    const data = initialValues(key, tensor.shape, seededRandom(h));
    bytes += data.byteLength;
    map.set(key, { shape: tensor.shape, data });
  }
  return { get: (key) => map.get(key), bytes };
}
