/**
 * UFO attention, the one definition (docs/MATHS.md §5.3, the seed implementation exactly):
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
  /**
   * Least tokens per tile (see tokenTiles; default: all tokens at once). Every op of UFO but the
   * KᵀV sum is token-wise, so a runtime that executes op by op on a CPU can run the layer tile by
   * tile: each tile's activations stay in cache and a large input streams from memory once per
   * pass instead of once per op. Same maths; KᵀV is summed tile by tile.
   */
  tokenTile?: number;
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

/**
 * [start, end) token ranges covering 0 … tokens: ⌊tokens/tile⌋ tiles (at least one) of equal size
 * ±1, so each holds at least `tile` tokens and fewer than 2·tile. Every tile costs a fixed set of
 * ops; a remainder tile, or splitting an input of less than two tiles, costs them for little data.
 */
export function tokenTiles(tokens: number, tile: number): [number, number][] {
  const count = Math.max(1, Math.min(tokens, Math.floor(tokens / Math.max(1, tile))));
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) out.push([Math.round((i * tokens) / count), Math.round(((i + 1) * tokens) / count)]);
  return out;
}

/** `x` is [B, N, D]; weights live under `${prefix}.fc_q` … `${prefix}.gamma`. */
export function ufoAttention(g: Graph, x: Tensor, prefix: string, s: UfoShape, probe?: AttentionProbe): Tensor {
  const { batch: B, tokens: N, dim: D, heads: h } = s;
  const d = D / h;
  const dense = (name: string) => g.dense(`${prefix}.${name}`, D, D);
  const [fcQ, fcK, fcV, fcO] = [dense('fc_q'), dense('fc_k'), dense('fc_v'), dense('fc_o')];
  const gamma = g.weight(`${prefix}.gamma`, [1, h, 1, 1]);
  // The probe reads every key at once; it runs at inference sizes, where one tile holds every token anyway.
  const tiles = tokenTiles(N, probe ? N : (s.tokenTile ?? N)).map(([a, b]) => ({
    x: a === 0 && b === N ? x : g.slice(x, 1, a, b),
    n: b - a,
  }));
  const heads = (t: Tensor, n: number, perm: number[]) => g.transpose(g.reshape(t, [B, n, h, d]), perm);
  // Pass 1: KᵀV [B,h,d,d], linear in N, summed over the tiles.
  let kv: Tensor | null = null;
  let firstKeys: Tensor | null = null; // every key when there is one tile, as with a probe
  for (const t of tiles) {
    const k = heads(fcK(t.x), t.n, [0, 2, 3, 1]); // [B,h,d,n]
    const part = g.matmul(k, heads(fcV(t.x), t.n, [0, 2, 1, 3])); // Kᵀ [B,h,d,n] · V [B,h,n,d]
    kv = kv ? g.addT(kv, part) : part;
    firstKeys ??= k;
  }
  const kvn = xnorm(g, kv!, gamma);
  // Pass 2: each tile's queries against XNorm(KᵀV), projected out.
  const outs = tiles.map((t) => {
    const qn = xnorm(g, heads(fcQ(t.x), t.n, [0, 2, 1, 3]), gamma); // [B,h,n,d]
    if (probe) {
      // XNorm(KᵀV) scales row a of KᵀV by γ/‖(KᵀV)_a‖, so out_i = Σ_j w_ij·v_j with
      // w_ij = Σ_a XNorm(q)_i[a]·γ/‖(KᵀV)_a‖·k_j[a]: the exact token weights UFO implies.
      const rowScale = g.div(gamma, g.unary('sqrt', g.reduce('sumSquares', kv!, -1))); // [B,h,d,1]
      const row = g.matmul(g.slice(qn, 2, probe.query, probe.query + 1), g.mul(firstKeys!, rowScale)); // [B,h,1,N]
      probe.map = g.reshape(row, [B, h, N]);
      probe.meaning =
        'UFO implied token weights XNorm(q)·diag(γ/‖KᵀV‖)·kⱼ (out = Σⱼ wⱼ·vⱼ exactly; linear, not normalised, can be negative)';
    }
    const out = g.matmul(qn, kvn); // [B,h,n,d]
    return fcO(g.reshape(g.transpose(out, [0, 2, 1, 3]), [B, t.n, D]));
  });
  return outs.length === 1 ? outs[0]! : g.concat(outs, 1);
}
