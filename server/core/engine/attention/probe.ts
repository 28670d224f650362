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
  /** SOFT: the layer's input x [B, tokens, D] and its weights' key path, from which its landmarks can be rebuilt for another stride. */
  input?: Tensor;
  prefix?: string;
  /** PVT spatial reduction: the reduced keys (scaled likewise) and values the layer attends to; k and v above are the unreduced ones. */
  reduced?: { k: Tensor; v: Tensor };
  /** Linformer: its E and F, [k, tokens]. */
  linformer?: { e: Tensor; f: Tensor };
}
