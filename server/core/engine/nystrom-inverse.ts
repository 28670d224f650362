/**
 * Nyströmformer's iterative pseudo-inverse (docs/MATHS.md §6.1) in float64 on plain arrays: the
 * oracle the graph version (attention/nystrom.ts, `nystromInverseGraph`) is tested against, and
 * the per-iteration error measures the pseudo-inverse view shows, as newton.ts gives them for
 * SOFT's Newton–Schulz iteration.
 *
 *   Z₀ = Aᵀ / (max_j Σ_i |A_ij| · max_i Σ_j |A_ij|),  both maxima over the WHOLE batch;
 *   Z ← ¼·Z·(13I − AZ·(15I − AZ·(7I − AZ))),  `iterations` times (6 in every reference).
 *
 * The initialisation is the reorganised code's (mlpen/Nystromformer
 * `reorganized_code/encoders/backbones/efficient_attentions/attention_nystrom.py`,
 * `iterative_inv`): `1 / (torch.max(torch.sum(torch.abs(K), dim=-2)) * torch.max(torch.sum(
 * torch.abs(K), dim=-1))) * K.transpose(-1, -2)`, the paper's Z₀ = Aᵀ/(‖A‖₁‖A‖∞) with the norms
 * maximised over every matrix of the batch and every head. So, like SOFT's variant B (quirk Q4),
 * one image's Z depends on the others in its batch. `LRA/code/attention_nystrom.py` ("original")
 * uses only the largest column sum, `ImageNet/T2T-ViT/models/token_nystromformer.py` ("exact") the
 * per-matrix largest column sum; for softmax rows ‖A‖∞ = 1, so all three agree when the batch
 * holds one matrix.
 *
 * With R = I − AZ, one step gives R' = (3R³ + R⁴)/4 (derived; docs/MATHS.md §6.1), so the
 * residual falls with third order once ‖R‖ < 1.
 */
import { traceVerdict, type ConvergenceVerdict } from './newton';
import {
  frobenius,
  frobeniusIdentityMinus,
  invert,
  matmul64,
  matmulInto,
  symmetricEigenvalues,
  type FloatArray,
} from './linalg';

export interface NystromIterationRecord {
  /** Steps done: 0 is Z₀. */
  k: number;
  /** ‖I − A·Z_k‖_F, the residual R_k whose recursion is R' = (3R³ + R⁴)/4. */
  e1: number;
  /** ‖A·Z_k·A − A‖_F / ‖A‖_F (Penrose condition 1; meaningful when A is singular). */
  e2: number;
  /** ‖Z_k − A⁻¹‖_F / ‖A⁻¹‖_F with A⁻¹ a float64 Gauss–Jordan inverse; NaN when A is numerically singular. */
  e3: number;
  /**
   * Exact-arithmetic ‖I − A·Z_k‖₂ (see `nystromModeResiduals`): exact for every A, not only a
   * normal one, because R₀ = I − c·A·Aᵀ is symmetric and each R_k is a polynomial in it.
   */
  predicted: number;
}

export interface NystromInverseResult {
  /** The batch of Z after `iterations` steps, float64 (float32-exact values in the float32 path). */
  z: Float64Array;
  /** The one Z₀ coefficient 1/(max column abs-sum · max row abs-sum), shared by the batch. */
  coefficient: number;
  /** trace[b][k] for matrix b, k = 0 … iterations, when asked for. */
  trace?: NystromIterationRecord[][];
  /** Per matrix, when traced: A's extreme singular values, which fix the predicted curve. */
  singularValues?: { min: number; max: number }[];
}

/**
 * Z ≈ A⁺ for each m×m matrix of the batch, by Nyströmformer's third-order iteration. `dtype`
 * float64 (the default, whatever the input array) is the oracle; float32 computes as the model's
 * float32 graph does, every stored value rounded to float32 (as newton.ts: matmul partial sums
 * rounded, the abs-sums for the coefficient accumulated in float64 and rounded once). The traced
 * measures are float64 either way.
 */
export function nystromInverse(
  a: FloatArray,
  m: number,
  batch: number,
  options: { iterations: number; trace?: boolean; dtype?: 'float32' | 'float64' },
): NystromInverseResult {
  const { iterations } = options;
  if (!Number.isInteger(m) || m < 1 || !Number.isInteger(batch) || batch < 1)
    throw new RangeError(`nystromInverse: m and batch must be positive integers (got m=${m}, batch=${batch})`);
  if (!Number.isInteger(iterations) || iterations < 0)
    throw new RangeError(`nystromInverse: iterations must be a non-negative integer (got ${iterations})`);
  const mm = m * m;
  if (a.length < batch * mm)
    throw new RangeError(`nystromInverse: ${a.length} values, need ${batch}·${m}² = ${batch * mm}`);
  const f32 = options.dtype === 'float32';
  const alloc = (n: number): FloatArray => (f32 ? new Float32Array(n) : new Float64Array(n));
  const round = f32 ? Math.fround : (x: number) => x;
  // set() converts, so a float64 input is rounded to float32 here as the model's tensors are.
  const A = alloc(batch * mm);
  A.set(a.subarray(0, batch * mm));

  let maxCol = 0;
  let maxRow = 0;
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < m; i++) {
      let row = 0;
      let col = 0;
      for (let j = 0; j < m; j++) {
        row += Math.abs(A[b * mm + i * m + j]!);
        col += Math.abs(A[b * mm + j * m + i]!);
      }
      maxRow = Math.max(maxRow, round(row));
      maxCol = Math.max(maxCol, round(col));
    }
  }
  const coefficient = round(1 / round(maxCol * maxRow));

  const Z = alloc(batch * mm);
  const records: NystromIterationRecord[][] = [];
  const exact: (Float64Array | null)[] = [];
  const modes: number[][] = [];
  const singularValues: { min: number; max: number }[] = [];
  for (let b = 0; b < batch; b++) {
    const off = b * mm;
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) Z[off + i * m + j] = coefficient * A[off + j * m + i]!;
    if (options.trace) {
      const ab = Float64Array.from(A.subarray(off, off + mm));
      const inv = invert(ab, m);
      const sigma = extremeSingularValues(ab, inv, m);
      exact.push(inv);
      singularValues.push(sigma);
      // The slowest and the fastest mode bound every other (the map is increasing on [0, 1]).
      const slow = nystromModeResiduals(coefficient * sigma.min * sigma.min, iterations);
      const fast = nystromModeResiduals(coefficient * sigma.max * sigma.max, iterations);
      modes.push(slow.map((r, k) => Math.max(Math.abs(r), Math.abs(fast[k]!))));
      records.push([]);
    }
  }
  const record = (k: number) => {
    for (let b = 0; b < batch; b++)
      records[b]!.push(
        measures(A.subarray(b * mm, (b + 1) * mm), Z.subarray(b * mm, (b + 1) * mm), exact[b]!, m, k, modes[b]![k]!),
      );
  };
  if (options.trace) record(0);

  for (let k = 1; k <= iterations; k++) {
    for (let b = 0; b < batch; b++) {
      const ab = A.subarray(b * mm, (b + 1) * mm);
      const zb = Z.subarray(b * mm, (b + 1) * mm);
      zb.set(nystromStep(ab, zb, m));
    }
    if (options.trace) record(k);
  }
  const result: NystromInverseResult = { z: Z instanceof Float64Array ? Z : Float64Array.from(Z), coefficient };
  if (options.trace) {
    result.trace = records;
    result.singularValues = singularValues;
  }
  return result;
}

/**
 * One step ¼·Z·(13I − AZ·(15I − AZ·(7I − AZ))), associated as the reference code, in the
 * arithmetic of z's element type (a Float32Array z rounds every stored value to float32).
 */
export function nystromStep<T extends FloatArray>(a: FloatArray, z: T, m: number): T {
  const alloc = (): T => (z instanceof Float32Array ? new Float32Array(m * m) : new Float64Array(m * m)) as T;
  const product = (x: FloatArray, y: FloatArray): T => {
    const out = alloc();
    matmulInto(out, x, y, m);
    return out;
  };
  const az = product(a, z);
  const minus = (c: number, x: T): T => {
    const out = alloc();
    for (let i = 0; i < m * m; i++) out[i] = -x[i]!;
    for (let i = 0; i < m; i++) out[i * m + i]! += c;
    return out;
  };
  const inner = product(az, minus(7, az));
  const middle = product(az, minus(15, inner));
  const quarter = z.map((x) => 0.25 * x) as T;
  return product(quarter, minus(13, middle));
}

/**
 * ‖I − A·Z_k‖₂-contributions of one mode in exact arithmetic, k = 0 … steps (docs/MATHS.md §6.1).
 * Z₀ = c·Aᵀ makes A·Z₀ = c·A·Aᵀ, symmetric with eigenvalues x = c·σ², σ a singular value of A;
 * every later A·Z_k is a polynomial in A·Z₀ (the step multiplies A·Z by ¼(13 − 15X + 7X² − X³)),
 * so each mode evolves on its own: x ← x(13 − 15x + 7x² − x³)/4, i.e. r = 1 − x ← (3r³ + r⁴)/4.
 * While x is small the x form keeps its digits (r = 1 − x would round to 1 and never move);
 * once r ≤ ½ the r form does. Returns r_0 … r_steps.
 */
export function nystromModeResiduals(x0: number, steps: number): number[] {
  const out: number[] = [];
  let x = x0;
  let r = 1 - x0;
  let residualForm = Math.abs(r) <= 0.5;
  for (let k = 0; k <= steps; k++) {
    out.push(residualForm ? r : 1 - x);
    if (residualForm) r = (3 * r ** 3 + r ** 4) / 4;
    else {
      x = (x * (13 - 15 * x + 7 * x * x - x * x * x)) / 4;
      if (Math.abs(1 - x) <= 0.5) {
        residualForm = true;
        r = 1 - x;
      }
    }
  }
  return out;
}

/**
 * Steps after which exact arithmetic brings ‖I − A·Z_k‖₂ to `target` for a slowest mode
 * x₀ = c·σ_min² (the same recursion as `nystromModeResiduals`); null when x₀ = 0 (a singular A: that
 * mode never moves). Near x = 0 each step multiplies x by about 13/4, so even x₀ = 1e-300 needs
 * under 600 steps.
 */
export function nystromStepsTo(x0: number, target: number): number | null {
  if (!(x0 > 0)) return null;
  let x = x0;
  let r = 1 - x0;
  for (let k = 0; k < 5000; k++) {
    if (Math.abs(r) <= target) return k;
    if (Math.abs(r) <= 0.5) r = (3 * r ** 3 + r ** 4) / 4;
    else {
      x = (x * (13 - 15 * x + 7 * x * x - x * x * x)) / 4;
      r = 1 - x;
    }
  }
  return null;
}

/**
 * The verdict on one matrix's trace, in the words SOFT's Newton–Schulz verdict uses (newton.ts
 * `convergence`): e1 below `tolerance` (default 1e-6·√m); the prediction is the step at which the
 * exact-arithmetic ‖R_k‖₂ falls below tolerance/√m, so that ‖R_k‖_F ≤ √m·‖R_k‖₂ is surely below it.
 */
export function nystromConvergence(
  trace: readonly NystromIterationRecord[],
  m: number,
  coefficient: number,
  sigmaMin: number,
  tolerance = 1e-6 * Math.sqrt(m),
): ConvergenceVerdict {
  return traceVerdict(trace, tolerance, nystromStepsTo(coefficient * sigmaMin * sigmaMin, tolerance / Math.sqrt(m)), {
    singular: 'A is singular, so I − A Z cannot vanish; Z tends to the pseudo-inverse',
    noContraction: 'the iteration does not contract (c·σ_min² underflows to 0)',
  });
}

/**
 * σ_min and σ_max of A in float64. σ_max² is the top eigenvalue of A·Aᵀ; σ_min from A·Aᵀ's bottom
 * eigenvalue would carry an absolute error of ~ε·σ_max², so where A has an inverse it is
 * 1/‖A⁻¹‖₂ instead (the top eigenvalue of A⁻¹·A⁻ᵀ, accurate to ε relative).
 */
function extremeSingularValues(a: Float64Array, inv: Float64Array | null, m: number): { min: number; max: number } {
  const gram = (x: Float64Array) => {
    const t = new Float64Array(m * m);
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) t[i * m + j] = x[j * m + i]!;
    return symmetricEigenvalues(matmul64(x, t, m), m);
  };
  const eig = gram(a);
  const max = Math.sqrt(Math.max(eig[m - 1]!, 0));
  const min = inv ? 1 / Math.sqrt(gram(inv)[m - 1]!) : Math.sqrt(Math.max(eig[0]!, 0));
  return { min, max };
}

function measures(
  a: FloatArray,
  z: FloatArray,
  inv: Float64Array | null,
  m: number,
  k: number,
  predicted: number,
): NystromIterationRecord {
  const e1 = frobeniusIdentityMinus(matmul64(a, z, m), m);
  const aza = matmul64(matmul64(a, z, m), a, m);
  for (let i = 0; i < m * m; i++) aza[i]! -= a[i]!;
  let e3 = NaN;
  if (inv) {
    const d = new Float64Array(m * m);
    for (let i = 0; i < m * m; i++) d[i] = z[i]! - inv[i]!;
    e3 = frobenius(d) / frobenius(inv);
  }
  return { k, e1, e2: frobenius(aza) / frobenius(a), e3, predicted };
}
