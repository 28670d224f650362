/**
 * SOFT's Newton–Raphson pseudo-inverse (docs/MATHS.md §1.4) and SOFT-Norm's D^-½ scaling of it
 * (§1.5), written once on the engine's op set so every runtime runs the same unrolled
 * iteration. `server/core/engine/newton.ts` is the float64 oracle (with per-iteration error
 * traces) this graph is tested against.
 *
 * Variant B's back-off (`while ‖I − P·V0‖₁ > 1.01 and cnt < 10: alpha /= 2`) is data
 * dependent; a graph has no loops, so it evaluates the norm for all ten candidate step sizes
 * (element-wise work on one P² — cheap next to the 20 iterations) and selects the first that
 * passes with 0/1 masks, which gives exactly the step size the loop would stop at.
 */
import { defaultNewtonBackward, type NewtonBackward, type NewtonVariant } from '../../models/spec';
import type { Graph, Tensor } from '../graph';
import { REGULARISER } from '../newton';

export interface PinvOptions {
  variant: NewtonVariant;
  iterations: number;
  /** How training differentiates it (spec.ts NewtonBackward); default: the variant's own code's choice. */
  backward?: NewtonBackward;
}

const ALPHA_A = 1.8;
const ALPHA_B = 2;
const BACKOFF_LIMIT = 1.01;
const BACKOFF_MAX = 10;

/** The maximum over every element of `t`, as a [1, 1] tensor (variant B's global reductions, quirk Q4). */
export function globalMax(g: Graph, t: Tensor): Tensor {
  const total = t.shape.reduce((a, b) => a * b, 1);
  return g.reduce('max', g.reshape(t, [1, total]), -1);
}

/** V ≈ P⁻¹ for each m×m matrix of `a` ([..., m, m]); P = A + 0.01·I for variant A, A for B. */
export function newtonInverseGraph(g: Graph, a: Tensor, o: PinvOptions): Tensor {
  return newtonIterationGraph(g, a, o).at(-1)!;
}

/**
 * The iterates V_0 … V_T of newtonInverseGraph (V_T is its result, and carries the analytic gradient
 * rule): a T-step run's result is exactly V_T of a longer run, so one graph serves a sweep of T.
 */
export function newtonIterationGraph(g: Graph, a: Tensor, o: PinvOptions): Tensor[] {
  const m = a.shape[a.shape.length - 1]!;
  if (a.shape[a.shape.length - 2] !== m)
    throw new Error(`newtonInverse: [${a.shape}] is not a batch of square matrices`);
  const rowSums = g.reduce('sum', a, -1); // [..., m, 1]
  let p: Tensor;
  let alpha: Tensor;
  if (o.variant === 'A') {
    // Per matrix: s = max row sum of the unshifted A, alpha = 1.8/s².
    const s = g.reduce('max', rowSums, -2); // [..., 1, 1]
    alpha = g.scale(g.unary('reciprocal', g.unary('square', s)), ALPHA_A);
    const shiftedEye = g.eye(m, REGULARISER);
    p = g.addT(a, shiftedEye);
  } else {
    const s = globalMax(g, rowSums); // one scalar for the whole batch × heads
    const alpha0 = g.scale(g.unary('reciprocal', g.unary('square', s)), ALPHA_B);
    p = a;
    const pp = g.matmul(p, p);
    const eye = g.eye(m);
    let stillBad: Tensor = g.scalar(1, 'backoff.prefix');
    let factor: Tensor = g.scalar(0, 'backoff.factor');
    for (let c = 0; c < BACKOFF_MAX; c++) {
      const alphaC = g.scale(alpha0, 2 ** -c);
      // ‖I − P·(alpha·P)‖₁ = max column-abs-sum, maximised over the batch.
      const residual = g.sub(eye, g.mul(pp, alphaC));
      const norm = globalMax(g, g.reduce('sum', g.unary('abs', residual), -2));
      const bad = g.binary('greater', norm, g.scalar(BACKOFF_LIMIT, 'backoff.limit'));
      const good = g.sub(g.scalar(1, 'one'), bad);
      factor = g.addT(factor, g.scale(g.mul(stillBad, good), 2 ** -c));
      stillBad = g.mul(stillBad, bad);
    }
    factor = g.addT(factor, g.scale(stillBad, 2 ** -BACKOFF_MAX));
    alpha = g.mul(alpha0, factor);
  }
  let v = g.mul(p, alpha);
  const iterates = [v];
  for (let k = 0; k < o.iterations; k++) {
    // V ← 2V − (V·P)·V, left-associative as PyTorch evaluates `V @ P @ V`.
    v = g.sub(g.scale(v, 2), g.matmul(g.matmul(v, p), v));
    iterates.push(v);
  }
  if ((o.backward ?? defaultNewtonBackward(o.variant)) === 'analytic') {
    const inverse = v;
    // P = A (+ 0.01·I), so dA = dP = −Vᵀ·G·Vᵀ.
    g.customGradient(inverse, {
      label: 'Newton inverse: analytic gradient −Vᵀ·G·Vᵀ',
      inputs: [a],
      vjp: (gg, grad) => {
        const vT = gg.transposeLast2(inverse);
        return [gg.scale(gg.matmul(gg.matmul(vT, grad), vT), -1)];
      },
    });
  }
  return iterates;
}

/** SOFT-Norm (§1.5): diag(d)·V·diag(d) with d = rowsum(A)^-½, as the code's broadcast products. */
export function symmetricNormaliseGraph(g: Graph, a: Tensor, inverse: Tensor): Tensor {
  const d = g.unary('reciprocal', g.unary('sqrt', g.reduce('sum', a, -1))); // [..., m, 1]
  return g.mul(g.mul(inverse, d), g.transposeLast2(d));
}
