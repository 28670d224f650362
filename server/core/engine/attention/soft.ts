/**
 * SOFT and SOFT-Norm attention, the one definition (docs/MATHS.md §1.2–1.5, ratio > 1 path),
 * exactly as the official `SoftmaxFreeAttention` + kernel compute it:
 *   Qs = W_q·x / dh^¼ (K = Qs, no key projection);
 *   landmarks L = GELU_erf(LayerNorm_1e-5(Conv2d_r×r,stride r(Qs))), one conv weight shared by heads;
 *   K1 = exp(−dist(Qs, L)/2), K2 = exp(−dist(L, L)/2);
 *   X = (K1·Newton(K2))·(K1ᵀ·V) [SOFT-Norm: Newton(K2) scaled by D^-½ on both sides]
 *       + depthwise Conv2d_k×k(V) per head;
 *   out = W_ff·combine_heads(X).
 */
import type { Graph, Tensor } from '../graph';
import type { AttentionProbe } from './probe';
import { newtonIterationGraph, symmetricNormaliseGraph, type PinvOptions } from './pinv';

/**
 * How dist(a, b) = Σ_c (a_c − b_c)² is evaluated.
 * - `expanded`: ‖a‖² + ‖b‖² − 2·a·b with a matmul (the official `kernel_method: torch`, the one the
 *   reference data was produced with); memory O(N·m).
 * - `direct`: broadcast subtraction and a sum (the official CUDA kernel's arithmetic, never
 *   negative); materialises N·m·dh values, so only for small shapes.
 */
export type DistanceMethod = 'expanded' | 'direct';

export interface SoftShape {
  batch: number;
  gridH: number;
  gridW: number;
  dim: number;
  heads: number;
  /** Landmark conv kernel and stride r (sr_ratio). */
  ratio: number;
  /**
   * Kernel and stride along the columns when they differ from `ratio`: a fixed landmark grid on a
   * rectangular token grid (StageSpec.landmarkGrid; the SOFT paper's Figure 1b keeps m = 49 on
   * 28×28p grids with 4×4p). Absent: `ratio`, the official square conv.
   */
  ratioW?: number;
  /** Depthwise conv kernel on V (conv_size); 0 turns the residual off. */
  convKernel: number;
  landmarkEps: number;
  newton: PinvOptions;
  /** SOFT-Norm's D^-½·K2⁺·D^-½ (§1.5). */
  normalised: boolean;
  distance: DistanceMethod;
}

/** Tensors a caller may also want out of the graph (the pinv analysis reads K2). */
export interface SoftParts {
  out: Tensor;
  landmarkKernel: Tensor;
  inverse: Tensor;
}

/** exp(−dist(a, b)/2) for a [..., n, d] and b [..., m, d] → [..., n, m]. */
export function gaussianKernel(g: Graph, a: Tensor, b: Tensor, method: DistanceMethod): Tensor {
  let dist: Tensor;
  if (method === 'expanded') {
    const an = g.reduce('sumSquares', a, -1); // [..., n, 1]
    const bn = g.transposeLast2(g.reduce('sumSquares', b, -1)); // [..., 1, m]
    const ab = g.matmul(a, g.transposeLast2(b));
    dist = g.sub(g.addT(an, bn), g.scale(ab, 2));
  } else {
    const r = a.shape.length;
    const a5 = g.reshape(a, [...a.shape.slice(0, r - 1), 1, a.shape[r - 1]!]); // [..., n, 1, d]
    const b5 = g.reshape(b, [...b.shape.slice(0, r - 2), 1, ...b.shape.slice(r - 2)]); // [..., 1, m, d]
    const summed = g.reduce('sum', g.unary('square', g.sub(a5, b5)), -1); // [..., n, m, 1]
    dist = g.reshape(summed, summed.shape.slice(0, -1));
  }
  return g.unary('exp', g.scale(dist, -0.5));
}

/** `x` is [B, N, D] with N = gridH·gridW (no cls token); weights under `${prefix}.W_q` … `${prefix}.ff`. */
export function softAttention(g: Graph, x: Tensor, prefix: string, s: SoftShape, probe?: AttentionProbe): SoftParts {
  const { batch: B, gridH: H, gridW: W, dim: D, heads: h, ratio: r } = s;
  const rw = s.ratioW ?? r;
  const N = H * W;
  const dh = D / h;
  if (x.shape[1] !== N) throw new Error(`SOFT attention: ${x.shape[1]} tokens for a ${H}×${W} grid`);
  const lh = Math.floor(H / r);
  const lw = Math.floor(W / rw);
  const m = lh * lw;
  if (m < 1)
    throw new Error(
      `SOFT attention: a ${H}×${W} grid has no ${r}×${rw} landmark (ratio too large for this resolution)`,
    );
  const attn = `${prefix}.attn`;

  const heads = (t: Tensor) => g.transpose(g.reshape(t, [B, N, h, dh]), [0, 2, 1, 3]); // [B,h,N,dh]
  const qs = g.scale(heads(g.linear(x, `${prefix}.W_q`, D, D)), 1 / Math.sqrt(Math.sqrt(dh)));
  const v = heads(g.linear(x, `${prefix}.W_v`, D, D));

  // Landmarks: every head's Qs as an image [B·h, dh, H, W] through the one shared conv.
  const image = g.transpose(g.reshape(qs, [B * h, H, W, dh]), [0, 3, 1, 2]);
  const conv = g.conv2d(image, g.weight(`${attn}.Qlandmark_op.weight`, [dh, dh, r, rw]), null, { stride: [r, rw] });
  const tokens = g.reshape(g.transpose(g.reshape(conv, [B * h, dh, m]), [0, 2, 1]), [B, h, m, dh]);
  const normed = g.layerNorm(
    tokens,
    g.weight(`${attn}.Qnorm_act.0.weight`, [dh]),
    g.weight(`${attn}.Qnorm_act.0.bias`, [dh]),
    s.landmarkEps,
  );
  const landmarks = g.gelu(normed, 'erf');

  const k1 = gaussianKernel(g, qs, landmarks, s.distance); // [B,h,N,m]
  const k2 = gaussianKernel(g, landmarks, landmarks, s.distance); // [B,h,m,m]
  const newtonIterates = newtonIterationGraph(g, k2, s.newton);
  const newton = newtonIterates.at(-1)!;
  let inverse = newton;
  if (s.normalised) inverse = symmetricNormaliseGraph(g, k2, inverse);
  // Keep the official association: never form the N×N product.
  let out = g.matmul(g.matmul(k1, inverse), g.matmul(g.transposeLast2(k1), v)); // [B,h,N,dh]
  if (probe) {
    // One row of the implied N×N attention: K1[q]·K2⁺·K1ᵀ, [B,h,1,m]·[m,m]·[m,N].
    const row = g.matmul(g.matmul(g.slice(k1, 2, probe.query, probe.query + 1), inverse), g.transposeLast2(k1));
    probe.map = g.reshape(row, [B, h, N]);
    probe.keys = { h: H, w: W, cls: false };
    probe.meaning = `${s.normalised ? 'SOFT-Norm' : 'SOFT'} implied attention row K1·K2⁺·K1ᵀ (Newton inverse as run; not normalised, can be negative; the depthwise-conv residual on V is not included)`;
    // No key projection: the keys are the queries (§1.2).
    probe.operands = { q: qs, k: qs, v, landmarks, input: x, prefix };
    probe.factors = { kind: 'soft', k1, k2, newton, inverse, iterates: newtonIterates };
  }

  if (s.convKernel > 0) {
    // Head g's single k×k filter runs over each of its dh channels (groups = h on [B·dh, h, H, W]).
    const k = s.convKernel;
    const vImage = g.reshape(g.transpose(g.reshape(v, [B, h, H, W, dh]), [0, 4, 1, 2, 3]), [B * dh, h, H, W]);
    const local = g.conv2d(vImage, g.weight(`${attn}.conv.weight`, [h, 1, k, k]), null, {
      pad: Math.floor(k / 2),
      groups: h,
    });
    out = g.addT(out, g.transpose(g.reshape(local, [B, dh, h, N]), [0, 2, 3, 1]));
  }
  const merged = g.reshape(g.transpose(out, [0, 2, 1, 3]), [B, N, D]);
  return { out: g.linear(merged, `${prefix}.ff`, D, D), landmarkKernel: k2, inverse };
}
