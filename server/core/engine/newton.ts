/**
 * SOFT's Newton–Raphson (Newton–Schulz) pseudo-inverse, both variants of the official code
 * (docs/MATHS.md §1.4), and SOFT-Norm's D^-1/2 scaling of it (§1.5): the single definition of
 * this maths in the TypeScript reference runtime, and the oracle other runtimes are tested
 * against. Also the per-iteration error measures of §6.3 and a plain-words convergence
 * verdict over them.
 *
 * Matrices come as a batch of m×m row-major blocks in one Float32Array or Float64Array.
 *
 * Precision. `dtype: 'float64'` computes in float64. `dtype: 'float32'` computes in float32
 * for real: every matrix lives in a Float32Array, so each stored element — including every
 * partial sum of a matmul (see linalg.matmulInto) — is rounded to float32, and the scalars
 * (alpha, reciprocals, square roots) go through Math.fround after each operation.
 * The one deliberate exception is the short vector reductions (row sums for alpha and D^-1/2,
 * the back-off's column sums): they are accumulated in float64 and rounded once, i.e. the
 * float32 nearest the exact sum. Any float32 reduction order is as legitimate as another
 * (PyTorch's CPU sum adds 8 interleaved AVX2 lanes, CUDA a tree), they all land within an
 * ulp or two of that value, and it does not depend on a platform. The matmul order differs
 * from any sgemm's too, so float32 results follow the official float32 run to within its
 * own rounding noise, not bit for bit. In float64 the entries of V checked against the
 * official run (test/newton.test.ts) are bit-identical.
 */
import {
  frobenius,
  frobeniusIdentityMinus,
  invert,
  matmul64,
  matmulInto,
  symmetricEigenvalues,
  type FloatArray,
} from './linalg';

export type NewtonVariant = 'A' | 'B';
export type NewtonDtype = 'float32' | 'float64';

export interface NewtonOptions {
  /** A: master `SOFT/kernel/inverse.py`; B: SOFT-Norm and the 2021 base SOFT (§1.4, §1.8). */
  variant: NewtonVariant;
  /** Newton steps after V0 (the official `newton_max_iter` is 20). */
  iterations: number;
  /** Arithmetic; defaults to the element type of the input array. */
  dtype?: NewtonDtype;
  /** Record the §6.3 error measures after V0 and after every step (per matrix: an inverse and an eigen-decomposition, then 3 extra m³ matmuls per step). */
  trace?: boolean;
}

/** Error measures of V_k for one matrix, always computed in float64 (docs/MATHS.md §6.3). */
export interface NewtonIterationRecord {
  /** Steps done: 0 is V0 = alpha·P. */
  k: number;
  /** ‖I − P V_k‖_F, P the matrix actually iterated (variant A: A + float32(0.01)·I). */
  e1: number;
  /** ‖A V_k A − A‖_F / ‖A‖_F on the unshifted A (Penrose condition 1). */
  e2: number;
  /** ‖V_k − P⁻¹‖_F / ‖P⁻¹‖_F with P⁻¹ a float64 Gauss–Jordan inverse; NaN when P is numerically singular. */
  e3: number;
  /**
   * Exact-arithmetic ‖I − P V_k‖₂ = max_i |1 − alpha·λ_i(P)²|^(2^k): R0 = I − alpha·P² for
   * V0 = alpha·P and every step squares R. Needs P symmetric, as SOFT's kernels are; the
   * eigenvalues are those of P's symmetric part, so rounding-level asymmetry does no harm.
   */
  predicted: number;
}

export interface NewtonResult {
  /** The batch of V after `iterations` steps, in the working dtype. */
  v: FloatArray;
  /** Step size per matrix (variant B: one value shared by the whole batch, quirk Q4); float32-exact in the float32 path. */
  alpha: Float64Array;
  /** Variant B's step-size back-off: halvings done and the final max column-abs-sum of I − P V0; null for A. */
  backoff: { halvings: number; norm: number } | null;
  /** trace[b][k] for matrix b, k = 0 … iterations, when asked for. */
  trace?: NewtonIterationRecord[][];
}

/**
 * The official code builds I = torch.eye(m) in float32, so variant A's shift is float32(0.01)
 * = 0.009999999776482582 even when A is float64; with an exact 0.01 a float64 replay of the
 * reference drifts by ~2e-10 relative.
 */
export const REGULARISER = Math.fround(0.01);
/** Variant A: alpha = 0.9·2/s² with s the max row sum of the unshifted A. */
const ALPHA_A = 0.9 * 2;
/** Variant B: alpha = 2/s², halved while ‖I − P V0‖₁ > 1.01, at most 10 times. */
const ALPHA_B = 2;
const BACKOFF_LIMIT = 1.01;
const BACKOFF_MAX = 10;

interface Arith {
  alloc(n: number): FloatArray;
  round(x: number): number;
}
const F32: Arith = { alloc: (n) => new Float32Array(n), round: Math.fround };
const F64: Arith = { alloc: (n) => new Float64Array(n), round: (x) => x };

/** Pseudo-inverse of each m×m matrix of a batch by the official Newton–Schulz iteration. */
export function newtonInverse(a: FloatArray, m: number, batch: number, options: NewtonOptions): NewtonResult {
  const { variant, iterations } = options;
  if (!Number.isInteger(m) || m < 1 || !Number.isInteger(batch) || batch < 1) {
    throw new RangeError(`newtonInverse: m and batch must be positive integers (got m=${m}, batch=${batch})`);
  }
  if (!Number.isInteger(iterations) || iterations < 0) {
    throw new RangeError(`newtonInverse: iterations must be a non-negative integer (got ${iterations})`);
  }
  const mm = m * m;
  if (a.length < batch * mm)
    throw new RangeError(`newtonInverse: ${a.length} values, need ${batch}·${m}² = ${batch * mm}`);
  const dtype = options.dtype ?? (a instanceof Float32Array ? 'float32' : 'float64');
  const ar = dtype === 'float32' ? F32 : F64;
  const { round } = ar;

  // Typed-array set() converts, so a float64 input is rounded to float32 here as the model's tensors are.
  const A = ar.alloc(batch * mm);
  A.set(a.subarray(0, batch * mm));
  const P = variant === 'A' ? shifted(A, m, batch, ar) : A;

  // torch evaluates `c / t` (Python scalar over tensor) as t.reciprocal() * c, in t's dtype;
  // spelling it the same way reproduces the reference alphas bit for bit in float64.
  const alphaOf = (c: number, s: number) => round(round(1 / round(s * s)) * round(c));
  const alpha = new Float64Array(batch);
  if (variant === 'A') {
    for (let b = 0; b < batch; b++) alpha[b] = alphaOf(ALPHA_A, maxRowSum(block(A, b, mm), m, round));
  } else {
    let s = -Infinity;
    for (let b = 0; b < batch; b++) s = Math.max(s, maxRowSum(block(A, b, mm), m, round));
    alpha.fill(alphaOf(ALPHA_B, s));
  }

  const V = ar.alloc(batch * mm);
  const initial = () => {
    for (let b = 0; b < batch; b++) {
      const ab = alpha[b]!;
      const off = b * mm;
      for (let i = 0; i < mm; i++) V[off + i] = ab * P[off + i]!;
    }
  };
  initial();

  const T = ar.alloc(mm);
  const U = ar.alloc(mm);
  let backoff: NewtonResult['backoff'] = null;
  if (variant === 'B') {
    // torch compares the float32 norm with the literal converted to float32.
    const limit = round(BACKOFF_LIMIT);
    let norm = backoffNorm(P, V, m, batch, T, round);
    let halvings = 0;
    while (norm > limit && halvings < BACKOFF_MAX) {
      alpha.fill(alpha[0]! * 0.5);
      initial();
      norm = backoffNorm(P, V, m, batch, T, round);
      halvings++;
    }
    backoff = { halvings, norm };
  }

  const tracer = options.trace ? new Tracer(A, P, alpha, m, batch) : null;
  tracer?.record(V, 0);
  for (let k = 1; k <= iterations; k++) {
    for (let b = 0; b < batch; b++) {
      const v = block(V, b, mm);
      // V ← 2V − (V P) V: PyTorch's `V @ P @ V` is left-associative; the order changes the rounding.
      matmulInto(T, v, block(P, b, mm), m);
      matmulInto(U, T, v, m);
      for (let i = 0; i < mm; i++) v[i] = 2 * v[i]! - U[i]!;
    }
    tracer?.record(V, k);
  }

  const result: NewtonResult = { v: V, alpha, backoff };
  if (tracer) result.trace = tracer.records;
  return result;
}

/**
 * SOFT-Norm's scaling of the inverse (§1.5): out_ij = d_i · Kinv_ij · d_j with
 * d = 1/sqrt(rowsum(K2)), evaluated left to right as the official `D * Kinv * Dᵀ`. The
 * arithmetic is that of `kinv`'s element type.
 */
export function symmetricNormalise(kinv: FloatArray, k2: FloatArray, m: number, batch: number): FloatArray {
  const mm = m * m;
  const { alloc, round } = kinv instanceof Float32Array ? F32 : F64;
  const out = alloc(batch * mm);
  const d = new Float64Array(m);
  for (let b = 0; b < batch; b++) {
    const off = b * mm;
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < m; j++) s += round(k2[off + i * m + j]!);
      s = round(s);
      d[i] = round(1 / round(Math.sqrt(s)));
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) out[off + i * m + j] = round(d[i]! * kinv[off + i * m + j]!) * d[j]!;
    }
  }
  return out;
}

/** Matrix b of a batch, as a view. */
function block<T extends FloatArray>(x: T, b: number, mm: number): T {
  return x.subarray(b * mm, (b + 1) * mm) as T;
}

/** A + float32(0.01)·I for every matrix, in the working dtype. */
function shifted(A: FloatArray, m: number, batch: number, ar: Arith): FloatArray {
  const P = ar.alloc(A.length);
  P.set(A);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < m; i++) P[b * m * m + i * m + i] = ar.round(P[b * m * m + i * m + i]! + REGULARISER);
  }
  return P;
}

/** max_i Σ_j x_ij, each sum rounded once to the working precision. */
function maxRowSum(x: FloatArray, m: number, round: (x: number) => number): number {
  let best = -Infinity;
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < m; j++) s += x[i * m + j]!;
    best = Math.max(best, round(s));
  }
  return best;
}

/** max over the batch and columns j of Σ_i |(I − P V)_ij| (the induced 1-norm); I − P V in the working precision, sums rounded once. */
function backoffNorm(
  P: FloatArray,
  V: FloatArray,
  m: number,
  batch: number,
  T: FloatArray,
  round: (x: number) => number,
): number {
  const mm = m * m;
  let best = -Infinity;
  for (let b = 0; b < batch; b++) {
    matmulInto(T, block(P, b, mm), block(V, b, mm), m);
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += Math.abs(round((i === j ? 1 : 0) - T[i * m + j]!));
      best = Math.max(best, round(s));
    }
  }
  return best;
}

/** Computes the §6.3 measures for every matrix of a batch, in float64. */
class Tracer {
  readonly records: NewtonIterationRecord[][] = [];
  private readonly perMatrix: {
    A: Float64Array;
    P: Float64Array;
    normA: number;
    inv: Float64Array | null;
    normInv: number;
    rho: number;
  }[] = [];

  constructor(
    A: FloatArray,
    P: FloatArray,
    alpha: Float64Array,
    private readonly m: number,
    batch: number,
  ) {
    const mm = m * m;
    for (let b = 0; b < batch; b++) {
      const Ab = Float64Array.from(block(A, b, mm));
      const Pb = Float64Array.from(block(P, b, mm));
      const inv = invert(Pb, m);
      // R0 = I − P·alpha·P has eigenvalues 1 − alpha·λ_i(P)²; every step squares R.
      let rho = 0;
      for (const lambda of symmetricEigenvalues(Pb, m)) rho = Math.max(rho, Math.abs(1 - alpha[b]! * lambda * lambda));
      this.perMatrix.push({ A: Ab, P: Pb, normA: frobenius(Ab), inv, normInv: inv ? frobenius(inv) : NaN, rho });
      this.records.push([]);
    }
  }

  record(V: FloatArray, k: number): void {
    const { m } = this;
    const mm = m * m;
    this.perMatrix.forEach((x, b) => {
      const v = Float64Array.from(block(V, b, mm));
      const e1 = frobeniusIdentityMinus(matmul64(x.P, v, m), m);
      const ava = matmul64(matmul64(x.A, v, m), x.A, m);
      for (let i = 0; i < mm; i++) ava[i]! -= x.A[i]!;
      let e3 = NaN;
      if (x.inv) {
        for (let i = 0; i < mm; i++) v[i]! -= x.inv[i]!;
        e3 = frobenius(v) / x.normInv;
      }
      this.records[b]!.push({ k, e1, e2: frobenius(ava) / x.normA, e3, predicted: Math.pow(x.rho, 2 ** k) });
    });
  }
}

export interface ConvergenceVerdict {
  converged: boolean;
  /** First k with e1 < tolerance, or null. */
  iteration: number | null;
  /** Steps the trace covers. */
  iterations: number;
  /** e1 after the last step. */
  residual: number;
  tolerance: number;
  /** Steps after which the exact-arithmetic bound √m·‖R_k‖₂ falls below the tolerance; null if R0 does not contract. */
  predictedIterations: number | null;
  /** One line for people, e.g. "converged at iteration 9 of 20". */
  message: string;
}

/**
 * Whether one matrix's trace converged: e1 = ‖I − P V_k‖_F below `tolerance` (default
 * 1e-6·√m, i.e. an RMS residual entry of ~1e-6/√m). The prediction uses ‖R‖_F ≤ √m·‖R‖₂, so
 * it is the step at which exact arithmetic guarantees the tolerance.
 */
export function convergence(
  trace: readonly NewtonIterationRecord[],
  m: number,
  tolerance = 1e-6 * Math.sqrt(m),
): ConvergenceVerdict {
  const first = trace[0];
  if (!first) throw new RangeError('convergence: empty trace');
  const rho = first.predicted;
  const target = tolerance / Math.sqrt(m);
  let predictedIterations: number | null = null;
  if (rho <= target) predictedIterations = 0;
  // target < rho < 1 here, so the ratio of logs exceeds 1 and this is at least 1.
  else if (rho < 1) predictedIterations = Math.ceil(Math.log2(Math.log(target) / Math.log(rho)));
  return traceVerdict(trace, tolerance, predictedIterations, {
    singular: 'P is singular, so I − P V cannot vanish; V tends to the pseudo-inverse',
    noContraction: 'the iteration does not contract (max |1 − αλ²| ≥ 1)',
  });
}

/**
 * The verdict on a residual trace once the iteration's own theory has said when exact arithmetic
 * reaches `tolerance` (`predictedIterations`, null if never): one wording for SOFT's Newton–Schulz
 * and Nyströmformer's iteration (nystrom-inverse.ts), so their verdicts read alike.
 */
export function traceVerdict(
  trace: readonly { k: number; e1: number; e2: number; e3: number }[],
  tolerance: number,
  predictedIterations: number | null,
  words: { singular: string; noContraction: string },
): ConvergenceVerdict {
  const last = trace[trace.length - 1];
  if (!last) throw new RangeError('convergence: empty trace');
  const iterations = last.k;
  const hit = trace.find((r) => r.e1 < tolerance);
  const iteration = hit ? hit.k : null;

  const residual = last.e1;
  let message: string;
  if (iteration !== null) message = `converged at iteration ${iteration} of ${iterations}`;
  else {
    message = `not converged after ${iterations} iterations: residual ${residual.toExponential(1)}; `;
    // A singular matrix has a mode whose residual stays exactly 1; the iterate then tends to the
    // pseudo-inverse, which only e2 (Penrose condition 1) can judge.
    if (Number.isNaN(trace[0]!.e3)) message += `${words.singular} (e2 = ${last.e2.toExponential(1)})`;
    else if (predictedIterations === null) message += words.noContraction;
    else if (predictedIterations > iterations)
      message += `the slowest mode needs ≈ ${predictedIterations} iterations (predicted)`;
    else
      message += `exact arithmetic reaches the tolerance at iteration ${predictedIterations}: the rest is rounding error`;
  }
  return { converged: iteration !== null, iteration, iterations, residual, tolerance, predictedIterations, message };
}
