/**
 * Small dense linear algebra on square m×m matrices stored row-major in typed arrays: the
 * pieces the Newton–Schulz pseudo-inverse (newton.ts) and its error measures need. Not a
 * general library: no shapes, no broadcasting, no allocation beyond what a call returns.
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
  out.fill(0, 0, m * m);
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const r0 = i * m;
    const r1 = r0 + m;
    const r2 = r1 + m;
    const r3 = r2 + m;
    for (let k = 0; k < m; k++) {
      // No skipping of zero a-entries: 0·Inf must still give NaN, as in any BLAS.
      const a0 = a[r0 + k]!;
      const a1 = a[r1 + k]!;
      const a2 = a[r2 + k]!;
      const a3 = a[r3 + k]!;
      const bRow = k * m;
      for (let j = 0; j < m; j++) {
        const bkj = b[bRow + j]!;
        out[r0 + j]! += a0 * bkj;
        out[r1 + j]! += a1 * bkj;
        out[r2 + j]! += a2 * bkj;
        out[r3 + j]! += a3 * bkj;
      }
    }
  }
  for (; i < m; i++) {
    const row = i * m;
    for (let k = 0; k < m; k++) {
      const aik = a[row + k]!;
      const bRow = k * m;
      for (let j = 0; j < m; j++) out[row + j]! += aik * b[bRow + j]!;
    }
  }
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
