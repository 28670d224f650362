/**
 * The error maths of the approximation-quality job, in float64 on plain row-major arrays, one
 * (image, head) at a time: the exact N×N attentions (SOFT's Gaussian kernel, softmax), the factors
 * of each approximation's implied matrix, and the relative Frobenius errors
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

import { singularValueDecomposition, thinQR } from '../../core/engine/linalg';

/** c = a·b for a [n, k], b [k, m] row-major: i-k-j order, four rows of c at a time (linalg.matmulInto's scheme on rectangles). */
export function matmulRect(a: ArrayLike<number>, b: ArrayLike<number>, n: number, k: number, m: number): Float64Array {
  const c = new Float64Array(n * m);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const [r0, r1, r2, r3] = [i * m, (i + 1) * m, (i + 2) * m, (i + 3) * m];
    for (let t = 0; t < k; t++) {
      const a0 = a[i * k + t]!;
      const a1 = a[(i + 1) * k + t]!;
      const a2 = a[(i + 2) * k + t]!;
      const a3 = a[(i + 3) * k + t]!;
      const row = t * m;
      for (let j = 0; j < m; j++) {
        const btj = b[row + j]!;
        c[r0 + j]! += a0 * btj;
        c[r1 + j]! += a1 * btj;
        c[r2 + j]! += a2 * btj;
        c[r3 + j]! += a3 * btj;
      }
    }
  }
  for (; i < n; i++) {
    for (let t = 0; t < k; t++) {
      const ait = a[i * k + t]!;
      const row = t * m;
      for (let j = 0; j < m; j++) c[i * m + j]! += ait * b[row + j]!;
    }
  }
  return c;
}

/**
 * c = a·bᵀ for a [n, k], b [m, k] row-major: dot products along k, both operands read
 * contiguously, 4×4 blocks of c summed in registers (up to twice matmulRect's speed on the long
 * N-sized products here, where c would otherwise be re-read for every k).
 */
export function matmulNT(a: ArrayLike<number>, b: ArrayLike<number>, n: number, k: number, m: number): Float64Array {
  const c = new Float64Array(n * m);
  const dot = (i: number, j: number) => {
    let s = 0;
    for (let t = 0; t < k; t++) s += a[i * k + t]! * b[j * k + t]!;
    c[i * m + j] = s;
  };
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const a0 = i * k;
    const a1 = a0 + k;
    const a2 = a1 + k;
    const a3 = a2 + k;
    let j = 0;
    for (; j + 4 <= m; j += 4) {
      const b0 = j * k;
      const b1 = b0 + k;
      const b2 = b1 + k;
      const b3 = b2 + k;
      let c00 = 0;
      let c01 = 0;
      let c02 = 0;
      let c03 = 0;
      let c10 = 0;
      let c11 = 0;
      let c12 = 0;
      let c13 = 0;
      let c20 = 0;
      let c21 = 0;
      let c22 = 0;
      let c23 = 0;
      let c30 = 0;
      let c31 = 0;
      let c32 = 0;
      let c33 = 0;
      for (let t = 0; t < k; t++) {
        const x0 = a[a0 + t]!;
        const x1 = a[a1 + t]!;
        const x2 = a[a2 + t]!;
        const x3 = a[a3 + t]!;
        const y0 = b[b0 + t]!;
        const y1 = b[b1 + t]!;
        const y2 = b[b2 + t]!;
        const y3 = b[b3 + t]!;
        c00 += x0 * y0;
        c01 += x0 * y1;
        c02 += x0 * y2;
        c03 += x0 * y3;
        c10 += x1 * y0;
        c11 += x1 * y1;
        c12 += x1 * y2;
        c13 += x1 * y3;
        c20 += x2 * y0;
        c21 += x2 * y1;
        c22 += x2 * y2;
        c23 += x2 * y3;
        c30 += x3 * y0;
        c31 += x3 * y1;
        c32 += x3 * y2;
        c33 += x3 * y3;
      }
      const o0 = (i + 0) * m + j;
      c[o0 + 0] = c00;
      c[o0 + 1] = c01;
      c[o0 + 2] = c02;
      c[o0 + 3] = c03;
      const o1 = (i + 1) * m + j;
      c[o1 + 0] = c10;
      c[o1 + 1] = c11;
      c[o1 + 2] = c12;
      c[o1 + 3] = c13;
      const o2 = (i + 2) * m + j;
      c[o2 + 0] = c20;
      c[o2 + 1] = c21;
      c[o2 + 2] = c22;
      c[o2 + 3] = c23;
      const o3 = (i + 3) * m + j;
      c[o3 + 0] = c30;
      c[o3 + 1] = c31;
      c[o3 + 2] = c32;
      c[o3 + 3] = c33;
    }
    for (; j < m; j++) for (let r = i; r < i + 4; r++) dot(r, j);
  }
  for (; i < n; i++) for (let j = 0; j < m; j++) dot(i, j);
  return c;
}

/** aᵀ for a [n, m]. */
export function transpose(a: ArrayLike<number>, n: number, m: number): Float64Array {
  const t = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) t[j * n + i] = a[i * m + j]!;
  return t;
}

function sumSquares(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return s;
}

/** exp(−‖a_i − b_j‖²/2) for a [n, d], b [m, d] → [n, m]; the distance summed directly (never negative, docs/MATHS.md §1.3). */
export function gaussianKernel(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  m: number,
  d: number,
): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let c = 0; c < d; c++) {
        const diff = a[i * d + c]! - b[j * d + c]!;
        s += diff * diff;
      }
      out[i * m + j] = Math.exp(-0.5 * s);
    }
  }
  return out;
}

/** Row-wise softmax(a·bᵀ) for a [n, d], b [m, d] → [n, m] (a and b already carry the 1/√d, as d^-¼ each). */
export function softmaxKernel(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  m: number,
  d: number,
): Float64Array {
  const out = matmulNT(a, b, n, d, m);
  for (let i = 0; i < n; i++) {
    const row = out.subarray(i * m, (i + 1) * m);
    let max = -Infinity;
    for (let j = 0; j < m; j++) max = Math.max(max, row[j]!);
    let s = 0;
    for (let j = 0; j < m; j++) s += row[j] = Math.exp(row[j]! - max);
    for (let j = 0; j < m; j++) row[j]! /= s;
  }
  return out;
}

/**
 * r×r average pooling, stride r, of tokens t [H·W, d] on their H×W grid → [⌊H/r⌋·⌊W/r⌋, d],
 * remainder rows and columns dropped, landmark j = y'·⌊W/r⌋ + x' (attention/nystrom.ts's pooling).
 */
export function averagePool(t: ArrayLike<number>, H: number, W: number, d: number, r: number): Float64Array {
  const lh = Math.floor(H / r);
  const lw = Math.floor(W / r);
  const out = new Float64Array(lh * lw * d);
  for (let y = 0; y < lh * r; y++) {
    for (let x = 0; x < lw * r; x++) {
      const to = (Math.floor(y / r) * lw + Math.floor(x / r)) * d;
      const from = (y * W + x) * d;
      for (let c = 0; c < d; c++) out[to + c]! += t[from + c]!;
    }
  }
  for (let i = 0; i < out.length; i++) out[i]! /= r * r;
  return out;
}

/**
 * Performer's φ(x) [n, m] for x̂ = x·d^-¼ [n, d] (the operands come scaled) and ω [m, d], as
 * attention/performer.ts defines it: m^-½·(exp(ω·x̂ − ‖x̂‖²/2 − stab) + ε), stab the row max of ω·x̂
 * for a query and the max over all keys and features for the keys.
 */
export function performerPhi(
  xhat: ArrayLike<number>,
  n: number,
  d: number,
  omega: ArrayLike<number>,
  m: number,
  isQuery: boolean,
  eps: number,
): Float64Array {
  const dash = matmulNT(xhat, omega, n, d, m);
  const diag = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += xhat[i * d + c]! * xhat[i * d + c]!;
    diag[i] = s / 2;
  }
  let global = -Infinity;
  if (!isQuery) for (let i = 0; i < n * m; i++) global = Math.max(global, dash[i]!);
  const norm = 1 / Math.sqrt(m);
  for (let i = 0; i < n; i++) {
    let stab = global;
    if (isQuery) {
      stab = -Infinity;
      for (let j = 0; j < m; j++) stab = Math.max(stab, dash[i * m + j]!);
    }
    for (let j = 0; j < m; j++) dash[i * m + j] = norm * (Math.exp(dash[i * m + j]! - diag[i]! - stab) + eps);
  }
  return dash;
}

/** Performer's implied matrix D⁻¹φ(q)·φ(k)ᵀ as its factors [N, m]: D⁻¹φ(q), with D_i = φ(q_i)·Σⱼφ(k_j), and φ(k). */
export function performerFactors(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  n: number,
  d: number,
  omega: ArrayLike<number>,
  m: number,
  eps: number,
): { left: Float64Array; right: Float64Array } {
  const left = performerPhi(q, n, d, omega, m, true, eps);
  const right = performerPhi(k, n, d, omega, m, false, eps);
  const sum = new Float64Array(m);
  for (let j = 0; j < n; j++) for (let a = 0; a < m; a++) sum[a]! += right[j * m + a]!;
  for (let i = 0; i < n; i++) {
    const row = left.subarray(i * m, (i + 1) * m);
    let den = 0;
    for (let a = 0; a < m; a++) den += row[a]! * sum[a]!;
    for (let a = 0; a < m; a++) row[a]! /= den;
  }
  return { left, right };
}

/**
 * Linformer's implied matrix softmax(q·(E·k)ᵀ)·F as its factors [N, kk]: the weights P and Fᵀ
 * (E, F: [kk, N]; q and k carry d^-¼ each, and E is linear, so q·(E·k)ᵀ is the layer's q·(E·k)ᵀ/√d).
 */
export function linformerFactors(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  e: ArrayLike<number>,
  f: ArrayLike<number>,
  n: number,
  kk: number,
  d: number,
): { left: Float64Array; right: Float64Array } {
  const ek = matmulRect(e, k, kk, n, d);
  return { left: softmaxKernel(q, ek, n, kk, d), right: transpose(f, kk, n) };
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
  return { n, d, s, v, sv, normS: Math.sqrt(sumSquares(s)), normSV: Math.sqrt(sumSquares(sv)) };
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
    const R = thinQR(right, n, m);
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
