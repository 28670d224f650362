/**
 * Pseudo-inverse convergence analysis (issue: "proof that SOFT's Newton–Raphson pseudo-inverse
 * has converged"): for every SOFT stage and head, the model's real landmark kernel matrices
 * K2 = exp(−dist(L, L)/2) — from the stage's attention graph with the given weights and input —
 * go through the official iteration with a per-step trace (newton.ts, error measures in
 * float64): ‖I − P·V_k‖_F, ‖A·V_k·A − A‖_F/‖A‖_F, the error against the float64 exact inverse,
 * the exact-arithmetic prediction from the spectrum, the condition number, the steps at which
 * each error reaches 1e-3 and 1e-6, and a verdict in words. A stage that runs Nyströmformer gets
 * the same for its own A = softmax(Q̃K̃ᵀ) — built by the layer's own graph (nystromKernels) —
 * and its third-order iteration (nystrom-inverse.ts, docs/MATHS.md §6.1).
 */
import type { ModelSpec, NewtonVariant, StageSpec } from '../core/models/spec';
import { stageGrids, stageLandmarks, usesNewton } from '../core/models/build';
import { nystromSettings } from '../core/models/comparison';
import { softAttention } from '../core/engine/attention/soft';
import { nystromKernels } from '../core/engine/attention/nystrom';
import { attentionPrefix, layerContext, nystromShape, softShape } from '../core/engine/blocks';
import { ReferenceRuntime, type WeightSource } from '../core/engine/lowerings/reference';
import { Graph } from '../core/engine/graph';
import {
  REGULARISER,
  convergence,
  newtonInverse,
  type ConvergenceVerdict,
  type NewtonDtype,
  type NewtonIterationRecord,
} from '../core/engine/newton';
import { nystromConvergence, nystromInverse } from '../core/engine/nystrom-inverse';
import { symmetricEigenvalues } from '../core/engine/linalg';
import { normals, randomWeights, seededRandom } from '../core/engine/weights';
import type { PinvHead, PinvMatrixReport, PinvMethod, PinvReport, PinvStage } from '../../protocol/results';

const THRESHOLDS = [1e-3, 1e-6] as const;

/** What the traces of both iterations record per step. */
type Measures = Pick<NewtonIterationRecord, 'k' | 'e1' | 'e2' | 'e3' | 'predicted'>;

/** The trace, the thresholds read off it and the verdict, as the report spells them (both iterations). */
function traceReport(
  trace: readonly Measures[],
  verdict: ConvergenceVerdict,
): Pick<PinvMatrixReport, 'iterations' | 'reaches' | 'converged' | 'convergedAt' | 'predictedIterations' | 'verdict'> {
  const firstBelow = (pick: (r: Measures) => number, t: number) => trace.find((r) => pick(r) <= t)?.k ?? null;
  return {
    iterations: trace.map((r) => ({ k: r.k, residual: r.e1, penrose: r.e2, exactError: r.e3, predicted: r.predicted })),
    reaches: Object.fromEntries(
      THRESHOLDS.map((t) => [
        t.toExponential(0),
        {
          residual: firstBelow((r) => r.e1, t),
          penrose: firstBelow((r) => r.e2, t),
          exactError: firstBelow((r) => r.e3, t),
        },
      ]),
    ),
    converged: verdict.converged,
    convergedAt: verdict.iteration,
    predictedIterations: verdict.predictedIterations,
    verdict: verdict.message,
  };
}

/** Trace, spectrum and verdict of each m×m matrix of a batch, iterated as one batch (variant B couples them). */
export function analyseMatrices(
  a: Float32Array | Float64Array,
  m: number,
  batch: number,
  variant: NewtonVariant,
  iterations: number,
  dtype: NewtonDtype,
): PinvMatrixReport[] {
  const result = newtonInverse(a, m, batch, { variant, iterations, dtype, trace: true });
  const out: PinvMatrixReport[] = [];
  for (let b = 0; b < batch; b++) {
    const trace = result.trace![b]!;
    const block = Float64Array.from(a.subarray(b * m * m, (b + 1) * m * m));
    if (variant === 'A') for (let i = 0; i < m; i++) block[i * m + i]! += REGULARISER;
    const eig = symmetricEigenvalues(block, m);
    const absEig = Array.from(eig, Math.abs);
    const verdict = convergence(trace, m);
    out.push({
      m,
      alpha: result.alpha[b]!,
      backoffHalvings: result.backoff?.halvings ?? null,
      conditionNumber: Math.max(...absEig) / Math.min(...absEig),
      eigenvalueRange: [Math.min(...eig), Math.max(...eig)],
      ...traceReport(trace, verdict),
    });
  }
  return out;
}

/**
 * The same report for Nyströmformer's iteration on each m×m matrix of a batch, iterated as one
 * batch (Z₀'s coefficient is shared, docs/MATHS.md §6A). `alpha` is that coefficient c; the
 * condition number and the range are A's singular values (A = softmax(Q̃K̃ᵀ) is not symmetric, and
 * the iteration sees A only through c·A·Aᵀ).
 */
export function analyseNystromMatrices(
  a: Float32Array | Float64Array,
  m: number,
  batch: number,
  iterations: number,
  dtype: NewtonDtype,
): PinvMatrixReport[] {
  const result = nystromInverse(a, m, batch, { iterations, trace: true, dtype });
  return result.trace!.map((trace, b) => {
    const sigma = result.singularValues![b]!;
    const verdict = nystromConvergence(trace, m, result.coefficient, sigma.min);
    return {
      m,
      alpha: result.coefficient,
      backoffHalvings: null,
      // A numerically singular A (σ_min at rounding level, possibly 0) is reported at 1/ε, not ∞: JSON has no ∞.
      conditionNumber: Math.min(sigma.max / sigma.min, 1 / Number.EPSILON),
      eigenvalueRange: [sigma.min, sigma.max],
      ...traceReport(trace, verdict),
    };
  });
}

export interface PinvRequestOptions {
  resolution: number;
  /** Weights: a checkpoint's, or seeded random ones. */
  weights?: WeightSource;
  weightsLabel?: string;
  seed?: number;
  /** Iteration arithmetic: float32 as the model runs, or float64. */
  dtype?: NewtonDtype;
  /** Steps to trace in every stage (default: each stage's own count, newton_maxiter or nystrom_iterations). */
  iterations?: number;
}

/** K2 of one stage's first block: [heads, m, m] in float32, as the model computes it. */
function landmarkKernels(
  model: ModelSpec,
  stage: StageSpec,
  grid: number,
  weights: WeightSource | undefined,
  seed: number,
): { k2: Float32Array; m: number; weightsUsed: string } {
  const g = new Graph();
  const N = grid * grid;
  const x = g.input('x', [1, N, stage.dim]);
  const c = layerContext(stage, grid, 1, { distance: model.kernelMethod === 'torch' ? 'expanded' : 'direct' });
  const parts = softAttention(g, x, attentionPrefix(stage, 0), softShape(stage, model, c));
  const source = weights ?? randomWeights(g, seed);
  // Unit-variance tokens: the scale a LayerNorm-ed residual stream has going into attention.
  const input = normals(N * stage.dim, seededRandom(seed + stage.index));
  const [k2] = new ReferenceRuntime('float32').run(g, { x: input }, source, [parts.landmarkKernel]);
  return {
    k2: k2!.data as Float32Array,
    m: stageLandmarks(stage, grid, grid),
    weightsUsed: weights ? 'checkpoint' : `random (seed ${seed})`,
  };
}

/**
 * Nyströmformer's A = softmax(Q̃K̃ᵀ) of one stage's first block: [heads, m, m] in float32, from the
 * layer's own graph (nystromKernels) with the same weights and input as the SOFT stages get.
 */
export function nystromMatrices(
  model: ModelSpec,
  stage: StageSpec,
  grid: number,
  weights: WeightSource | undefined,
  seed: number,
): { a: Float32Array; m: number } {
  const g = new Graph();
  const N = grid * grid;
  const x = g.input('x', [1, N, stage.dim]);
  const parts = nystromKernels(
    g,
    x,
    attentionPrefix(stage, 0),
    nystromShape(stage, model, layerContext(stage, grid, 1)),
  );
  const source = weights ?? randomWeights(g, seed);
  const input = normals(N * stage.dim, seededRandom(seed + stage.index));
  const [a] = new ReferenceRuntime('float32').run(g, { x: input }, source, [parts.a]);
  return { a: a!.data as Float32Array, m: parts.landmarks };
}

/** The iteration a stage runs, if any, with its configured and traced step counts. */
function methodOf(stage: StageSpec, model: ModelSpec, traced: number | undefined): PinvMethod | null {
  if (usesNewton(stage)) {
    const n = model.newton.maxIter;
    const who = stage.attention === 'soft_norm' ? 'SOFT-Norm' : 'SOFT';
    return {
      kind: 'newton',
      label: `Newton–Raphson (${who}, variant ${model.newton.variant}, ${n} iterations)`,
      setting: 'newton_maxiter',
      configured: n,
      traced: traced ?? n,
    };
  }
  if (stage.attention === 'nystrom') {
    const n = nystromSettings(stage, model).iterations;
    return {
      kind: 'nystrom',
      label: `Nyströmformer third-order (${n} iterations)`,
      setting: 'nystrom_iterations',
      configured: n,
      traced: traced ?? n,
    };
  }
  return null;
}

export function analysePinv(model: ModelSpec, o: PinvRequestOptions): PinvReport {
  const grids = stageGrids(model, o.resolution);
  const dtype = o.dtype ?? 'float32';
  const iterations = o.iterations ?? model.newton.maxIter;
  const seed = o.seed ?? 0;
  const stages: PinvStage[] = [];
  for (const stage of model.stages) {
    const method = methodOf(stage, model, o.iterations);
    if (!method) continue;
    const grid = grids[stage.index - 1]!;
    const base = { stage: stage.index, attention: stage.attention, grid, method };
    if (method.kind === 'nystrom') {
      const shape = nystromShape(stage, model, layerContext(stage, grid, 1));
      const rw = shape.ratioW ?? shape.ratio;
      if (Math.floor(grid / shape.ratio) * Math.floor(grid / rw) < 1) {
        stages.push({
          ...base,
          landmarks: 0,
          heads: [],
          skipped: `no landmarks: a ${grid}×${grid} grid is smaller than the ${shape.ratio}×${rw} landmark pooling`,
        });
        continue;
      }
      const { a, m } = nystromMatrices(model, stage, grid, o.weights, seed);
      const matrices = analyseNystromMatrices(a, m, stage.heads, method.traced, dtype);
      stages.push({ ...base, landmarks: m, heads: matrices.map((r, head) => ({ head, ...r })), skipped: null });
      continue;
    }
    const m = stageLandmarks(stage, grid, grid);
    if (m < 1) {
      stages.push({
        ...base,
        landmarks: 0,
        heads: [],
        skipped: `no landmarks: a ${grid}×${grid} grid is smaller than the ${stage.srRatio}×${stage.srRatio} landmark conv`,
      });
      continue;
    }
    // The distance in `direct` form materialises N·m·dh values; fine for the sizes a pinv check uses.
    const { k2 } = landmarkKernels(model, stage, grid, o.weights, seed);
    const matrices = analyseMatrices(k2, m, stage.heads, model.newton.variant, method.traced, dtype);
    const heads: PinvHead[] = matrices.map((r, head) => ({ head, ...r }));
    stages.push({ ...base, landmarks: m, heads, skipped: null });
  }
  return {
    model: model.name,
    resolution: o.resolution,
    variant: model.newton.variant,
    variantSource: model.newton.variantSource,
    iterations,
    arithmetic: dtype,
    weights: o.weightsLabel ?? (o.weights ? 'checkpoint' : `random (seed ${seed}, official-style init)`),
    input: `random N(0,1) tokens (seed ${seed})`,
    stages,
    summary: summarise(stages),
  };
}

const KIND_NAMES: Record<PinvMethod['kind'], string> = {
  newton: "SOFT's Newton–Raphson",
  nystrom: "Nyströmformer's iteration",
};

/** One line; a config that mixes the two iterations gets one clause per iteration, each counted against its own steps. */
function summarise(stages: PinvStage[]): string {
  const kinds = [...new Set(stages.filter((s) => s.heads.length > 0).map((s) => s.method!.kind))];
  if (kinds.length === 0)
    return stages.some((s) => s.method?.kind === 'nystrom')
      ? "no stage runs SOFT's Newton inverse or Nyströmformer's at this resolution"
      : 'no SOFT stage runs a Newton inverse at this resolution';
  const clause = (kind: PinvMethod['kind']) => summariseKind(stages.filter((s) => s.method!.kind === kind));
  if (kinds.length === 1) return clause(kinds[0]!);
  return kinds.map((k) => `${KIND_NAMES[k]}: ${clause(k)}`).join('; ');
}

function summariseKind(stages: PinvStage[]): string {
  const heads = stages.flatMap((s) => s.heads.map((h) => ({ s: s.stage, h })));
  const iterations = stages[0]!.method!.traced;
  const bad = heads.filter((x) => !x.h.converged);
  if (bad.length === 0) {
    const latest = Math.max(...heads.map((x) => x.h.convergedAt ?? 0));
    return `converged after ${latest} of ${iterations} in every stage and head`;
  }
  const finalResidual = (h: PinvHead) => h.iterations[h.iterations.length - 1]!.residual;
  const worst = heads.reduce((w, x) => (finalResidual(x.h) > finalResidual(w.h) ? x : w)).h;
  return `not converged in ${bad.length} of ${heads.length} stage-heads: residual ${finalResidual(worst).toPrecision(2)} after ${iterations} (${bad.map((x) => `stage ${x.s} head ${x.h.head}`).join(', ')})`;
}
