/**
 * Small dense linear algebra on matrices stored row-major in typed arrays: the pieces the
 * Newton–Schulz pseudo-inverse (newton.ts) and its error measures need, and the rectangular
 * products, QR and SVD the approximation-quality job (server/jobs/approx/error.ts) measures with.
 * Not a general library: no shapes, no broadcasting, no allocation beyond what a call returns.
 */

export type FloatArray = Float32Array | Float64Array;

/**
 * out = a·b for m×m matrices, in i-k-j order: the inner loop walks a row of b and a row of
 * out contiguously, which keeps it cache-friendly up to m = 1024. Four rows of out are
 * updated together so that each element of b loaded serves four multiply–adds (~1.6× faster
 * in V8); every out[ij] still accumulates its k terms in ascending order, so the result is
 * that of the plain triple loop bit for bit.
 *
 * The arithmetic is that of `out`'s element type: each `out[ij] += aik·b[kj]` is computed in
 * float64 and stored, so a Float32Array `out` rounds every partial sum to float32 (for
 * float32 operands the product is exact in float64, so this is a float32 multiply–add with a
 * single rounding, as an FMA-based sgemm does, up to rare double-rounding ties). `out` must
 * not alias `a` or `b`.
 */
export function matmulInto(out: FloatArray, a: FloatArray, b: FloatArray, m: number): void {
  matmulRectInto(out, a, b, m, m, m);
}

/** out = a·b for a [n, k], b [k, m] row-major: matmulInto's scheme (and arithmetic) on rectangles. */
export function matmulRectInto(out: FloatArray, a: FloatArray, b: FloatArray, n: number, k: number, m: number): void {
  out.fill(0, 0, n * m);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const r0 = i * m;
    const r1 = r0 + m;
    const r2 = r1 + m;
    const r3 = r2 + m;
    const a0 = i * k;
    for (let t = 0; t < k; t++) {
      // No skipping of zero a-entries: 0·Inf must still give NaN, as in any BLAS.
      const x0 = a[a0 + t]!;
      const x1 = a[a0 + k + t]!;
      const x2 = a[a0 + 2 * k + t]!;
      const x3 = a[a0 + 3 * k + t]!;
      const bRow = t * m;
      for (let j = 0; j < m; j++) {
        const btj = b[bRow + j]!;
        out[r0 + j]! += x0 * btj;
        out[r1 + j]! += x1 * btj;
        out[r2 + j]! += x2 * btj;
        out[r3 + j]! += x3 * btj;
      }
    }
  }
  for (; i < n; i++) {
    const row = i * m;
    for (let t = 0; t < k; t++) {
      const ait = a[i * k + t]!;
      const bRow = t * m;
      for (let j = 0; j < m; j++) out[row + j]! += ait * b[bRow + j]!;
    }
  }
}

/** a·b in float64 for a [n, k], b [k, m]. */
export function matmulRect(a: FloatArray, b: FloatArray, n: number, k: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  matmulRectInto(out, a, b, n, k, m);
  return out;
}

/**
 * a·bᵀ in float64 for a [n, k], b [m, k] row-major: dot products along k (ascending), both operands
 * read contiguously, 4×4 blocks of the result summed in registers — up to twice matmulRect's speed
 * on long products with a small result, where matmulRect would re-read its output for every k.
 */
export function matmulNT(a: FloatArray, b: FloatArray, n: number, k: number, m: number): Float64Array {
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
      const o0 = i * m + j;
      const o1 = o0 + m;
      const o2 = o1 + m;
      const o3 = o2 + m;
      c[o0] = c00;
      c[o0 + 1] = c01;
      c[o0 + 2] = c02;
      c[o0 + 3] = c03;
      c[o1] = c10;
      c[o1 + 1] = c11;
      c[o1 + 2] = c12;
      c[o1 + 3] = c13;
      c[o2] = c20;
      c[o2 + 1] = c21;
      c[o2 + 2] = c22;
      c[o2 + 3] = c23;
      c[o3] = c30;
      c[o3 + 1] = c31;
      c[o3 + 2] = c32;
      c[o3 + 3] = c33;
    }
    for (; j < m; j++) for (let r = i; r < i + 4; r++) dot(r, j);
  }
  for (; i < n; i++) for (let j = 0; j < m; j++) dot(i, j);
  return c;
}

/** aᵀ [m, n] for a [n, m], in float64. */
export function transpose(a: ArrayLike<number>, n: number, m: number): Float64Array {
  const t = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) t[j * n + i] = a[i * m + j]!;
  return t;
}

/** a·b in float64 (the precision every error measure is taken in). */
export function matmul64(a: FloatArray, b: FloatArray, m: number): Float64Array {
  const out = new Float64Array(m * m);
  matmulInto(out, a, b, m);
  return out;
}

/** ‖a‖_F, accumulated in float64 whatever the array type. */
export function frobenius(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

/** ‖I − a‖_F for an m×m matrix a. */
export function frobeniusIdentityMinus(a: ArrayLike<number>, m: number): number {
  let s = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      const r = (i === j ? 1 : 0) - a[i * m + j]!;
      s += r * r;
    }
  }
  return Math.sqrt(s);
}

/**
 * Inverse of an m×m matrix by Gauss–Jordan elimination with partial pivoting, in float64.
 * Returns null when a pivot falls below m·ε·max|a| (numerically singular: the matrix has no
 * inverse worth comparing against).
 */
export function invert(a: ArrayLike<number>, m: number): Float64Array | null {
  const w = Float64Array.from(a).subarray(0, m * m);
  const inv = new Float64Array(m * m);
  for (let i = 0; i < m; i++) inv[i * m + i] = 1;
  let scale = 0;
  for (let i = 0; i < m * m; i++) scale = Math.max(scale, Math.abs(w[i]!));
  const tiny = m * Number.EPSILON * scale;

  for (let c = 0; c < m; c++) {
    let p = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(w[r * m + c]!) > Math.abs(w[p * m + c]!)) p = r;
    const pivot = w[p * m + c]!;
    if (!(Math.abs(pivot) > tiny)) return null;
    if (p !== c) {
      swapRows(w, p, c, m);
      swapRows(inv, p, c, m);
    }
    const rc = c * m;
    for (let j = 0; j < m; j++) {
      w[rc + j]! /= pivot;
      inv[rc + j]! /= pivot;
    }
    for (let r = 0; r < m; r++) {
      if (r === c) continue;
      const f = w[r * m + c]!;
      if (f === 0) continue;
      const rr = r * m;
      for (let j = 0; j < m; j++) {
        w[rr + j]! -= f * w[rc + j]!;
        inv[rr + j]! -= f * inv[rc + j]!;
      }
    }
  }
  return inv;
}

function swapRows(x: Float64Array, r1: number, r2: number, m: number): void {
  for (let j = 0; j < m; j++) {
    const t = x[r1 * m + j]!;
    x[r1 * m + j] = x[r2 * m + j]!;
    x[r2 * m + j] = t;
  }
}

/**
 * Eigenvalues (ascending) of the symmetric part (a + aᵀ)/2 of an m×m matrix, by the cyclic
 * Jacobi method in float64. Jacobi is slow (O(m³) per sweep) but accurate: an off-diagonal
 * entry is left alone only once it is below ε·sqrt(|a_pp·a_qq|) (which keeps small
 * eigenvalues of a definite matrix relatively accurate, Demmel & Veselić 1992) or below
 * 1e-20·‖a‖_F (negligible for any eigenvalue). The predicted Newton curve depends on the
 * smallest eigenvalue, hence the care. Symmetrising first makes a matrix that is symmetric
 * only up to rounding usable as is.
 */
export function symmetricEigenvalues(a: ArrayLike<number>, m: number): Float64Array {
  const w = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) w[i * m + j] = 0.5 * (a[i * m + j]! + a[j * m + i]!);
  }
  const floor = 1e-20 * frobenius(w);
  // Cyclic Jacobi converges quadratically: ~6–10 sweeps in practice; the cap only guards.
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < m - 1; p++) {
      for (let q = p + 1; q < m; q++) rotated = rotate(w, m, p, q, floor) || rotated;
    }
    if (!rotated) break;
  }
  const eig = new Float64Array(m);
  for (let i = 0; i < m; i++) eig[i] = w[i * m + i]!;
  return eig.sort();
}

/** One Jacobi rotation zeroing w[p][q] and w[q][p]; false when the entry is already negligible. */
function rotate(w: Float64Array, m: number, p: number, q: number, floor: number): boolean {
  const apq = w[p * m + q]!;
  const app = w[p * m + p]!;
  const aqq = w[q * m + q]!;
  if (Math.abs(apq) <= Math.max(floor, Number.EPSILON * Math.sqrt(Math.abs(app * aqq)))) return false;
  // Numerically stable tangent of the rotation angle (Golub & Van Loan, Alg. 8.5.1).
  const theta = (aqq - app) / (2 * apq);
  const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
  const c = 1 / Math.sqrt(t * t + 1);
  const s = t * c;
  for (let k = 0; k < m; k++) {
    const akp = w[k * m + p]!;
    const akq = w[k * m + q]!;
    w[k * m + p] = c * akp - s * akq;
    w[k * m + q] = s * akp + c * akq;
  }
  for (let k = 0; k < m; k++) {
    const apk = w[p * m + k]!;
    const aqk = w[q * m + k]!;
    w[p * m + k] = c * apk - s * aqk;
    w[q * m + k] = s * apk + c * aqk;
  }
  // Set the annihilated pair exactly: rounding would otherwise leave ~ε·|apq| behind.
  w[p * m + q] = 0;
  w[q * m + p] = 0;
  return true;
}

/**
 * Q of the QR decomposition a = Q·R of an n×n matrix, in float64, by Householder reflections,
 * with the signs fixed so that R's diagonal is positive. Householder keeps QᵀQ = I to a few ulps
 * whatever a's conditioning (Gram–Schmidt loses orthogonality as a nears singularity); the sign
 * fix makes Q unique, so for a Gaussian a it is Haar-distributed (Mezzadri 2007, the
 * `qr_uniform_q` option of lucidrains/performer-pytorch), which is what the Performer's
 * orthogonal random features need. Returns Q row-major; its columns are orthonormal.
 */
export function qrOrthonormal(a: ArrayLike<number>, n: number): Float64Array {
  const { q, r } = thinQR(a, n, n);
  // a = Q·R = (Q·S)(S·R) for S = diag(±1): flip the columns of Q whose R diagonal is negative.
  for (let k = 0; k < n; k++) {
    if (r[k * n + k]! >= 0) continue;
    for (let i = 0; i < n; i++) q[i * n + k] = -q[i * n + k]!;
  }
  return q;
}

/**
 * Thin QR of a tall a [n, m] (n ≥ m) by Householder reflections: q [n, m] with orthonormal columns
 * (also where a's columns are dependent, which Gram–Schmidt would not give), r [m, m] upper triangular.
 */
export function thinQR(a: ArrayLike<number>, n: number, m: number): { q: Float64Array; r: Float64Array } {
  if (n < m) throw new RangeError(`thinQR: ${n}×${m} is wide`);
  // Column j of a as row j of cols, so each reflection runs along contiguous memory.
  const cols = new Float64Array(m * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) cols[j * n + i] = a[i * m + j]!;
  const vs: Float64Array[] = [];
  for (let k = 0; k < m; k++) {
    const x = cols.subarray(k * n, (k + 1) * n);
    let norm = 0;
    for (let i = k; i < n; i++) norm += x[i]! * x[i]!;
    norm = Math.sqrt(norm);
    const v = new Float64Array(n);
    if (norm > 0) {
      // The sign that avoids cancellation in x_k − α.
      const alpha = x[k]! > 0 ? -norm : norm;
      let vn = 0;
      for (let i = k; i < n; i++) {
        v[i] = x[i]! - (i === k ? alpha : 0);
        vn += v[i]! * v[i]!;
      }
      vn = Math.sqrt(vn);
      for (let i = k; i < n; i++) v[i]! /= vn;
      for (let j = k; j < m; j++) {
        const c = cols.subarray(j * n, (j + 1) * n);
        let dot = 0;
        for (let i = k; i < n; i++) dot += v[i]! * c[i]!;
        for (let i = k; i < n; i++) c[i]! -= 2 * dot * v[i]!;
      }
    }
    vs.push(v);
  }
  const r = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = i; j < m; j++) r[i * m + j] = cols[j * n + i]!;
  // Q's columns: H_0·H_1·…·H_{m−1} applied to the first m unit vectors.
  const qt = new Float64Array(m * n);
  for (let j = 0; j < m; j++) {
    const e = qt.subarray(j * n, (j + 1) * n);
    e[j] = 1;
    for (let k = Math.min(j, m - 1); k >= 0; k--) {
      const v = vs[k]!;
      let dot = 0;
      for (let i = k; i < n; i++) dot += v[i]! * e[i]!;
      if (dot !== 0) for (let i = k; i < n; i++) e[i]! -= 2 * dot * v[i]!;
    }
  }
  const q = new Float64Array(n * m);
  for (let j = 0; j < m; j++) for (let i = 0; i < n; i++) q[i * m + j] = qt[j * n + i]!;
  return { q, r };
}

/**
 * Singular value decomposition a = U·diag(σ)·Vᵀ of an m×m matrix in float64, by one-sided Jacobi
 * (Hestenes): plane rotations applied on the right make the columns of W = a·V mutually orthogonal,
 * so σ_j = ‖W_j‖ and u_j = W_j/σ_j. Unlike the eigen-decomposition of aᵀa, which loses every σ
 * below √ε·σ_max, this keeps small singular values to high relative accuracy (Demmel & Veselić
 * 1992), and it needs no symmetry. Returns U and V row-major with the singular vectors as columns
 * (a column of U whose σ is 0 is left 0), σ unsorted.
 */
export function singularValueDecomposition(
  a: ArrayLike<number>,
  m: number,
): { u: Float64Array; sigma: Float64Array; v: Float64Array } {
  // Rows of w are the columns of a·V (and rows of vt the columns of V): every rotation then walks memory contiguously.
  const w = new Float64Array(m * m);
  const vt = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    vt[i * m + i] = 1;
    for (let j = 0; j < m; j++) w[j * m + i] = a[i * m + j]!;
  }
  const rotateRows = (x: Float64Array, p: number, q: number, c: number, s: number) => {
    const rp = p * m;
    const rq = q * m;
    for (let k = 0; k < m; k++) {
      const xp = x[rp + k]!;
      const xq = x[rq + k]!;
      x[rp + k] = c * xp - s * xq;
      x[rq + k] = s * xp + c * xq;
    }
  };
  // Cyclic sweeps converge quadratically (typically 6–12); the cap only guards.
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < m - 1; p++) {
      for (let q = p + 1; q < m; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let k = 0; k < m; k++) {
          const wp = w[p * m + k]!;
          const wq = w[q * m + k]!;
          alpha += wp * wp;
          beta += wq * wq;
          gamma += wp * wq;
        }
        if (Math.abs(gamma) <= Number.EPSILON * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        // The rotation that zeroes the pair's inner product (Golub & Van Loan §8.6.3).
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotateRows(w, p, q, c, s);
        rotateRows(vt, p, q, c, s);
      }
    }
    if (!rotated) break;
  }
  const sigma = new Float64Array(m);
  const u = new Float64Array(m * m);
  const v = new Float64Array(m * m);
  for (let j = 0; j < m; j++) {
    const sj = frobenius(w.subarray(j * m, (j + 1) * m));
    sigma[j] = sj;
    for (let i = 0; i < m; i++) {
      v[i * m + j] = vt[j * m + i]!;
      if (sj > 0) u[i * m + j] = w[j * m + i]! / sj;
    }
  }
  return { u, sigma, v };
}

/**
 * Moore–Penrose pseudo-inverse of an m×m matrix in float64 from its Jacobi SVD:
 * a⁺ = V·diag(1/σ)·Uᵀ over the σ above rtol·σ_max (torch.linalg.pinv's default rtol, m·ε). It serves
 * Nyströmformer's row-normalised kernels as well as SOFT's symmetric K2.
 */
export function pseudoInverse(a: ArrayLike<number>, m: number, rtol = m * Number.EPSILON): Float64Array {
  const { u, sigma, v } = singularValueDecomposition(a, m);
  const cutoff = rtol * Math.max(...sigma);
  const out = new Float64Array(m * m);
  for (let j = 0; j < m; j++) {
    const sj = sigma[j]!;
    if (!(sj > cutoff)) continue;
    for (let i = 0; i < m; i++) {
      const f = v[i * m + j]! / sj;
      if (f === 0) continue;
      for (let k = 0; k < m; k++) out[i * m + k]! += f * u[k * m + j]!;
    }
  }
  return out;
}
