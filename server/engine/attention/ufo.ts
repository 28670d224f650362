/**
 * UFO attention, the one definition (MODELS.md §5.3, the seed implementation exactly):
 * out = fc_o( XNorm(Q, γ) · XNorm(KᵀV, γ) ), XNorm(t, γ) = γ·t/‖t‖₂ over the last axis,
 * one γ of shape [1, h, 1, 1] shared by both XNorms; no epsilon, as the seed code.
 */
import type { Graph, Tensor } from '../graph';
import type { AttentionProbe } from './probe';

export interface UfoShape {
  batch: number;
  tokens: number;
  dim: number;
  heads: number;
}

/**
 * γ·t/‖t‖ as t·(γ/‖t‖): the division and γ act on the per-row norms ([…, 1]), so a Q-sized
 * tensor is read and written once instead of twice. At tens of thousands of tokens UFO is
 * memory-bound (every full-size pass costs DRAM bandwidth), so the saved pass is measurable.
 */
function xnorm(g: Graph, t: Tensor, gamma: Tensor): Tensor {
  const norm = g.unary('sqrt', g.reduce('sumSquares', t, -1));
  return g.mul(t, g.div(gamma, norm));
}

/** `x` is [B, N, D]; weights live under `${prefix}.fc_q` … `${prefix}.gamma`. */
export function ufoAttention(g: Graph, x: Tensor, prefix: string, s: UfoShape, probe?: AttentionProbe): Tensor {
  const { batch: B, tokens: N, dim: D, heads: h } = s;
  const d = D / h;
  const split = (t: Tensor, perm: number[]) => g.transpose(g.reshape(t, [B, N, h, d]), perm);
  const q = split(g.linear(x, `${prefix}.fc_q`, D, D), [0, 2, 1, 3]); // [B,h,N,d]
  const k = split(g.linear(x, `${prefix}.fc_k`, D, D), [0, 2, 3, 1]); // [B,h,d,N]
  const v = split(g.linear(x, `${prefix}.fc_v`, D, D), [0, 2, 1, 3]); // [B,h,N,d]
  const gamma = g.weight(`${prefix}.gamma`, [1, h, 1, 1]);
  const kv = g.matmul(k, v); // KᵀV first: [B,h,d,d], linear in N
  const qn = xnorm(g, q, gamma);
  const out = g.matmul(qn, xnorm(g, kv, gamma)); // [B,h,N,d]
  if (probe) {
    // XNorm(KᵀV) scales row a of KᵀV by γ/‖(KᵀV)_a‖, so out_i = Σ_j w_ij·v_j with
    // w_ij = Σ_a XNorm(q)_i[a]·γ/‖(KᵀV)_a‖·k_j[a]: the exact token weights UFO implies.
    const rowScale = g.div(gamma, g.unary('sqrt', g.reduce('sumSquares', kv, -1))); // [B,h,d,1]
    const row = g.matmul(g.slice(qn, 2, probe.query, probe.query + 1), g.mul(k, rowScale)); // [B,h,1,N]
    probe.map = g.reshape(row, [B, h, N]);
    probe.meaning = 'UFO implied token weights XNorm(q)·diag(γ/‖KᵀV‖)·kⱼ (out = Σⱼ wⱼ·vⱼ exactly; linear, not normalised, can be negative)';
  }
  const merged = g.reshape(g.transpose(out, [0, 2, 1, 3]), [B, N, D]);
  return g.linear(merged, `${prefix}.fc_o`, D, D);
}
