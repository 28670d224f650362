/**
 * The error maths of the approximation-quality job, in float64 on plain row-major arrays, one
 * (image, head) at a time: an approximation's implied matrix, from its factors as the engine computes
 * them (factors.ts), against the exact N×N attention (SOFT's Gaussian kernel, softmax), as the
 * relative Frobenius errors
 *   e_mat = ‖S − Ŝ‖_F / ‖S‖_F,   e_out = ‖S·V − Ŝ·V‖_F / ‖S·V‖_F.
 *
 * Every approximation measured here implies Ŝ = L·W·Rᵀ with L, R of N×m and W of m×m (SOFT:
 * K1·NR(K2)·K1ᵀ; Nyströmformer: F·Z·B; Performer: D⁻¹φ(Q)·φ(K)ᵀ and Linformer: P·F, both W = I),
 * so Ŝ is formed row block by row block against S, never all of it. A sweep of W (one per
 * iteration count, and the exact pseudo-inverse) shares one pair of passes over S: with the thin
 * QR factors L = Q_L·R_L, R = Q_R·R_R and X = Q_Lᵀ·S·Q_R,
 *   ‖S − L·W·Rᵀ‖² = ‖S − Q_L·X·Q_Rᵀ‖² + ‖X − R_L·W·R_Rᵀ‖²,
 * two non-negative terms (the part of S outside the factors' spans, measured directly, and an m×m
 * remainder), so nothing cancels: a run that has converged is told from the exact product to
 * rounding. The exact pseudo-inverse enters as balanced factors (V·Σ^-½)(U·Σ^-½)ᵀ, never as A⁺
 * itself, whose entries reach 1/σ_min and would drown K1·A⁺·K1ᵀ in rounding when A is ill-conditioned
 * (a Gaussian K2 of nearby landmarks, a nearly uniform softmax).
 */

import {
  frobenius,
  matmulNT,
  matmulRect,
  singularValueDecomposition,
  thinQR,
  transpose,
} from '../../core/engine/linalg';

/**
 * The exact Gaussian-kernel attention SOFT approximates, S = exp(−‖q_i − q_j‖²/2) [n×n] for one
 * head's q [n, d], the distance summed directly (never negative, docs/MATHS.md §1.3). It is the
 * reference, not an attention's definition (SOFT never forms it), and it is soft.ts's
 * `gaussianKernel(…, 'direct')` to the bit (test/approx.test.ts): that graph materialises n²·d
 * differences, which on the reference runtime costs ~10× this loop at n = 3136. The exact
 * attentions are the only maths here that no engine graph computes.
 */
export function exactGaussian(q: ArrayLike<number>, n: number, d: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < d; c++) {
        const diff = q[i * d + c]! - q[j * d + c]!;
        s += diff * diff;
      }
      out[i * n + j] = Math.exp(s * -0.5);
    }
  }
  return out;
}

/**
 * The exact softmax attention, S = softmax(q·kᵀ) [n×n] over the keys for one head's q, k [n, d],
 * both already scaled by d^-¼ (so this is softmax(q·kᵀ/√d) of the unscaled ones). The reference
 * like exactGaussian, and the engine's `softmax(matmul(q, kᵀ))` to the bit (test/approx.test.ts),
 * in a third of the reference runtime's time at n = 3136.
 */
export function exactSoftmax(q: Float64Array, k: Float64Array, n: number, d: number): Float64Array {
  const out = matmulNT(q, k, n, d, n);
  for (let i = 0; i < n; i++) {
    const row = out.subarray(i * n, (i + 1) * n);
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, row[j]!);
    let sum = 0;
    for (let j = 0; j < n; j++) sum += row[j] = Math.exp(row[j]! - max);
    for (let j = 0; j < n; j++) row[j] = row[j]! / sum;
  }
  return out;
}

/** An exact attention on one head: S [N×N] with S·V and both norms. */
export interface ExactAttention {
  n: number;
  d: number;
  s: Float64Array;
  v: Float64Array;
  sv: Float64Array;
  normS: number;
  normSV: number;
}

export function exactAttention(s: Float64Array, v: Float64Array, n: number, d: number): ExactAttention {
  const sv = matmulNT(s, transpose(v, n, d), n, n, d);
  return { n, d, s, v, sv, normS: frobenius(s), normSV: frobenius(sv) };
}

/** ‖S·V − out‖_F / ‖S·V‖_F for an approximation's output out [N, d]. */
export function outputError(ref: ExactAttention, out: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < ref.sv.length; i++) {
    const diff = ref.sv[i]! - out[i]!;
    s += diff * diff;
  }
  return Math.sqrt(s) / ref.normSV;
}

/** Rows of S compared per pass: the N-wide row block of Ŝ stays small whatever N is. */
const ROW_BLOCK = 32;

/**
 * Errors of Ŝ = L·Rᵀ (L, R: [N, m]; Performer, Linformer): one pass over S's rows, the N-wide
 * block of Ŝ made and compared block by block.
 */
export function productErrors(
  ref: ExactAttention,
  left: Float64Array,
  right: Float64Array,
  m: number,
): { mat: number; out: number } {
  const { n, d, s } = ref;
  let sq = 0;
  for (let i0 = 0; i0 < n; i0 += ROW_BLOCK) {
    const rows = Math.min(ROW_BLOCK, n - i0);
    const block = matmulNT(left.subarray(i0 * m, (i0 + rows) * m), right, rows, m, n);
    for (let t = 0; t < rows * n; t++) {
      const e = s[i0 * n + t]! - block[t]!;
      sq += e * e;
    }
  }
  const rtv = matmulNT(transpose(right, n, m), transpose(ref.v, n, d), m, n, d);
  return { mat: Math.sqrt(sq) / ref.normS, out: outputError(ref, matmulRect(left, rtv, n, m, d)) };
}

/** A⁺ = P·Qᵀ with P = V·Σ^-½, Q = U·Σ^-½ (m×k, k the singular values above rtol·σ_max), each optionally scaled row-wise by `scale` (SOFT-Norm's D^-½·A⁺·D^-½). */
export function pseudoInverseFactors(
  a: ArrayLike<number>,
  m: number,
  scale: ArrayLike<number> | null = null,
  rtol = m * Number.EPSILON,
): { p: Float64Array; q: Float64Array; k: number } {
  const { u, sigma, v } = singularValueDecomposition(a, m);
  const cutoff = rtol * Math.max(...sigma);
  const kept = [...sigma.keys()].filter((j) => sigma[j]! > cutoff);
  const k = kept.length;
  const p = new Float64Array(m * k);
  const q = new Float64Array(m * k);
  kept.forEach((j, c) => {
    const f = 1 / Math.sqrt(sigma[j]!);
    for (let i = 0; i < m; i++) {
      const si = scale ? scale[i]! : 1;
      p[i * k + c] = si * v[i * m + j]! * f;
      q[i * k + c] = si * u[i * m + j]! * f;
    }
  });
  return { p, q, k };
}

/**
 * Ŝ = L·W·Rᵀ (L, R: [N, m]) against one exact attention, for many W: the constructor makes the two
 * N²·m passes of the identity in the file comment, then each W costs O(m³ + N·m·d).
 */
export class LowRank {
  private readonly ql: Float64Array;
  private readonly rl: Float64Array;
  private readonly rr: Float64Array;
  /** Q_Lᵀ·S·Q_R [m, m]. */
  private readonly x: Float64Array;
  /** ‖S − Q_L·X·Q_Rᵀ‖², the error no W can remove. */
  private readonly rest: number;
  /** Q_Rᵀ·V [m, d]. */
  private readonly qrtv: Float64Array;

  constructor(
    private readonly ref: ExactAttention,
    left: Float64Array,
    right: Float64Array,
    private readonly m: number,
  ) {
    const { n, d, s } = ref;
    const L = thinQR(left, n, m);
    // SOFT's Ŝ = K1·W·K1ᵀ: one factor twice, one QR.
    const R = right === left ? L : thinQR(right, n, m);
    this.ql = L.q;
    this.rl = L.r;
    this.rr = R.r;
    const qrt = transpose(R.q, n, m);
    // S·Q_R [N, m], then X = Q_Lᵀ·(S·Q_R).
    const sq = matmulNT(s, qrt, n, n, m);
    this.x = matmulNT(transpose(L.q, n, m), transpose(sq, n, m), m, n, m);
    const qlx = matmulRect(L.q, this.x, n, m, m);
    let rest = 0;
    for (let i0 = 0; i0 < n; i0 += ROW_BLOCK) {
      const rows = Math.min(ROW_BLOCK, n - i0);
      const block = matmulNT(qlx.subarray(i0 * m, (i0 + rows) * m), R.q, rows, m, n);
      for (let t = 0; t < rows * n; t++) {
        const e = s[i0 * n + t]! - block[t]!;
        rest += e * e;
      }
    }
    this.rest = rest;
    this.qrtv = matmulNT(qrt, transpose(ref.v, n, d), m, n, d);
  }

  /** e_mat and e_out of Ŝ = L·W·Rᵀ. */
  errors(w: Float64Array): { mat: number; out: number } {
    const { m } = this;
    return this.measure(matmulNT(matmulRect(this.rl, w, m, m, m), this.rr, m, m, m));
  }

  /** e_mat and e_out of Ŝ = L·(P·Qᵀ)·Rᵀ for P, Q [m, k] (the exact pseudo-inverse's balanced factors). */
  errorsFactored(p: Float64Array, q: Float64Array, k: number): { mat: number; out: number } {
    const { m } = this;
    return this.measure(matmulNT(matmulRect(this.rl, p, m, m, k), matmulRect(this.rr, q, m, m, k), m, k, m));
  }

  /** Ŝ = Q_L·M·Q_Rᵀ: e_mat from the identity, e_out directly. */
  private measure(M: Float64Array): { mat: number; out: number } {
    const { ref, m } = this;
    let sq = this.rest;
    for (let i = 0; i < m * m; i++) sq += (this.x[i]! - M[i]!) ** 2;
    const out = matmulRect(this.ql, matmulRect(M, this.qrtv, m, m, ref.d), ref.n, m, ref.d);
    return { mat: Math.sqrt(sq) / ref.normS, out: outputError(ref, out) };
  }
}
