/**
 * Module-level building blocks of a walk: each records its state_dict tensors and
 * its ops once, with PyTorch's counting rules (flops.json): conv MACs =
 * out.numel()·(C_in/groups)·kH·kW, linear MACs = out.numel()·in, bias adds apart.
 */
import type { ElementwiseKind, MacCategory, OpKind } from '../../../protocol/categories';
import type { Recorder } from './recorder';

export function linear(
  r: Recorder,
  path: string,
  tokens: number,
  inF: number,
  outF: number,
  category: MacCategory,
  kind: OpKind,
  bias = true,
): void {
  let params = r.tensor(`${path}.weight`, [outF, inF]);
  if (bias) params += r.tensor(`${path}.bias`, [outF]);
  r.op({
    path,
    kind,
    label: `Linear(${inF}→${outF})`,
    category,
    macs: tokens * outF * inF,
    params,
    elementwise: bias ? { linear_bias_adds: tokens * outF } : {},
    outputElems: tokens * outF,
    inputElems: tokens * inF,
  });
}

export interface Conv {
  path: string;
  /** Images the conv runs on (batch × whatever the code folds into batch). */
  images: number;
  inC: number;
  outC: number;
  kernel: number;
  /** Kernel width when not `kernel` (a rectangular landmark conv). */
  kernelW?: number;
  groups: number;
  outH: number;
  outW: number;
  bias: boolean;
  category: MacCategory;
  kind: OpKind;
  label: string;
}

export function conv2d(r: Recorder, c: Conv): void {
  const kw = c.kernelW ?? c.kernel;
  let params = r.tensor(`${c.path}.weight`, [c.outC, c.inC / c.groups, c.kernel, kw]);
  if (c.bias) params += r.tensor(`${c.path}.bias`, [c.outC]);
  const out = c.images * c.outC * c.outH * c.outW;
  r.op({
    path: c.path,
    kind: c.kind,
    label: c.label,
    category: c.category,
    macs: out * (c.inC / c.groups) * c.kernel * kw,
    params,
    elementwise: c.bias ? { conv2d_bias_adds: out } : {},
    outputElems: out,
    inputElems: out, // the input is of the same order; exact size is not worth tracking
  });
}

export function layerNorm(r: Recorder, path: string, rows: number, dim: number, kind: OpKind = 'norm'): void {
  const params = r.tensor(`${path}.weight`, [dim]) + r.tensor(`${path}.bias`, [dim]);
  r.op({
    path,
    kind,
    label: `LayerNorm(${dim})`,
    params,
    elementwise: { layernorm_elems: rows * dim },
    outputElems: rows * dim,
  });
}

export function batchNorm(r: Recorder, path: string, elems: number, channels: number, kind: OpKind): void {
  const params = r.tensor(`${path}.weight`, [channels]) + r.tensor(`${path}.bias`, [channels]);
  r.tensor(`${path}.running_mean`, [channels], 'buffer');
  r.tensor(`${path}.running_var`, [channels], 'buffer');
  r.tensor(`${path}.num_batches_tracked`, [], 'buffer', 'int64');
  r.op({
    path,
    kind,
    label: `BatchNorm2d(${channels})`,
    params,
    elementwise: { batchnorm_elems: elems },
    outputElems: elems,
  });
}

/** A parameter-free element-wise step (activation, residual add, scaling …). */
export function pointwise(
  r: Recorder,
  path: string,
  kind: OpKind,
  label: string,
  counts: Partial<Record<ElementwiseKind, number>>,
  outputElems: number,
): void {
  r.op({ path, kind, label, elementwise: counts, outputElems });
}

/** A batched matmul [.., M, K] × [.., K, N]: MACs = batch·M·N·K. */
export function matmul(
  r: Recorder,
  path: string,
  kind: OpKind,
  label: string,
  category: MacCategory,
  batch: number,
  m: number,
  k: number,
  n: number,
): void {
  r.op({ path, kind, label, category, macs: batch * m * n * k, outputElems: batch * m * n });
}
