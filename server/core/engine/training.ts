/**
 * A training step as one graph: the model's forward pass, the cross-entropy loss, and the backward
 * graph reverse-mode differentiation derives from them (autodiff.ts), with one gradient per
 * parameter (state_dict key) and optionally the gradient with respect to the image. It is an
 * ordinary graph, so every runtime runs it, and its liveness gives the memory a step keeps.
 */
import { gradients } from './autodiff';
import type { Graph, Tensor } from './graph';
import { modelGraph, type ModelGraph, type ModelGraphOptions } from './model';
import type { ModelSpec } from '../models/spec';

/** State-dict entries that are buffers, not parameters: no gradient, no optimizer state. */
export function isBuffer(key: string): boolean {
  return /(^|\.)(running_mean|running_var|num_batches_tracked)$/.test(key);
}

/**
 * Mean over the batch of −log softmax(logits)[label], as F.cross_entropy: logsumexp taken with the
 * row maximum subtracted.
 */
export function crossEntropy(g: Graph, logits: Tensor, labels: readonly number[]): Tensor {
  const [B, C] = logits.shape as [number, number];
  if (logits.shape.length !== 2 || labels.length !== B)
    throw new Error(`crossEntropy: ${labels.length} labels for logits [${logits.shape}]`);
  const oneHot = new Float64Array(B * C);
  labels.forEach((label, b) => {
    if (!Number.isInteger(label) || label < 0 || label >= C)
      throw new Error(`crossEntropy: label ${label} is not a class of 0…${C - 1}`);
    oneHot[b * C + label] = 1;
  });
  const max = g.reduce('max', logits, -1); // [B, 1]
  const sumExp = g.reduce('sum', g.unary('exp', g.sub(logits, max)), -1);
  const logSumExp = g.addT(max, g.unary('log', sumExp));
  const picked = g.reduce('sum', g.mul(logits, g.constant(oneHot, [B, C], 'one-hot labels')), -1);
  const perSample = g.reshape(g.sub(logSumExp, picked), [1, B]);
  return g.scale(g.reduce('sum', perSample, -1), 1 / B); // [1, 1]
}

export interface ParameterGradient {
  key: string;
  shape: number[];
  /** The loss's gradient with respect to the parameter, summed over every place the graph reads it. */
  grad: Tensor;
}

/** Gradients of a scalar `loss` for every parameter `g` reads (buffers excluded), one per state_dict key. */
export function parameterGradients(g: Graph, loss: Tensor): ParameterGradient[] {
  const byKey = new Map<string, Tensor[]>();
  for (const { key, tensor } of g.weights) {
    if (isBuffer(key) || tensor.id > loss.id) continue;
    byKey.set(key, [...(byKey.get(key) ?? []), tensor]);
  }
  const uses = [...byKey.values()].flat();
  const grads = gradients(g, loss, uses);
  let i = 0;
  return [...byKey].map(([key, tensors]) => {
    let grad = grads[i++]!;
    for (let k = 1; k < tensors.length; k++) grad = g.addT(grad, grads[i++]!);
    return { key, shape: [...tensors[0]!.shape], grad };
  });
}

export interface TrainingGraphOptions extends ModelGraphOptions {
  /** The target class of each image of the batch. */
  labels: readonly number[];
  /** Also differentiate with respect to the image (saliency). */
  inputGradient?: boolean;
}

export interface TrainingGraph {
  model: ModelGraph;
  /** Mean cross-entropy, [1, 1]. */
  loss: Tensor;
  parameters: ParameterGradient[];
  inputGradient?: Tensor;
  /** Tensors with ids up to this one are the forward pass (and the loss); the rest is backward. */
  forwardEnd: number;
}

/** The forward pass, the loss and the backward pass of `spec` on one batch. */
export function trainingGraph(g: Graph, spec: ModelSpec, opts: TrainingGraphOptions): TrainingGraph {
  const model = modelGraph(g, spec, { ...opts, batch: opts.labels.length });
  const loss = crossEntropy(g, model.logits, opts.labels);
  const forwardEnd = loss.id;
  const parameters = parameterGradients(g, loss);
  const inputGradient = opts.inputGradient ? gradients(g, loss, [model.input])[0] : undefined;
  return { model, loss, parameters, forwardEnd, ...(inputGradient ? { inputGradient } : {}) };
}
