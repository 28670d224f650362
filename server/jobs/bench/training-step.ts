/**
 * A benchmark case as a training step: the layer's forward pass, then the backward pass from its
 * output with a fixed random cotangent (a graph input, N(0, 1) from a seed), giving the gradient
 * with respect to the input and to every parameter of the layer (reverse-mode differentiation on
 * the op set, engine/autodiff.ts), and optionally an AdamW update of every parameter
 * (engine/optimizer.ts). One graph, so every runtime runs it as it runs an inference case, and the
 * forward part is read off the same graph: its MACs are graphCost on the forward output, the
 * backward's the whole step's less those.
 */
import type { WeightSource } from '../../core/engine/lowerings/reference';
import { gradients } from '../../core/engine/autodiff';
import type { Graph, Tensor } from '../../core/engine/graph';
import { adamw, adamwScalars, adamwStateKeys, type AdamWOptions } from '../../core/engine/optimizer';
import { isBuffer } from '../../core/engine/training';
import { normals, seededRandom } from '../../core/engine/weights';
import { numel } from '../../core/shape';

export type OptimizerKind = 'adamw';

export interface TrainStepOptions {
  /** Seed of the output cotangent (default 2). */
  seed?: number;
  /** An optimizer update after the backward pass; absent or null: gradients only. */
  optimizer?: OptimizerKind | null;
  adamw?: Partial<AdamWOptions>;
  /** The step t the optimizer is fed (default 10, so that the bias corrections are not trivial). */
  optimizerStep?: number;
}

export const DEFAULT_COTANGENT_SEED = 2;
export const DEFAULT_OPTIMIZER_STEP = 10;

/** One output of a training step and what it is. */
export interface StepOutput {
  /** "out", "d/dx", "d/d<key>", "<key> (updated)", "exp_avg <key>", "exp_avg_sq <key>". */
  name: string;
  tensor: Tensor;
}

export interface TrainingStep {
  /** The layer's output: the forward pass is what this depends on. */
  forward: Tensor;
  /** The forward output, d/dx, one gradient per parameter, then (with an optimizer) p', m', v' per parameter. */
  outputs: StepOutput[];
  /** The parameters differentiated (state_dict keys), with their element counts. */
  parameters: { key: string; shape: number[] }[];
  /** The step's graph inputs for one input activation `x`. */
  feeds(x: Float32Array): Record<string, Float32Array>;
  /** The layer's weights and, with an optimizer, its state. */
  weights: WeightSource;
}

/** Appends the backward pass (and optimizer) of `forward` = layer(x) to `g`. */
export function trainingStep(
  g: Graph,
  x: Tensor,
  forward: Tensor,
  layerWeights: WeightSource,
  o: TrainStepOptions = {},
): TrainingStep {
  const seed = o.seed ?? DEFAULT_COTANGENT_SEED;
  const xNode = g.nodes[x.id]!.node;
  if (xNode.op !== 'input') throw new Error('trainingStep: x must be an input of the graph');
  const cotangent = g.input('cotangent', forward.shape);
  // Every weight node the forward pass reads, by key (a key read twice gets the sum of both gradients).
  const byKey = new Map<string, Tensor[]>();
  for (const { key, tensor } of g.weights) {
    if (isBuffer(key) || tensor.id > forward.id) continue;
    byKey.set(key, [...(byKey.get(key) ?? []), tensor]);
  }
  const uses = [...byKey.values()].flat();
  const [dx, ...dUses] = gradients(g, forward, [x, ...uses], { seed: cotangent });
  const params: { key: string; param: Tensor; grad: Tensor }[] = [];
  let i = 0;
  for (const [key, tensors] of byKey) {
    let grad = dUses[i++]!;
    for (let k = 1; k < tensors.length; k++) grad = g.addT(grad, dUses[i++]!);
    params.push({ key, param: tensors[0]!, grad });
  }
  const outputs: StepOutput[] = [
    { name: 'out', tensor: forward },
    { name: 'd/dx', tensor: dx! },
    ...params.map((p) => ({ name: `d/d${p.key}`, tensor: p.grad })),
  ];
  let weights = layerWeights;
  let stepInputs: Record<string, Float32Array> = {};
  if (o.optimizer === 'adamw') {
    const { updates } = adamw(g, params, o.adamw);
    for (const u of updates) outputs.push({ name: `${u.key} (updated)`, tensor: u.param });
    for (const u of updates) outputs.push({ name: `exp_avg ${u.key}`, tensor: u.expAvg });
    for (const u of updates) outputs.push({ name: `exp_avg_sq ${u.key}`, tensor: u.expAvgSq });
    weights = withAdamWState(layerWeights, params, seed);
    stepInputs = adamwScalars(o.optimizerStep ?? DEFAULT_OPTIMIZER_STEP, o.adamw);
  }
  const cotangentData = normals(numel(forward.shape), seededRandom(seed));
  return {
    forward,
    outputs,
    parameters: params.map((p) => ({ key: p.key, shape: [...p.param.shape] })),
    feeds: (input) => ({
      [xNode.name]: input,
      cotangent: cotangentData,
      ...stepInputs,
    }),
    weights,
  };
}

/**
 * The layer's weights plus an AdamW state as in mid-training: exp_avg ~ N(0, (10⁻³)²) and
 * exp_avg_sq = N(0, (10⁻³)²)² + 10⁻⁸ (positive), from one stream per key.
 */
function withAdamWState(
  base: WeightSource,
  params: readonly { key: string; param: Tensor }[],
  seed: number,
): WeightSource {
  const state = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  params.forEach(({ key, param }, i) => {
    const n = numel(param.shape);
    const names = adamwStateKeys(key);
    const m = normals(n, seededRandom(seed * 7919 + 2 * i + 1), 1e-3);
    const v = normals(n, seededRandom(seed * 7919 + 2 * i + 2), 1e-3).map((s) => s * s + 1e-8);
    state.set(names.expAvg, { shape: param.shape, data: m });
    state.set(names.expAvgSq, { shape: param.shape, data: v });
  });
  return { get: (key) => state.get(key) ?? base.get(key) };
}
