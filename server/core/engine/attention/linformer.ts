/**
 * Linformer attention, the one definition (docs/MATHS.md §6A), as lucidrains/linformer
 * `linformer/linformer.py` (`LinformerSelfAttention`, at 970e1c3) computes it, per (batch, head):
 *   out_h = softmax(Q_h·(E·K_h)ᵀ/√d)·(F·V_h),  E, F ∈ ℝ^{k×n} learned, shared by every head;
 * with q = W_q·x, [k; v] = W_kv·x (head-major, as softmax.ts) and out projected by W_proj.
 * E and F act on the token axis of the full-width K and V before the heads are split
 * (lucidrains' `einsum('bnd,nk->bkd')`), which is the same as per head because they mix tokens,
 * not channels. They are stored as `${prefix}.E` / `${prefix}.F`, [k, n], the layout of fairseq's
 * `compress_k` / `compress_v` (`nn.Linear(max_seq_len, k, bias=False)`, examples/linformer/
 * linformer_src/modules/multihead_linear_attention.py); lucidrains keeps the transpose, [n, k].
 *
 * Two places where the references differ and this follows lucidrains: fairseq compresses x before
 * its K/V projections (E·x, then W_k), lucidrains compresses the projected K and V. The two agree
 * only without a projection bias — here the kv projection has one (as every attention of this
 * repository), so E·(x·W_kᵀ + 1·bᵀ) = E·x·W_kᵀ + (E·1)·bᵀ, not fairseq's E·x·W_kᵀ + 1·bᵀ. And
 * lucidrains has no bias on its q/k/v projections at all.
 */
import type { Graph, Tensor } from '../graph';
import type { AttentionProbe } from './probe';
import { softmaxWeights } from './softmax';

export interface LinformerShape {
  batch: number;
  tokens: number;
  dim: number;
  heads: number;
  /** Projected length k (lucidrains' default 256). */
  k: number;
}

/** `x` is [B, N, D]; weights under `${prefix}.q`, `.kv`, `.proj`, `.E`, `.F`. */
export function linformerAttention(
  g: Graph,
  x: Tensor,
  prefix: string,
  s: LinformerShape,
  probe?: AttentionProbe,
): Tensor {
  const { batch: B, tokens: N, dim: D, heads: h, k } = s;
  const dh = D / h;
  if (!Number.isInteger(dh)) throw new Error(`Linformer attention: width ${D} does not split into ${h} heads`);
  if (x.shape[1] !== N) {
    throw new Error(
      `Linformer attention: ${x.shape[1]} tokens, but E and F were made for ${N} (they are [k, tokens]: a Linformer layer is tied to one input size)`,
    );
  }
  const heads = (t: Tensor, n: number) => g.transpose(g.reshape(t, [B, n, h, dh]), [0, 2, 1, 3]); // [B,h,n,dh]
  const q = heads(g.linear(x, `${prefix}.q`, D, D), N);
  const kv = g.linear(x, `${prefix}.kv`, D, 2 * D); // [B,N,2D]: K in columns 0..D−1, V in D..2D−1
  const e = g.weight(`${prefix}.E`, [k, N]);
  const f = g.weight(`${prefix}.F`, [k, N]);
  // [k, N] × [B, N, D] → [B, k, D]: the compression along the tokens, all heads at once.
  const keys = heads(g.matmul(e, g.slice(kv, 2, 0, D)), k);
  const values = heads(g.matmul(f, g.slice(kv, 2, D, 2 * D)), k);
  const kT = g.transposeLast2(keys); // [B,h,dh,k]
  const out = g.matmul(softmaxWeights(g, q, kT), values); // [B,h,N,dh]
  if (probe) {
    // out_i = P_i·(F·V) = (P_i·F)·V: the row over the N tokens is exact because F is linear.
    const i = probe.query;
    const row = g.matmul(softmaxWeights(g, g.slice(q, 2, i, i + 1), kT), f); // [B,h,1,N]
    probe.map = g.reshape(row, [B, h, N]);
    probe.meaning = `Linformer implied attention row softmax(qᵢ(E·K)ᵀ/√d)·F over the ${N} tokens (exact, since F is linear; its sum is the weighted mean of F's row sums, 1 only if those are, and entries can be negative)`;
    // The uncompressed keys and values, per head: what exact attention would use.
    const quarter = (t: Tensor) => g.scale(t, 1 / Math.sqrt(Math.sqrt(dh)));
    probe.operands = {
      q: quarter(q),
      k: quarter(heads(g.slice(kv, 2, 0, D), N)),
      v: heads(g.slice(kv, 2, D, 2 * D), N),
      linformer: { e, f },
      input: x,
      prefix,
    };
    // The weights the output uses, every query's row: the same softmaxWeights on the same tensors.
    probe.factors = { kind: 'linformer', weights: softmaxWeights(g, q, kT), f };
  }
  const merged = g.reshape(g.transpose(out, [0, 2, 1, 3]), [B, N, D]);
  return g.linear(merged, `${prefix}.proj`, D, D);
}
