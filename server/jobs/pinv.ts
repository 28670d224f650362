/**
 * Pseudo-inverse convergence analysis (issue: "proof that SOFT's Newton–Raphson pseudo-inverse
 * has converged"): for every SOFT stage and head, the model's real landmark kernel matrices
 * K2 = exp(−dist(L, L)/2) — from the stage's attention graph with the given weights and input —
 * go through the official iteration with a per-step trace (newton.ts, error measures in
 * float64): ‖I − P·V_k‖_F, ‖A·V_k·A − A‖_F/‖A‖_F, the error against the float64 exact inverse,
 * the exact-arithmetic prediction from the spectrum, the condition number, the steps at which
 * each error reaches 1e-3 and 1e-6, and a verdict in words.
 */
import type { ModelSpec, NewtonVariant, StageSpec } from '../core/models/spec';
import { landmarkCount, stageGrids, usesNewton } from '../core/models/build';
import { softAttention } from '../core/engine/attention/soft';
import { attentionPrefix, layerContext, softShape } from '../core/engine/blocks';
import { ReferenceRuntime, type WeightSource } from '../core/engine/lowerings/reference';
import { Graph } from '../core/engine/graph';
import {
  REGULARISER,
  convergence,
  newtonInverse,
  type NewtonDtype,
  type NewtonIterationRecord,
} from '../core/engine/newton';
import { symmetricEigenvalues } from '../core/engine/linalg';
import { normals, randomWeights, seededRandom } from '../core/engine/weights';
import type { PinvHead, PinvMatrixReport, PinvReport, PinvStage } from '../../protocol/results';

const THRESHOLDS = [1e-3, 1e-6] as const;

function firstBelow(
  trace: readonly NewtonIterationRecord[],
  pick: (r: NewtonIterationRecord) => number,
  t: number,
): number | null {
  return trace.find((r) => pick(r) <= t)?.k ?? null;
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
      iterations: trace.map((r) => ({
        k: r.k,
        residual: r.e1,
        penrose: r.e2,
        exactError: r.e3,
        predicted: r.predicted,
      })),
      reaches: Object.fromEntries(
        THRESHOLDS.map((t) => [
          t.toExponential(0),
          {
            residual: firstBelow(trace, (r) => r.e1, t),
            penrose: firstBelow(trace, (r) => r.e2, t),
            exactError: firstBelow(trace, (r) => r.e3, t),
          },
        ]),
      ),
      converged: verdict.converged,
      convergedAt: verdict.iteration,
      predictedIterations: verdict.predictedIterations,
      verdict: verdict.message,
    });
  }
  return out;
}

export interface PinvRequestOptions {
  resolution: number;
  /** Weights: a checkpoint's, or seeded random ones. */
  weights?: WeightSource;
  weightsLabel?: string;
  seed?: number;
  /** Iteration arithmetic: float32 as the model runs, or float64. */
  dtype?: NewtonDtype;
  /** Steps to trace (default: the config's newton_maxiter). */
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
    m: landmarkCount(grid, stage.srRatio),
    weightsUsed: weights ? 'checkpoint' : `random (seed ${seed})`,
  };
}

export function analysePinv(model: ModelSpec, o: PinvRequestOptions): PinvReport {
  const grids = stageGrids(model, o.resolution);
  const dtype = o.dtype ?? 'float32';
  const iterations = o.iterations ?? model.newton.maxIter;
  const seed = o.seed ?? 0;
  const stages: PinvStage[] = [];
  for (const stage of model.stages) {
    if (!usesNewton(stage)) continue;
    const grid = grids[stage.index - 1]!;
    const m = landmarkCount(grid, stage.srRatio);
    if (m < 1) {
      stages.push({
        stage: stage.index,
        attention: stage.attention,
        grid,
        landmarks: 0,
        heads: [],
        skipped: `no landmarks: a ${grid}×${grid} grid is smaller than the ${stage.srRatio}×${stage.srRatio} landmark conv`,
      });
      continue;
    }
    // The distance in `direct` form materialises N·m·dh values; fine for the sizes a pinv check uses.
    const { k2 } = landmarkKernels(model, stage, grid, o.weights, seed);
    const matrices = analyseMatrices(k2, m, stage.heads, model.newton.variant, iterations, dtype);
    const heads: PinvHead[] = matrices.map((r, head) => ({ head, ...r }));
    stages.push({ stage: stage.index, attention: stage.attention, grid, landmarks: m, heads, skipped: null });
  }
  const all = stages.flatMap((s) => s.heads);
  const worst = all.reduce<PinvHead | null>(
    (w, h) =>
      w === null || h.iterations[h.iterations.length - 1]!.residual > w.iterations[w.iterations.length - 1]!.residual
        ? h
        : w,
    null,
  );
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
    summary: summarise(stages, iterations, worst),
  };
}

function summarise(stages: PinvStage[], iterations: number, worst: PinvHead | null): string {
  const heads = stages.flatMap((s) => s.heads.map((h) => ({ s: s.stage, h })));
  if (heads.length === 0) return 'no SOFT stage runs a Newton inverse at this resolution';
  const bad = heads.filter((x) => !x.h.converged);
  if (bad.length === 0) {
    const latest = Math.max(...heads.map((x) => x.h.convergedAt ?? 0));
    return `converged after ${latest} of ${iterations} in every stage and head`;
  }
  const w = worst!;
  const last = w.iterations[w.iterations.length - 1]!;
  return `not converged in ${bad.length} of ${heads.length} stage-heads: residual ${last.residual.toPrecision(2)} after ${iterations} (${bad.map((x) => `stage ${x.s} head ${x.h.head}`).join(', ')})`;
}
