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
}
