/**
 * Softmax attention, the one definition: the official stage-4 PVT `Attention`
 * (docs/MATHS.md §2.4): q = W_q·x, [k; v] = W_kv·x', out = proj(softmax(q·kᵀ·dh^-½)·v), where x' is x,
 * or with `srRatio > 1` (PVT spatial reduction, `softmax_sr`) LayerNorm(Conv2d_sr×sr,stride sr(x)).
 *
 * `maxScoreElements` tiles the query rows so no score tensor exceeds it: onnxruntime's WebGPU
 * Softmax is silently wrong and tfjs-webgpu returns zeros above the adapter's
 * maxStorageBufferBindingSize (docs/RUNTIMES.md §1, §3). The maths is unchanged by tiling (rows
 * of a softmax are independent).
 */
import type { Graph, Tensor } from '../graph';
import type { AttentionProbe } from './probe';

export interface SoftmaxShape {
  batch: number;
  /** Query/key tokens; with a cls token first, tokens = 1 + gridH·gridW. */
  tokens: number;
  gridH: number;
  gridW: number;
  dim: number;
  heads: number;
  /** PVT spatial-reduction ratio for K/V; 1 = plain softmax attention. */
  srRatio: number;
  /** Eps of the spatial-reduction LayerNorm (PVT: nn.LayerNorm default 1e-5). */
  srNormEps: number;
  /** Largest score tile (elements) a runtime can hold; Infinity = no tiling. */
  maxScoreElements: number;
}

/**
 * softmax(q·kᵀ/√dh) over the keys, [..., n, dh] × [..., dh, T] → [..., n, T]: the one softmax
 * weighting, shared by self-attention (with or without spatial reduction) and CaiT's class attention.
 */
export function softmaxWeights(g: Graph, q: Tensor, kT: Tensor): Tensor {
  const dh = q.shape[q.shape.length - 1]!;
  return g.softmax(g.scale(g.matmul(q, kT), 1 / Math.sqrt(dh)));
}

/** `x` is [B, N, D]; weights under `${prefix}.q`, `.kv`, `.proj` (and `.sr`, `.norm`). */
export function softmaxAttention(g: Graph, x: Tensor, prefix: string, s: SoftmaxShape, probe?: AttentionProbe): Tensor {
  const { batch: B, tokens: N, dim: D, heads: h } = s;
  const dh = D / h;
  const q = g.transpose(g.reshape(g.linear(x, `${prefix}.q`, D, D), [B, N, h, dh]), [0, 2, 1, 3]); // [B,h,N,dh]
  let kvSource = x;
  let kvTokens = N;
  if (s.srRatio > 1) {
    if (N !== s.gridH * s.gridW)
      throw new Error('softmax_sr: spatial reduction needs a token grid without a cls token');
    const image = g.reshape(g.transpose(x, [0, 2, 1]), [B, D, s.gridH, s.gridW]);
    const reduced = g.conv2d(
      image,
      g.weight(`${prefix}.sr.weight`, [D, D, s.srRatio, s.srRatio]),
      g.weight(`${prefix}.sr.bias`, [D]),
      { stride: s.srRatio },
    );
    const [, , rh, rw] = reduced.shape as [number, number, number, number];
    kvTokens = rh * rw;
    const rows = g.transpose(g.reshape(reduced, [B, D, kvTokens]), [0, 2, 1]);
    kvSource = g.layerNorm(
      rows,
      g.weight(`${prefix}.norm.weight`, [D]),
      g.weight(`${prefix}.norm.bias`, [D]),
      s.srNormEps,
    );
  }
  // kv rows 0..D−1 are K, D..2D−1 are V, head-major inside each (§2.4).
  const kvProjection = g.dense(`${prefix}.kv`, D, 2 * D);
  const keysAndValues = (source: Tensor, n: number): [Tensor, Tensor] => {
    const kv = g.transpose(g.reshape(kvProjection(source), [B, n, 2, h, dh]), [2, 0, 3, 1, 4]); // [2,B,h,n,dh]
    return [g.reshape(g.slice(kv, 0, 0, 1), [B, h, n, dh]), g.reshape(g.slice(kv, 0, 1, 2), [B, h, n, dh])];
  };
  const [k, v] = keysAndValues(kvSource, kvTokens);
  const kT = g.transpose(k, [0, 1, 3, 2]);

  const rowsPerTile = Math.max(1, Math.floor(s.maxScoreElements / (B * h * kvTokens)));
  const tiles: Tensor[] = [];
  for (let start = 0; start < N; start += rowsPerTile) {
    const qTile = rowsPerTile >= N ? q : g.slice(q, 2, start, Math.min(N, start + rowsPerTile));
    tiles.push(g.matmul(softmaxWeights(g, qTile, kT), v));
  }
  const out = tiles.length === 1 ? tiles[0]! : g.concat(tiles, 2);
  if (probe) {
    const row = softmaxWeights(g, g.slice(q, 2, probe.query, probe.query + 1), kT); // [B,h,1,T]
    probe.map = g.reshape(row, [B, h, kvTokens]);
    const reduced = s.srRatio > 1;
    probe.keys = reduced
      ? { h: Math.floor(s.gridH / s.srRatio), w: Math.floor(s.gridW / s.srRatio), cls: false }
      : { h: s.gridH, w: s.gridW, cls: N === s.gridH * s.gridW + 1 };
    probe.meaning = `softmax attention row (sums to 1 over ${reduced ? `the ${s.srRatio}×${s.srRatio}-reduced keys` : 'the keys'})`;
    const quarter = (t: Tensor) => g.scale(t, 1 / Math.sqrt(Math.sqrt(dh)));
    if (reduced) {
      // The unreduced keys and values of the same projection: what exact attention would use.
      const [kFull, vFull] = keysAndValues(x, N);
      probe.operands = { q: quarter(q), k: quarter(kFull), v: vFull, reduced: { k: quarter(k), v } };
    } else probe.operands = { q: quarter(q), k: quarter(k), v };
    probe.operands.input = x;
    probe.operands.prefix = prefix;
    // Every query's weights at once (the layer's tiles are rows of this; read only when asked for).
    probe.factors = { kind: 'softmax', weights: softmaxWeights(g, q, kT), values: v };
  }
  const merged = g.reshape(g.transpose(out, [0, 2, 1, 3]), [B, N, D]);
  return g.linear(merged, `${prefix}.proj`, D, D);
}
