/**
 * Nyströmformer attention as the SOFT paper ran it on images, the one definition (docs/MATHS.md
 * §6.1, §6A), following mlpen/Nystromformer `LRA/code/attention_nystrom.py` and
 * `ImageNet/T2T-ViT/models/token_nystromformer.py` (`NysAttention`), per (batch, head), d = head width:
 *   Q = W_q·x / d^¼,  K = W_k·x / d^¼,  V = W_v·x   ([k; v] = W_kv·x, head-major as softmax.ts);
 *   landmarks Q̃, K̃ = r×r average pooling (stride r) of Q, K on the H×W token grid,
 *     m = ⌊H/r⌋·⌊W/r⌋ — SOFT's landmark count (docs/MATHS.md §1.1); remainder rows and columns are
 *     dropped, as SOFT's stride-r landmark conv drops them (quirk Q10);
 *   F = softmax(Q·K̃ᵀ) [N×m],  A = softmax(Q̃·K̃ᵀ) [m×m],  B = softmax(Q̃·Kᵀ) [m×N];
 *   Z = nystromInverse(A) (below; 6 iterations in every reference);
 *   X = (F·Z)·(B·V) + conv skip on V;  out = W_proj·combine_heads(X).
 *
 * Where this differs from the references, and why:
 * - Landmarks: the references take means of contiguous segments of the 1-D sequence
 *   (`reshape(..., num_landmarks, seq_len // num_landmarks, d).mean(-2)`); on an image those are
 *   strips of rows. The SOFT paper's image version pools 2-D patches, which is what this does.
 * - Scaling: LRA scales Q and K by d^-¼ each; T2T divides q alone by √d. Both give Q·Kᵀ/√d, and
 *   pooling is linear, so the kernels agree up to rounding.
 * - Z₀ is the reorganised code's (nystrom-inverse.ts), maxima over the whole batch.
 * - The conv skip: `{ kind: 'sequence', kernel: c }` is the references' `nn.Conv2d(heads, heads,
 *   kernel_size=(c, 1), padding=(c // 2, 0), groups=heads, bias=False)` applied to V as
 *   [B, heads, N, d]: each head's c-tap filter runs along the token sequence, separately on each of
 *   its d channels. `{ kind: 'grid', kernel: k }` is SOFT's k×k depthwise conv on the token grid
 *   (docs/MATHS.md §1.3 step 6), laid out as soft.ts does. Both keep `${prefix}.conv.weight`,
 *   [heads, 1, c, 1] or [heads, 1, k, k]. An even kernel is refused: the references' padding c//2
 *   would give N + 1 outputs and their `X += conv(V)` fails.
 */
import type { Graph, Tensor } from '../graph';
import { globalMax } from './pinv';
import type { AttentionProbe } from './probe';

export type NystromConv = { kind: 'grid'; kernel: number } | { kind: 'sequence'; kernel: number } | { kind: 'none' };

export interface NystromShape {
  batch: number;
  gridH: number;
  gridW: number;
  dim: number;
  heads: number;
  /** Landmark pooling kernel and stride r. */
  ratio: number;
  /** Pooling kernel and stride along the columns when not `ratio` (a fixed landmark grid on a rectangular token grid, as soft.ts). */
  ratioW?: number;
  /** Steps of the pseudo-inverse iteration (6 in the references). */
  iterations: number;
  conv: NystromConv;
}

/** The reference's `n_iter` default. */
export const NYSTROM_ITERATIONS = 6;

/**
 * Z ≈ A⁺ for each m×m matrix of `a` ([..., m, m]): Z₀ = Aᵀ/(max column abs-sum · max row abs-sum),
 * both over the whole tensor, then `iterations` × Z ← ¼·Z·(13I − AZ·(15I − AZ·(7I − AZ))),
 * associated as `iterative_inv` (nystrom-inverse.ts is the float64 oracle and says where each
 * choice comes from).
 */
export function nystromInverseGraph(g: Graph, a: Tensor, iterations: number): Tensor {
  return nystromIterationGraph(g, a, iterations).at(-1)!;
}

/** The iterates Z_0 … Z_T of nystromInverseGraph (Z_T is its result), so one graph serves a sweep of T. */
export function nystromIterationGraph(g: Graph, a: Tensor, iterations: number): Tensor[] {
  const m = a.shape[a.shape.length - 1]!;
  if (a.shape[a.shape.length - 2] !== m)
    throw new Error(`nystromInverse: [${a.shape}] is not a batch of square matrices`);
  const abs = g.unary('abs', a);
  const maxCol = globalMax(g, g.reduce('sum', abs, -2));
  const maxRow = globalMax(g, g.reduce('sum', abs, -1));
  let z = g.mul(g.transposeLast2(a), g.unary('reciprocal', g.mul(maxCol, maxRow)));
  const eyeTimes = (c: number) => g.eye(m, c);
  const [i7, i15, i13] = [eyeTimes(7), eyeTimes(15), eyeTimes(13)];
  const iterates = [z];
  for (let k = 0; k < iterations; k++) {
    const az = g.matmul(a, z);
    const inner = g.matmul(az, g.sub(i7, az));
    const middle = g.matmul(az, g.sub(i15, inner));
    z = g.matmul(g.scale(z, 0.25), g.sub(i13, middle));
    iterates.push(z);
  }
  return iterates;
}

/**
 * r×r average pooling, stride r, of t [B, h, H·W, d] on its H×W grid → [B, h, m, d], landmark
 * j = y'·⌊W/r⌋ + x'. Reshape + two sums, so no runtime needs a pooling op: the rows and columns
 * are cut to whole patches, the grid viewed as [B·h, H', r, W', r, d], and both r-axes summed.
 * (Exported for the approximation job's parameter-free spatial reduction, server/jobs/approx/.)
 */
export function averagePool(
  g: Graph,
  t: Tensor,
  B: number,
  h: number,
  H: number,
  W: number,
  r: number,
  rw = r,
): Tensor {
  const d = t.shape[3]!;
  const lh = Math.floor(H / r);
  const lw = Math.floor(W / rw);
  let grid = g.reshape(t, [B * h, H, W, d]);
  if (lh * r < H) grid = g.slice(grid, 1, 0, lh * r);
  if (lw * rw < W) grid = g.slice(grid, 2, 0, lw * rw);
  const patches = g.reshape(grid, [B * h, lh, r, lw, rw, d]);
  const summed = g.reduce('sum', g.reduce('sum', patches, 4), 2); // [B·h, lh, 1, lw, 1, d]
  return g.scale(g.reshape(summed, [B, h, lh * lw, d]), 1 / (r * rw));
}

/** Nyström attention's projections and its three softmax kernels, before the inverse. */
export interface NystromKernels {
  /** Q·d^-¼, K·d^-¼ and V, [B, h, N, d]. */
  q: Tensor;
  k: Tensor;
  v: Tensor;
  /** softmax(Q·K̃ᵀ) [B,h,N,m], A = softmax(Q̃·K̃ᵀ) [B,h,m,m] (the matrix the iteration inverts), softmax(Q̃·Kᵀ) [B,h,m,N]. */
  f: Tensor;
  a: Tensor;
  b: Tensor;
  landmarks: number;
}

/**
 * The first half of `nystromAttention`, up to the kernels: exported so the pseudo-inverse
 * analysis (server/jobs/pinv.ts) inverts the very A the layer builds, from the same weights.
 */
export function nystromKernels(
  g: Graph,
  x: Tensor,
  prefix: string,
  s: Omit<NystromShape, 'iterations' | 'conv'>,
): NystromKernels {
  const { batch: B, gridH: H, gridW: W, dim: D, heads: h, ratio: r } = s;
  const rw = s.ratioW ?? r;
  const N = H * W;
  const dh = D / h;
  if (!Number.isInteger(dh)) throw new Error(`Nyström attention: width ${D} does not split into ${h} heads`);
  if (x.shape[1] !== N) {
    throw new Error(
      `Nyström attention: ${x.shape[1]} tokens for a ${H}×${W} grid; the landmarks pool the token grid, so a cls token (${N + 1} tokens) is not supported`,
    );
  }
  const lh = Math.floor(H / r);
  const lw = Math.floor(W / rw);
  const m = lh * lw;
  if (!Number.isInteger(r) || !Number.isInteger(rw) || r < 1 || rw < 1 || m < 1)
    throw new Error(
      `Nyström attention: a ${H}×${W} grid has no ${r}×${rw} landmark (ratio too large for this resolution)`,
    );

  const scale = 1 / Math.sqrt(Math.sqrt(dh));
  const q = g.scale(g.transpose(g.reshape(g.linear(x, `${prefix}.q`, D, D), [B, N, h, dh]), [0, 2, 1, 3]), scale);
  const kv = g.transpose(g.reshape(g.linear(x, `${prefix}.kv`, D, 2 * D), [B, N, 2, h, dh]), [2, 0, 3, 1, 4]);
  const k = g.scale(g.reshape(g.slice(kv, 0, 0, 1), [B, h, N, dh]), scale);
  const v = g.reshape(g.slice(kv, 0, 1, 2), [B, h, N, dh]);

  const qLand = averagePool(g, q, B, h, H, W, r, rw); // [B,h,m,dh]
  const kLandT = g.transposeLast2(averagePool(g, k, B, h, H, W, r, rw)); // [B,h,dh,m]
  const f = g.softmax(g.matmul(q, kLandT)); // [B,h,N,m]
  const a = g.softmax(g.matmul(qLand, kLandT)); // [B,h,m,m]
  const b = g.softmax(g.matmul(qLand, g.transposeLast2(k))); // [B,h,m,N]
  return { q, k, v, f, a, b, landmarks: m };
}

/** `x` is [B, H·W, D] (no cls token); weights under `${prefix}.q`, `.kv`, `.proj` and `.conv`. */
export function nystromAttention(g: Graph, x: Tensor, prefix: string, s: NystromShape, probe?: AttentionProbe): Tensor {
  const { batch: B, gridH: H, gridW: W, dim: D, heads: h } = s;
  const N = H * W;
  const dh = D / h;
  if (s.conv.kind !== 'none' && (!Number.isInteger(s.conv.kernel) || s.conv.kernel < 1 || s.conv.kernel % 2 === 0)) {
    throw new Error(
      `Nyström attention: conv kernel ${s.conv.kernel} must be a positive odd integer (padding kernel//2 keeps the token count only then)`,
    );
  }
  const { q, k, f, a, b, v, landmarks: m } = nystromKernels(g, x, prefix, s);
  const zIterates = nystromIterationGraph(g, a, s.iterations);
  const z = zIterates.at(-1)!;
  // The reference's association: (F·Z)·(B·V), never an N×N product.
  let out = g.matmul(g.matmul(f, z), g.matmul(b, v)); // [B,h,N,dh]
  if (probe) {
    const i = probe.query;
    const row = g.matmul(g.matmul(g.slice(f, 2, i, i + 1), z), b); // [B,h,1,N]
    probe.map = g.reshape(row, [B, h, N]);
    probe.keys = { h: H, w: W, cls: false };
    probe.meaning = `Nyström implied attention row softmax(qᵢK̃ᵀ)·Z·softmax(Q̃Kᵀ) (${m} landmarks, Z after ${s.iterations} iterations; rows sum to about 1 but can be negative; the conv skip on V is not included)`;
    probe.operands = { q, k, v, input: x, prefix };
    probe.factors = { kind: 'nystrom', f, a, b, z, iterates: zIterates };
  }

  if (s.conv.kind === 'grid') {
    // Head g's single k×k filter runs over each of its dh channels (groups = h on [B·dh, h, H, W]).
    const kk = s.conv.kernel;
    const vImage = g.reshape(g.transpose(g.reshape(v, [B, h, H, W, dh]), [0, 4, 1, 2, 3]), [B * dh, h, H, W]);
    const local = g.conv2d(vImage, g.weight(`${prefix}.conv.weight`, [h, 1, kk, kk]), null, {
      pad: Math.floor(kk / 2),
      groups: h,
    });
    out = g.addT(out, g.transpose(g.reshape(local, [B, dh, h, N]), [0, 2, 3, 1]));
  } else if (s.conv.kind === 'sequence') {
    // V as the references' NCHW image [B, heads, N, dh]: a (c, 1) kernel slides along the tokens.
    const c = s.conv.kernel;
    const local = g.conv2d(v, g.weight(`${prefix}.conv.weight`, [h, 1, c, 1]), null, {
      pad: [Math.floor(c / 2), 0],
      groups: h,
    });
    out = g.addT(out, local);
  }
  const merged = g.reshape(g.transpose(out, [0, 2, 1, 3]), [B, N, D]);
  return g.linear(merged, `${prefix}.proj`, D, D);
}
