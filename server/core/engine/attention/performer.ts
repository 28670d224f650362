/**
 * Performer FAVOR+ attention with the positive softmax kernel, the one definition
 * (docs/MATHS.md §6A), as lucidrains/performer-pytorch `performer_pytorch/performer_pytorch.py`
 * (`softmax_kernel`, `linear_attention`, `gaussian_orthogonal_random_matrix`,
 * `orthogonal_matrix_chunk`, at fc8b784) and google-research
 * `performer/fast_attention/jax/fast_attention.py` (`nonnegative_softmax_kernel_feature_creator`,
 * `GaussianOrthogonalRandomMatrix`) compute it, per (batch, head), d = head width, m = features:
 *   x̂ = x·d^-¼;
 *   φ(x) = m^-½ · (exp(ω·x̂ − ‖x̂‖²/2 − stab) + ε),  ε = 1e-4 (lucidrains' default);
 *     stab = max over the m features of the row for a query, the max over all N keys and all m
 *     features of one (batch, head) for the keys (`torch.amax(data_dash, dim=(-1, -2))`);
 *   out = D⁻¹·φ(Q)·(φ(K)ᵀ·V),  D = φ(Q)·(φ(K)ᵀ·1)  (the N×N matrix is never formed);
 * with q = W_q·x, [k; v] = W_kv·x (head-major, as softmax.ts) and out projected by W_proj.
 *
 * ω (m×d) is a fixed Gaussian orthogonal random matrix drawn from a seed: ⌈m/d⌉ blocks, each the
 * transposed Q of the QR of a d×d Gaussian matrix (the last block cut to the remaining rows), each
 * row then multiplied by the norm of an independent d-dim Gaussian vector (lucidrains'
 * `scaling = 0`), so every row is marginally an N(0, I_d) draw while rows of a block are exactly
 * orthogonal. All heads share one ω, as lucidrains' `repeat(projection_matrix, 'j d -> b h j d')`.
 * It enters the graph as a constant, not a weight: lucidrains registers it as a buffer
 * (`projection_matrix`) and redraws it every 1000 training steps, but ω is not learned, and a
 * model's checkpoint stays what its learned weights are.
 *
 * The stabilisers matter only through ε: they rescale a query's features (or all keys of a head)
 * by one factor, which D⁻¹ cancels, but ε is added after the rescaling. Google's JAX code adds
 * ε = 1e-6 (`numerical_stabilizer`) and guards D (D + 2·1e-6 where |D| ≤ 1e-6); lucidrains
 * neither, which is what this follows.
 */
import type { Graph, Tensor } from '../graph';
import { qrOrthonormal } from '../linalg';
import { normals, seededRandom } from '../weights';
import type { AttentionProbe } from './probe';

export interface PerformerShape {
  batch: number;
  tokens: number;
  dim: number;
  heads: number;
  /** Random features m (lucidrains' nb_features). */
  features: number;
  /** Seed of ω; one seed, one ω, on every runtime. */
  seed: number;
}

/** lucidrains' ε in `softmax_kernel`. */
export const PERFORMER_EPS = 1e-4;

/** lucidrains' default feature count int(d·ln d): 110 for d = 32, 266 for d = 64. */
export function defaultPerformerFeatures(d: number): number {
  return Math.floor(d * Math.log(d));
}

/**
 * ω, m×d row-major, float64: `gaussian_orthogonal_random_matrix(m, d, scaling = 0)` with this
 * repository's generator. The draws come in lucidrains' order — the blocks' Gaussian matrices one
 * after another, then the m×d matrix whose row norms scale the rows — from seededRandom(seed)
 * through Box–Muller (weights.ts), so the matrix is the same on every platform. The QR is
 * sign-normalised (linalg.qrOrthonormal), i.e. lucidrains' former `qr_uniform_q = True`; the
 * current code takes torch's Householder Q as it comes. Either way the rows of a block are
 * orthonormal before scaling.
 */
export function performerFeatures(headDim: number, m: number, seed: number): Float64Array {
  const d = headDim;
  if (!Number.isInteger(d) || d < 1 || !Number.isInteger(m) || m < 1)
    throw new RangeError(`performerFeatures: head width ${d} and feature count ${m} must be positive integers`);
  const rand = seededRandom(seed);
  const omega = new Float64Array(m * d);
  for (let start = 0; start < m; start += d) {
    const q = qrOrthonormal(normals(d * d, rand), d);
    // orthogonal_matrix_chunk returns Qᵀ: its rows are Q's columns.
    const rows = Math.min(d, m - start);
    for (let i = 0; i < rows; i++) for (let j = 0; j < d; j++) omega[(start + i) * d + j] = q[j * d + i]!;
  }
  const scales = normals(m * d, rand);
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += scales[i * d + j]! * scales[i * d + j]!;
    const norm = Math.sqrt(s);
    for (let j = 0; j < d; j++) omega[i * d + j]! *= norm;
  }
  return omega;
}

/**
 * φ(x) for x [B, h, N, d] against ωᵀ [d, m] → [B, h, N, m] (lucidrains' `softmax_kernel`,
 * normalize_data = True). Queries subtract their own row max; keys one max per (batch, head).
 */
function softmaxKernelFeatures(g: Graph, x: Tensor, omegaT: Tensor, isQuery: boolean): Tensor {
  const d = x.shape[x.shape.length - 1]!;
  const m = omegaT.shape[1]!;
  const xs = g.scale(x, 1 / Math.sqrt(Math.sqrt(d)));
  const dash = g.matmul(xs, omegaT);
  // ‖x̂‖²/2 = (Σx²/2)·d^-½, as the code's `(diag_data / 2.0) * (data_normalizer ** 2)`, up to rounding.
  const diag = g.scale(g.reduce('sumSquares', xs, -1), 0.5);
  const rowMax = g.reduce('max', dash, -1); // [B, h, N, 1]
  const stab = isQuery ? rowMax : g.reduce('max', rowMax, -2); // [B, h, 1, 1] for keys
  const e = g.unary('exp', g.sub(g.sub(dash, diag), stab));
  return g.scale(g.addT(e, g.scalar(PERFORMER_EPS, 'performer.eps')), 1 / Math.sqrt(m));
}

/** `x` is [B, N, D]; weights under `${prefix}.q`, `.kv`, `.proj` (ω is a constant, see above). */
export function performerAttention(
  g: Graph,
  x: Tensor,
  prefix: string,
  s: PerformerShape,
  probe?: AttentionProbe,
): Tensor {
  const { batch: B, tokens: N, dim: D, heads: h, features: m } = s;
  const dh = D / h;
  if (!Number.isInteger(dh)) throw new Error(`Performer attention: width ${D} does not split into ${h} heads`);
  if (x.shape[1] !== N) throw new Error(`Performer attention: ${x.shape[1]} tokens, the shape says ${N}`);
  const q = g.transpose(g.reshape(g.linear(x, `${prefix}.q`, D, D), [B, N, h, dh]), [0, 2, 1, 3]); // [B,h,N,dh]
  const kv = g.transpose(g.reshape(g.linear(x, `${prefix}.kv`, D, 2 * D), [B, N, 2, h, dh]), [2, 0, 3, 1, 4]);
  const k = g.reshape(g.slice(kv, 0, 0, 1), [B, h, N, dh]);
  const v = g.reshape(g.slice(kv, 0, 1, 2), [B, h, N, dh]);

  // ωᵀ built transposed once, so both feature matmuls take it as a shared right operand.
  const omega = performerFeatures(dh, m, s.seed);
  const omegaT = new Float64Array(dh * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < dh; j++) omegaT[j * m + i] = omega[i * dh + j]!;
  const wT = g.constant(omegaT, [dh, m], `performer.omegaT(seed ${s.seed})`);
  const phiQ = softmaxKernelFeatures(g, q, wT, true); // [B,h,N,m]
  const phiK = softmaxKernelFeatures(g, k, wT, false); // [B,h,N,m]

  // linear_attention: D = φ(Q)·Σ_j φ(k_j), context = φ(K)ᵀV, out = (φ(Q)·context)/D.
  const kSum = g.reduce('sum', phiK, -2); // [B,h,1,m]
  const denom = g.matmul(phiQ, g.transposeLast2(kSum)); // [B,h,N,1]
  const context = g.matmul(g.transposeLast2(phiK), v); // [B,h,m,dh]
  const dInv = g.unary('reciprocal', denom);
  const out = g.mul(g.matmul(phiQ, context), dInv); // [B,h,N,dh]
  if (probe) {
    // Row i of D⁻¹φ(Q)φ(K)ᵀ, the N×N attention Performer implies: out_i = Σ_j row_j·v_j exactly.
    const i = probe.query;
    const row = g.mul(g.matmul(g.slice(phiQ, 2, i, i + 1), g.transposeLast2(phiK)), g.slice(dInv, 2, i, i + 1));
    probe.map = g.reshape(row, [B, h, N]);
    probe.meaning = `Performer implied attention row φ(qᵢ)·φ(K)ᵀ / (φ(qᵢ)·Σⱼφ(kⱼ)) with ${m} orthogonal random features (non-negative, sums to 1 over the keys; exactly the weights the output uses)`;
    const quarter = (t: Tensor) => g.scale(t, 1 / Math.sqrt(Math.sqrt(dh)));
    probe.operands = { q: quarter(q), k: quarter(k), v, input: x, prefix };
    probe.factors = { kind: 'performer', phiQ, phiK, dInv };
  }
  const merged = g.reshape(g.transpose(out, [0, 2, 1, 3]), [B, N, D]);
  return g.linear(merged, `${prefix}.proj`, D, D);
}
