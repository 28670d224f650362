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
import { frobenius, frobeniusIdentityMinus, invert, matmul64, type FloatArray } from './linalg';

export interface NystromIterationRecord {
  /** Steps done: 0 is Z₀. */
  k: number;
  /** ‖I − A·Z_k‖_F, the residual R_k whose recursion is R' = (3R³ + R⁴)/4. */
  e1: number;
  /** ‖A·Z_k·A − A‖_F / ‖A‖_F (Penrose condition 1; meaningful when A is singular). */
  e2: number;
  /** ‖Z_k − A⁻¹‖_F / ‖A⁻¹‖_F with A⁻¹ a float64 Gauss–Jordan inverse; NaN when A is numerically singular. */
  e3: number;
}

export interface NystromInverseResult {
  /** The batch of Z after `iterations` steps, float64. */
  z: Float64Array;
  /** The one Z₀ coefficient 1/(max column abs-sum · max row abs-sum), shared by the batch. */
  coefficient: number;
  /** trace[b][k] for matrix b, k = 0 … iterations, when asked for. */
  trace?: NystromIterationRecord[][];
}

/** Z ≈ A⁺ for each m×m matrix of the batch, by Nyströmformer's third-order iteration. */
export function nystromInverse(
  a: FloatArray,
  m: number,
  batch: number,
  options: { iterations: number; trace?: boolean },
): NystromInverseResult {
  const { iterations } = options;
  if (!Number.isInteger(m) || m < 1 || !Number.isInteger(batch) || batch < 1)
    throw new RangeError(`nystromInverse: m and batch must be positive integers (got m=${m}, batch=${batch})`);
  if (!Number.isInteger(iterations) || iterations < 0)
    throw new RangeError(`nystromInverse: iterations must be a non-negative integer (got ${iterations})`);
  const mm = m * m;
  if (a.length < batch * mm)
    throw new RangeError(`nystromInverse: ${a.length} values, need ${batch}·${m}² = ${batch * mm}`);
  const A = Float64Array.from(a.subarray(0, batch * mm));

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
      maxRow = Math.max(maxRow, row);
      maxCol = Math.max(maxCol, col);
    }
  }
  const coefficient = 1 / (maxCol * maxRow);

  const Z = new Float64Array(batch * mm);
  const records: NystromIterationRecord[][] = [];
  const exact: (Float64Array | null)[] = [];
  for (let b = 0; b < batch; b++) {
    const off = b * mm;
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) Z[off + i * m + j] = coefficient * A[off + j * m + i]!;
    if (options.trace) {
      exact.push(invert(A.subarray(off, off + mm), m));
      records.push([]);
    }
  }
  const record = (k: number) => {
    for (let b = 0; b < batch; b++)
      records[b]!.push(measures(A.subarray(b * mm, (b + 1) * mm), Z.subarray(b * mm, (b + 1) * mm), exact[b]!, m, k));
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
  const result: NystromInverseResult = { z: Z, coefficient };
  if (options.trace) result.trace = records;
  return result;
}

/** One step ¼·Z·(13I − AZ·(15I − AZ·(7I − AZ))), associated as the reference code. */
export function nystromStep(a: Float64Array, z: Float64Array, m: number): Float64Array {
  const az = matmul64(a, z, m);
  const minus = (c: number, x: Float64Array) => {
    const out = new Float64Array(m * m);
    for (let i = 0; i < m * m; i++) out[i] = -x[i]!;
    for (let i = 0; i < m; i++) out[i * m + i]! += c;
    return out;
  };
  const inner = matmul64(az, minus(7, az), m);
  const middle = matmul64(az, minus(15, inner), m);
  const quarter = z.map((x) => 0.25 * x);
  return matmul64(quarter, minus(13, middle), m);
}

function measures(
  a: Float64Array,
  z: Float64Array,
  inv: Float64Array | null,
  m: number,
  k: number,
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
  return { k, e1, e2: frobenius(aza) / frobenius(a), e3 };
}
