/**
 * AdamW (Loshchilov & Hutter; torch.optim.AdamW) written on the op set, so a training step's
 * parameter update is part of the same graph as its forward and backward passes and every
 * runtime runs it. For each parameter p with gradient g and state m, v at step t (counted from 1):
 *
 *   m' = β1·m + (1 − β1)·g
 *   v' = β2·v + (1 − β2)·g²
 *   m̂ = m' / (1 − β1ᵗ),  v̂ = v' / (1 − β2ᵗ)
 *   p' = p − lr·(m̂ / (√v̂ + ε) + wd·p)
 *
 * which is torch's update (p ← p·(1 − lr·wd), then p ← p − lr/(1 − β1ᵗ) · m' / (√v'/√(1 − β2ᵗ) + ε)).
 * The state m and v of each parameter are weights of the graph (resident, as the optimizer's state
 * is on the device), under `optimizer.exp_avg.<key>` and `optimizer.exp_avg_sq.<key>` (torch's
 * names). The step enters as two graph inputs of one value each, computed from t on the host in
 * float64 as torch computes them (adamwScalars): lr/(1 − β1ᵗ) and √(1 − β2ᵗ). So the same graph
 * serves every step, and the bias corrections keep their precision: 1 − β2ᵗ in float32 inside the
 * graph (1 − exp(t·ln β2), about 0.01 at t = 10) would lose four digits to cancellation. The graph
 * is functional: p', m' and v' are new tensors, where torch updates in place.
 */
import type { Graph, Tensor } from './graph';

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay of a parameter (a number for all, or per state_dict key and shape). */
  weightDecay: number | ((key: string, shape: readonly number[]) => number);
}

/**
 * torch.optim.AdamW's defaults but for the weight decay: 0.05 and, as timm's optimizer factory
 * (which DeiT, PVT and SOFT train with) does, none on biases and one-dimensional parameters
 * (norm affines).
 */
export const ADAMW_DEFAULTS: AdamWOptions = {
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: timmWeightDecay(0.05),
};

/** timm's `param_groups_weight_decay`: `wd` for every parameter but biases and those of one dimension or fewer. */
export function timmWeightDecay(wd: number): (key: string, shape: readonly number[]) => number {
  return (key, shape) => (shape.length <= 1 || key.endsWith('.bias') ? 0 : wd);
}

/** The graph inputs that carry the step (adamwScalars gives their values). */
export const ADAMW_INPUTS = {
  /** lr / (1 − β1ᵗ) */
  stepSize: 'optimizer.step_size',
  /** √(1 − β2ᵗ) */
  biasCorrection2Sqrt: 'optimizer.bias_correction2_sqrt',
} as const;

/**
 * The values of ADAMW_INPUTS at step t (1, 2, …), computed in float64 as torch's single-tensor AdamW
 * computes them; `array` makes each one-value input (Float32Array for a runtime's feeds).
 */
export function adamwScalars<A extends Float32Array | Float64Array = Float32Array>(
  t: number,
  options: Partial<AdamWOptions> = {},
  array: (value: number) => A = (value) => Float32Array.of(value) as A,
): Record<string, A> {
  if (!Number.isInteger(t) || t < 1) throw new Error(`adamw: step ${t} is not a positive integer`);
  const o: AdamWOptions = { ...ADAMW_DEFAULTS, ...options };
  return {
    [ADAMW_INPUTS.stepSize]: array(o.lr / (1 - o.beta1 ** t)),
    [ADAMW_INPUTS.biasCorrection2Sqrt]: array(Math.sqrt(1 - o.beta2 ** t)),
  };
}

/** The graph names of one parameter's optimizer state (weights). */
export function adamwStateKeys(key: string): { expAvg: string; expAvgSq: string } {
  return { expAvg: `optimizer.exp_avg.${key}`, expAvgSq: `optimizer.exp_avg_sq.${key}` };
}

export interface AdamWParameter {
  /** The parameter's state_dict key. */
  key: string;
  /** The parameter as the graph reads it (a weight node). */
  param: Tensor;
  /** Its gradient (same shape). */
  grad: Tensor;
}

export interface AdamWUpdate {
  key: string;
  /** p', m', v' (same shape as the parameter). */
  param: Tensor;
  expAvg: Tensor;
  expAvgSq: Tensor;
  /** The weight decay this parameter was given. */
  weightDecay: number;
}

/**
 * One AdamW step for every parameter, appended to `g`; the step's two scalars are graph inputs
 * (ADAMW_INPUTS, fed with adamwScalars(t)).
 */
export function adamw(
  g: Graph,
  params: readonly AdamWParameter[],
  options: Partial<AdamWOptions> = {},
): { updates: AdamWUpdate[] } {
  const o: AdamWOptions = { ...ADAMW_DEFAULTS, ...options };
  if (!(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1))
    throw new Error(`adamw: betas (${o.beta1}, ${o.beta2}) must lie in [0, 1)`);
  // Shared by every parameter: lr/(1 − β1ᵗ) and 1/√(1 − β2ᵗ).
  const stepSize = g.input(ADAMW_INPUTS.stepSize, [1]);
  const invSqrtBc2 = g.unary('reciprocal', g.input(ADAMW_INPUTS.biasCorrection2Sqrt, [1]));
  const eps = g.scalar(o.eps, 'adamw.eps');
  const updates = params.map(({ key, param, grad }): AdamWUpdate => {
    if (param.shape.length !== grad.shape.length || param.shape.some((d, i) => d !== grad.shape[i]))
      throw new Error(`adamw: gradient [${grad.shape}] for parameter ${key} [${param.shape}]`);
    const names = adamwStateKeys(key);
    const m = g.weight(names.expAvg, param.shape);
    const v = g.weight(names.expAvgSq, param.shape);
    const expAvg = g.addT(g.scale(m, o.beta1), g.scale(grad, 1 - o.beta1));
    const expAvgSq = g.addT(g.scale(v, o.beta2), g.scale(g.unary('square', grad), 1 - o.beta2));
    const denom = g.addT(g.mul(g.unary('sqrt', expAvgSq), invSqrtBc2), eps); // √v̂ + ε
    let update = g.mul(g.div(expAvg, denom), stepSize); // lr·m̂/(√v̂ + ε) = lr/(1 − β1ᵗ)·m'/(√v̂ + ε)
    const wd = typeof o.weightDecay === 'number' ? o.weightDecay : o.weightDecay(key, param.shape);
    if (wd !== 0) update = g.addT(update, g.scale(param, o.lr * wd));
    return { key, param: g.sub(param, update), expAvg, expAvgSq, weightDecay: wd };
  });
  return { updates };
}
