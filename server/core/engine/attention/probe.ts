/**
 * Asks an attention layer, while its graph is built, for what it attends to from one query
 * token: each attention definition knows its own weights (softmax's row, SOFT's implied
 * K1·K2⁺·K1ᵀ row, UFO's XNorm(q)·k) and adds that row to the graph next to its output, so the
 * maps come from the very tensors the layer computes — no second copy of any attention.
 */
import type { Tensor } from '../graph';

export interface AttentionProbe {
  /** Token index of the query (with a cls token first, 0 is the cls token). */
  query: number;
  /** Filled by the attention: [B, heads, keys] weights of the query over the keys. */
  map?: Tensor;
  /** Filled by the attention: what the numbers are, for the people reading them. */
  meaning?: string;
  /** Filled by the attention: the grid the keys lie on (rows, cols) and whether a cls key comes first. */
  keys?: { h: number; w: number; cls: boolean };
  /** Filled by the attentions that have them: the tensors the layer attends with (see AttentionOperands). */
  operands?: AttentionOperands;
  /** Filled by the attentions that have them: the factors of the attention the layer implies (see AttentionFactors). */
  factors?: AttentionFactors;
}

/**
 * The per-head tensors an attention layer computes from its input, [B, heads, tokens, dh] each, so
 * an analysis can put other attentions on exactly the same Q, K, V (the approximation-quality job,
 * server/jobs/approx/). `q` and `k` are scaled by dh^-¼ each, the scaling SOFT, Nyströmformer and
 * Performer apply (docs/MATHS.md §1.3, §6A), so softmax(q·kᵀ) is the exact softmax attention they
 * define. Only built into the graph when a probe asks, and evaluated only when read.
 */
export interface AttentionOperands {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  /** SOFT: its landmarks L [B, heads, m, dh] (its q and k are then both its Qs). */
  landmarks?: Tensor;
  /**
   * The layer's input x [B, tokens, D] and its weights' key path: SOFT's landmarks can be rebuilt
   * from them for another stride, and another attention definition put on the same x and projections.
   */
  input?: Tensor;
  prefix?: string;
  /** PVT spatial reduction: the reduced keys (scaled likewise) and values the layer attends to; k and v above are the unreduced ones. */
  reduced?: { k: Tensor; v: Tensor };
  /** Linformer: its E and F, [k, tokens]. */
  linformer?: { e: Tensor; f: Tensor };
}

/**
 * The factors of the N×N attention a layer implies, as it computes them (per (batch, head), leading
 * [B, heads]; m landmarks, features or projected keys), so an analysis can multiply the matrix out
 * block by block and compare it with exact attention (server/jobs/approx/). Like `operands`, only
 * built when a probe asks, and evaluated only when read.
 * - SOFT: Ŝ = K1·inverse·K1ᵀ; K1 [N, m], K2 [m, m], `newton` the Newton–Raphson iterate V ≈ K2⁻¹ the
 *   layer runs, `inverse` what it multiplies by (SOFT-Norm: D^-½·V·D^-½, else `newton` itself),
 *   `iterates` V_0 … V_T (the last is `newton`).
 * - Nyströmformer: Ŝ = F·Z·B; F [N, m], A [m, m] (what the iteration inverts), B [m, N], Z [m, m],
 *   `iterates` Z_0 … Z_T (the last is `z`).
 * - Performer: Ŝ = D⁻¹·φ(Q)·φ(K)ᵀ; φ(Q), φ(K) [N, m], D⁻¹ [N, 1].
 * - Linformer: Ŝ = P·F; P = softmax(q·(E·k)ᵀ/√d) [N, k], F [k, N] (shared by the heads).
 * - softmax: the weights P = softmax(q·kᵀ/√d) [N, T] over its T keys (the reduced ones with spatial
 *   reduction) and the values V [T, dh] they weight.
 */
export type AttentionFactors =
  | { kind: 'soft'; k1: Tensor; k2: Tensor; newton: Tensor; inverse: Tensor; iterates: Tensor[] }
  | { kind: 'nystrom'; f: Tensor; a: Tensor; b: Tensor; z: Tensor; iterates: Tensor[] }
  | { kind: 'performer'; phiQ: Tensor; phiK: Tensor; dInv: Tensor }
  | { kind: 'linformer'; weights: Tensor; f: Tensor }
  | { kind: 'softmax'; weights: Tensor; values: Tensor };
