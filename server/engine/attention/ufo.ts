/**
 * UFO attention, the one definition (MODELS.md §5.3, the seed implementation exactly):
 * out = fc_o( XNorm(Q, γ) · XNorm(KᵀV, γ) ), XNorm(t, γ) = γ·t/‖t‖₂ over the last axis,
 * one γ of shape [1, h, 1, 1] shared by both XNorms; no epsilon, as the seed code.
 */
import type { Graph, Tensor } from '../graph';

export interface UfoShape {
  batch: number;
  tokens: number;
  dim: number;
  heads: number;
}

function xnorm(g: Graph, t: Tensor, gamma: Tensor): Tensor {
  const norm = g.unary('sqrt', g.reduce('sumSquares', t, -1));
  return g.mul(g.div(t, norm), gamma);
}

/** `x` is [B, N, D]; weights live under `${prefix}.fc_q` … `${prefix}.gamma`. */
export function ufoAttention(g: Graph, x: Tensor, prefix: string, s: UfoShape): Tensor {
  const { batch: B, tokens: N, dim: D, heads: h } = s;
  const d = D / h;
  const split = (t: Tensor, perm: number[]) => g.transpose(g.reshape(t, [B, N, h, d]), perm);
  const q = split(g.linear(x, `${prefix}.fc_q`, D, D), [0, 2, 1, 3]); // [B,h,N,d]
  const k = split(g.linear(x, `${prefix}.fc_k`, D, D), [0, 2, 3, 1]); // [B,h,d,N]
  const v = split(g.linear(x, `${prefix}.fc_v`, D, D), [0, 2, 1, 3]); // [B,h,N,d]
  const gamma = g.weight(`${prefix}.gamma`, [1, h, 1, 1]);
  const kv = g.matmul(k, v); // KᵀV first: [B,h,d,d], linear in N
  const out = g.matmul(xnorm(g, q, gamma), xnorm(g, kv, gamma)); // [B,h,N,d]
  const merged = g.reshape(g.transpose(out, [0, 2, 1, 3]), [B, N, D]);
  return g.linear(merged, `${prefix}.fc_o`, D, D);
}
