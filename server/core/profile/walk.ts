/**
 * Walks a ModelSpec at one input size and records every tensor and op, in the
 * official module order and state_dict naming (docs/MATHS.md §2.7; timm's for the ViT, §2.10).
 */
import { convOut } from '../models/build';
import type { ModelSpec, StageSpec } from '../models/spec';
import { attentionWalk, classAttentionWalk, type AttentionShape } from './attention';
import { batchNorm, conv2d, layerNorm, linear, pointwise } from './layers';
import { Recorder, type TensorEntry } from './recorder';

/** The stem's convs (Sequential `proj.{3j}`, or the one conv `proj` of timm's PatchEmbed); returns the grid. */
function stemWalk(
  r: Recorder,
  prefix: string,
  stage: StageSpec,
  batch: number,
  inH: number,
  inW: number,
  single = false,
): [number, number] {
  let [h, w] = [inH, inW];
  stage.stem.forEach((c, j) => {
    [h, w] = [convOut(h, c), convOut(w, c)];
    const path = single ? `${prefix}.proj` : `${prefix}.proj.${3 * j}`;
    const elems = batch * c.outChannels * h * w;
    conv2d(r, {
      path,
      images: batch,
      inC: c.inChannels,
      outC: c.outChannels,
      kernel: c.kernel,
      groups: 1,
      outH: h,
      outW: w,
      bias: c.bias,
      category: 'conv2d_patch_embed',
      kind: 'stem',
      label: `Conv2d(${c.inChannels}→${c.outChannels}, k=${c.kernel}, s=${c.stride})`,
    });
    if (c.batchNorm) batchNorm(r, `${prefix}.proj.${3 * j + 1}`, elems, c.outChannels, 'stem');
    if (c.activation === 'relu')
      pointwise(r, `${prefix}.proj.${3 * j + 2}`, 'stem', 'ReLU', { relu_elems: elems }, elems);
    if (c.activation === 'gelu')
      pointwise(r, `${prefix}.proj.${3 * j + 2}`, 'stem', 'GELU (erf)', { gelu_erf_elems: elems }, elems);
  });
  return [h, w];
}

/** The positional embedding's state_dict tensor; returns its parameter count for `posEmbedWalk`. */
function posEmbedTensor(r: Recorder, key: string, stage: StageSpec, extraTokens: number): number {
  const g = stage.posEmbedGrid;
  return r.tensor(key, [1, g * g + extraTokens, stage.dim]);
}

/**
 * Positional embedding: bilinear interpolation to the actual grid, then the add (official code
 * always interpolates). The tensor is recorded by the caller (`posEmbedTensor`), where it belongs
 * in state_dict order; `params` is its count.
 */
function posEmbedWalk(
  r: Recorder,
  key: string,
  stage: StageSpec,
  batch: number,
  gridH: number,
  gridW: number,
  extraTokens: number,
  params: number,
): void {
  const g = stage.posEmbedGrid;
  const saved = r.location;
  r.location = { group: 'top_level', stage: 0, block: -1 };
  const out = gridH * gridW * stage.dim;
  const tokens = gridH * gridW + extraTokens;
  r.op({
    path: key,
    kind: 'pos_embed',
    label: `interpolate ${g}²→${gridH === gridW ? `${gridH}²` : `${gridH}×${gridW}`} + add`,
    params,
    elementwise: { interpolate_out_elems: out, other_pointwise_elems: batch * tokens * stage.dim },
    outputElems: batch * tokens * stage.dim,
  });
  r.location = saved;
}

/** The cls token's parameters and its concatenation (no arithmetic). */
function clsTokenOp(r: Recorder, batch: number, dim: number): void {
  r.op({ path: 'cls_token', kind: 'pos_embed', label: 'prepend cls token', params: dim, outputElems: batch * dim });
}

function softPostNormBlock(r: Recorder, p: string, stage: StageSpec, model: ModelSpec, s: AttentionShape): void {
  const BN = s.batch * s.tokens;
  const D = stage.dim;
  const xHeld = r.hold(BN * D);
  attentionWalk(r, `${p}.mha`, stage, model, s);
  pointwise(r, `${p}.residual1`, 'norm', 'x + attn(x)', { other_pointwise_elems: BN * D }, BN * D);
  r.release(xHeld);
  layerNorm(r, `${p}.norm1`, BN, D);
  const x1Held = r.hold(BN * D);
  linear(r, `${p}.ff1`, BN, D, stage.mlpHidden, 'linear_mlp', 'ffn');
  pointwise(
    r,
    `${p}.gelu`,
    'ffn',
    'GELU (tanh approximation)',
    { approx_gelu_tanh_elems: BN * stage.mlpHidden },
    BN * stage.mlpHidden,
  );
  linear(r, `${p}.ff2`, BN, stage.mlpHidden, D, 'linear_mlp', 'ffn');
  pointwise(r, `${p}.residual2`, 'norm', 'x1 + FFN(x1)', { other_pointwise_elems: BN * D }, BN * D);
  r.release(x1Held);
  layerNorm(r, `${p}.norm2`, BN, D);
}

function mlpWalk(r: Recorder, p: string, stage: StageSpec, rows: number): void {
  linear(r, `${p}.fc1`, rows, stage.dim, stage.mlpHidden, 'linear_mlp', 'ffn');
  pointwise(r, `${p}.act`, 'ffn', 'GELU (erf)', { gelu_erf_elems: rows * stage.mlpHidden }, rows * stage.mlpHidden);
  linear(r, `${p}.fc2`, rows, stage.mlpHidden, stage.dim, 'linear_mlp', 'ffn');
}

function pvtPreNormBlock(r: Recorder, p: string, stage: StageSpec, model: ModelSpec, s: AttentionShape): void {
  const BN = s.batch * s.tokens;
  const D = stage.dim;
  const xHeld = r.hold(BN * D);
  layerNorm(r, `${p}.norm1`, BN, D);
  attentionWalk(r, `${p}.attn`, stage, model, s);
  pointwise(r, `${p}.residual1`, 'norm', 'x + attn(LN(x))', { other_pointwise_elems: BN * D }, BN * D);
  layerNorm(r, `${p}.norm2`, BN, D);
  mlpWalk(r, `${p}.mlp`, stage, BN);
  pointwise(r, `${p}.residual2`, 'norm', 'x + MLP(LN(x))', { other_pointwise_elems: BN * D }, BN * D);
  r.release(xHeld);
}

function layerScale(r: Recorder, key: string, D: number, elems: number, label: string): void {
  const params = r.tensor(key, [D]);
  r.op({
    path: key,
    kind: 'norm',
    label,
    params,
    elementwise: { other_pointwise_elems: 2 * elems },
    outputElems: elems,
  });
}

/** XCiT block with the stage's attention (UFO-ViT presets, docs/MATHS.md §5.5). */
function xcitBlock(r: Recorder, p: string, stage: StageSpec, model: ModelSpec, s: AttentionShape): void {
  const B = s.batch;
  const BN = B * s.tokens;
  const D = stage.dim;
  const xHeld = r.hold(BN * D);
  layerNorm(r, `${p}.norm1`, BN, D);
  attentionWalk(r, `${p}.attn`, stage, model, s);
  layerScale(r, `${p}.gamma1`, D, BN * D, 'x + γ1·attn');
  layerNorm(r, `${p}.norm3`, BN, D);
  const lpi = {
    images: B,
    inC: D,
    outC: D,
    kernel: 3,
    groups: D,
    outH: s.gridH,
    outW: s.gridW,
    bias: true,
    category: 'conv2d_other',
    kind: 'dwconv',
  } as const;
  conv2d(r, { ...lpi, path: `${p}.local_mp.conv1`, label: `LPI depthwise Conv2d(${D}, k=3)` });
  pointwise(r, `${p}.local_mp.act`, 'dwconv', 'GELU (erf)', { gelu_erf_elems: BN * D }, BN * D);
  batchNorm(r, `${p}.local_mp.bn`, BN * D, D, 'dwconv');
  conv2d(r, { ...lpi, path: `${p}.local_mp.conv2`, label: `LPI depthwise Conv2d(${D}, k=3)` });
  layerScale(r, `${p}.gamma3`, D, BN * D, 'x + γ3·LPI');
  layerNorm(r, `${p}.norm2`, BN, D);
  mlpWalk(r, `${p}.mlp`, stage, BN);
  layerScale(r, `${p}.gamma2`, D, BN * D, 'x + γ2·MLP');
  r.release(xHeld);
}

function classAttentionBlock(r: Recorder, p: string, stage: StageSpec, s: AttentionShape): void {
  const B = s.batch;
  const D = stage.dim;
  layerNorm(r, `${p}.norm1`, B * s.tokens, D);
  classAttentionWalk(r, `${p}.attn`, stage, s);
  layerScale(r, `${p}.gamma1`, D, B * D, 'cls + γ1·class-attn');
  layerNorm(r, `${p}.norm2`, B, D);
  mlpWalk(r, `${p}.mlp`, stage, B);
  layerScale(r, `${p}.gamma2`, D, B * D, 'cls + γ2·MLP');
}

function headWalk(r: Recorder, model: ModelSpec, batch: number, tokens: number): void {
  const last = model.stages[model.stages.length - 1]!;
  layerNorm(r, 'norm', batch * tokens, last.dim);
  r.location = { group: 'head', stage: 0, block: -1 };
  linear(r, 'head', batch, last.dim, model.numClasses, 'linear_head', 'head');
}

function softPyramidWalk(r: Recorder, model: ModelSpec, batch: number, height: number, width: number): void {
  // The official state_dict lists own parameters, then children in registration order:
  // pos_embed1..4 + cls_token, patch_embed1..4, block1..4, norm, head. The walk visits them
  // stage by stage, so each stage's stem and block tensors are moved to their own lists as
  // they are recorded and the lists joined at the end (cheaper than sorting by key prefix).
  const posParams = model.stages.map((stage) =>
    posEmbedTensor(r, `pos_embed${stage.index}`, stage, stage.clsToken ? 1 : 0),
  );
  r.tensor('cls_token', [1, 1, model.stages[model.stages.length - 1]!.dim]);
  const own = r.tensors.splice(0, r.tensors.length);
  const patchEmbed: TensorEntry[] = [];
  const blocks: TensorEntry[] = [];
  let [h, w] = [height, width];
  let tokens = 0;
  model.stages.forEach((stage, s) => {
    r.location = { group: `stage${stage.index}`, stage: stage.index, block: -1 };
    [h, w] = stemWalk(r, `patch_embed${stage.index}`, stage, batch, h, w);
    patchEmbed.push(...r.tensors.splice(0, r.tensors.length));
    const extra = stage.clsToken ? 1 : 0;
    tokens = h * w + extra;
    if (stage.clsToken) clsTokenOp(r, batch, stage.dim);
    posEmbedWalk(r, `pos_embed${stage.index}`, stage, batch, h, w, extra, posParams[s]!);
    const shape: AttentionShape = { batch, gridH: h, gridW: w, tokens };
    for (let i = 0; i < stage.depth; i++) {
      r.location = { group: `stage${stage.index}`, stage: stage.index, block: i };
      const p = `block${stage.index}.${i}`;
      if (stage.layout === 'soft_post_norm') softPostNormBlock(r, `${p}.att`, stage, model, shape);
      else pvtPreNormBlock(r, p, stage, model, shape);
      r.releaseAll();
    }
    blocks.push(...r.tensors.splice(0, r.tensors.length));
    r.location = { group: `stage${stage.index}`, stage: stage.index, block: -1 };
  });
  headWalk(r, model, batch, tokens);
  // What is left in r.tensors is the head's (norm, head).
  r.tensors.unshift(...own, ...patchEmbed, ...blocks);
}

function ufoIsotropicWalk(r: Recorder, model: ModelSpec, batch: number, height: number, width: number): void {
  const stage = model.stages[0]!;
  r.location = { group: 'stage1', stage: 1, block: -1 };
  const [h, w] = stemWalk(r, 'patch_embed', stage, batch, height, width);
  const tokens = h * w;
  posEmbedWalk(r, 'pos_embed', stage, batch, h, w, 0, posEmbedTensor(r, 'pos_embed', stage, 0));
  r.tensor('cls_token', [1, 1, stage.dim]);
  clsTokenOp(r, batch, stage.dim);
  const shape: AttentionShape = { batch, gridH: h, gridW: w, tokens };
  for (let i = 0; i < stage.depth; i++) {
    r.location = { group: 'stage1', stage: 1, block: i };
    xcitBlock(r, `blocks.${i}`, stage, model, shape);
    r.releaseAll();
  }
  const withCls: AttentionShape = { ...shape, tokens: tokens + 1 };
  for (let i = 0; i < model.classAttentionLayers; i++) {
    r.location = { group: 'stage1', stage: 1, block: stage.depth + i };
    classAttentionBlock(r, `cls_attn_blocks.${i}`, stage, withCls);
  }
  r.location = { group: 'stage1', stage: 1, block: -1 };
  headWalk(r, model, batch, tokens + 1);
}

/**
 * timm's VisionTransformer (§2.10). state_dict order as PyTorch saves it: the model's own
 * parameters (cls_token, pos_embed) before its children (patch_embed, blocks, norm / fc_norm, head).
 */
function vitWalk(r: Recorder, model: ModelSpec, batch: number, height: number, width: number): void {
  const stage = model.stages[0]!;
  const extra = stage.clsToken ? 1 : 0;
  if (stage.clsToken) r.tensor('cls_token', [1, 1, stage.dim]);
  const posParams = posEmbedTensor(r, 'pos_embed', stage, extra);
  r.location = { group: 'stage1', stage: 1, block: -1 };
  const [h, w] = stemWalk(r, 'patch_embed', stage, batch, height, width, true);
  const tokens = h * w + extra;
  if (stage.clsToken) clsTokenOp(r, batch, stage.dim);
  posEmbedWalk(r, 'pos_embed', stage, batch, h, w, extra, posParams);
  const shape: AttentionShape = { batch, gridH: h, gridW: w, tokens };
  for (let i = 0; i < stage.depth; i++) {
    r.location = { group: 'stage1', stage: 1, block: i };
    pvtPreNormBlock(r, `blocks.${i}`, stage, model, shape);
    r.releaseAll();
  }
  r.location = { group: 'stage1', stage: 1, block: -1 };
  if (stage.clsToken) {
    headWalk(r, model, batch, tokens);
    return;
  }
  // global_pool 'avg': mean over the tokens, fc_norm on the pooled row, head.
  pointwise(
    r,
    'pool',
    'head',
    'mean over the tokens',
    { other_pointwise_elems: batch * tokens * stage.dim },
    batch * stage.dim,
  );
  layerNorm(r, 'fc_norm', batch, stage.dim);
  r.location = { group: 'head', stage: 0, block: -1 };
  linear(r, 'head', batch, stage.dim, model.numClasses, 'linear_head', 'head');
}

/** Every tensor and op of the model at an H×W input (`width` defaults to a square input). */
export function walkModel(model: ModelSpec, resolution: number, batch: number, width = resolution): Recorder {
  const r = new Recorder();
  if (model.family === 'soft') softPyramidWalk(r, model, batch, resolution, width);
  else if (model.family === 'ufo') ufoIsotropicWalk(r, model, batch, resolution, width);
  else vitWalk(r, model, batch, resolution, width);
  return r;
}
