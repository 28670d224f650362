/**
 * What the gradient tests share: a scalar loss over every output element, the small four-stage model
 * every attention fits in, and deterministic weights for any graph.
 */
import type { Graph, Tensor } from '../../server/core/engine/graph';
import type { ModelSpec } from '../../server/core/models/spec';
import { numel } from '../../server/core/shape';
import { specOf } from './fixtures';
import { values } from './op-cases';

/** Σᵢ ⟨outᵢ, cᵢ⟩ with fixed random cᵢ: a scalar whose gradient exercises every output element. */
export function innerProductLoss(g: Graph, outputs: Tensor[], seed: number): Tensor {
  let total: Tensor | null = null;
  outputs.forEach((out, i) => {
    const n = numel(out.shape);
    const c = g.constant(values(n, seed + 31 * i), out.shape, `cotangent${i}`);
    const s = g.reduce('sum', g.reshape(g.mul(out, c), [1, n]), -1);
    total = total ? g.addT(total, s) : s;
  });
  return total!;
}

/** A four-stage model small enough for finite differences on every attention (in stages 1 and 2). */
export function smallSpec(attention: string): ModelSpec {
  return specOf(
    [
      'embed_dims: [8, 12, 16, 16]',
      'num_heads: [2, 2, 2, 2]',
      'depths: [1, 1, 1, 1]',
      'mlp_ratios: [2, 2, 2, 2]',
      'sr_ratios: [2, 2, 1, 1]',
      `attention: [${attention}, ${attention}, softmax, softmax]`,
      'performer_features: 6',
      'nystrom_iterations: 6',
      'linformer_k: 4',
      'num_classes: 5',
      'newton_maxiter: 4',
      '',
    ].join('\n'),
  );
}

/** Deterministic weights for every weight key of `g`: small linears and biases, norm scales near 1. */
export function randomWeights(g: Graph, seed: number): Map<string, { shape: number[]; data: Float32Array }> {
  const w = new Map<string, { shape: number[]; data: Float32Array }>();
  g.weights.forEach(({ key, tensor }, i) => {
    if (w.has(key)) return;
    const n = numel(tensor.shape);
    const norm = /norm\d*\.weight$|\.norm\.weight$/.test(key);
    const spread = key.endsWith('.bias') ? 0.1 : 0.4;
    const data = values(n, seed * 977 + i, -spread, spread);
    if (norm) for (let j = 0; j < n; j++) data[j] = 1 + data[j]!;
    w.set(key, { shape: [...tensor.shape], data });
  });
  return w;
}
