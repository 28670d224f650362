/**
 * Attention layers and whole transformer blocks of a stage, built from a StageSpec on the op
 * set: the one place that decides which attention definition and which block layout a stage
 * runs, with the state_dict key paths the profile walk records (so a checkpoint's weights
 * drop in by name). Layouts as in `models/spec.ts`: SOFT post-norm, PVT pre-norm, XCiT.
 */
import type { ModelSpec, NewtonBackward, StageSpec } from '../models/spec';
import type { Graph, Tensor } from './graph';
import { softAttention, type DistanceMethod, type SoftShape } from './attention/soft';
import { softmaxAttention } from './attention/softmax';
import type { AttentionProbe } from './attention/probe';
import { ufoAttention } from './attention/ufo';
import { linformerAttention } from './attention/linformer';
import { nystromAttention, type NystromShape } from './attention/nystrom';
import { performerAttention } from './attention/performer';
import { linformerK, nystromSettings, performerSettings } from '../models/comparison';
import { landmarkStrides } from '../models/build';

/** Runtime-independent shape facts and numerical choices for one stage's layers. */
export interface LayerContext {
  batch: number;
  gridH: number;
  gridW: number;
  /** gridH·gridW, plus one when the stage carries a cls token. */
  tokens: number;
  distance: DistanceMethod;
  /** Largest score tensor (elements) the runtime can hold in one buffer; Infinity = no limit. */
  maxScoreElements: number;
  /** Set for the one layer whose attention map is wanted (attention/probe.ts). */
  probe?: AttentionProbe;
  /**
   * Least bytes of one [B, tokens, D] float32 activation tile, on runtimes that run UFO's token-wise
   * work tile by tile to keep it in cache (RuntimeDescription.tokenTileBytes); absent = untiled.
   */
  tokenTileBytes?: number;
  /** How a training step differentiates SOFT's Newton inverse; absent = the spec's (newton_backward). */
  newtonBackward?: NewtonBackward;
  /** BatchNorm with its running statistics (`eval`, default) or the batch's own (`train`, as model.train()). */
  batchNormMode?: BatchNormMode;
}

export type BatchNormMode = 'eval' | 'train';

export function layerContext(
  stage: StageSpec,
  grid: number,
  batch: number,
  opts: Partial<Pick<LayerContext, 'distance' | 'maxScoreElements'>> = {},
): LayerContext {
  return {
    batch,
    gridH: grid,
    gridW: grid,
    tokens: grid * grid + (stage.clsToken ? 1 : 0),
    distance: opts.distance ?? 'expanded',
    maxScoreElements: opts.maxScoreElements ?? Infinity,
  };
}

/** The shape facts SOFT and Nyströmformer share: the grid, the widths and the landmark strides (rows, columns). */
function landmarkLayer(stage: StageSpec, c: LayerContext) {
  const [ratio, ratioW] = landmarkStrides(stage, c.gridH, c.gridW);
  return {
    batch: c.batch,
    gridH: c.gridH,
    gridW: c.gridW,
    dim: stage.dim,
    heads: stage.heads,
    ratio,
    ...(ratioW !== ratio ? { ratioW } : {}),
  };
}

/** SOFT/SOFT-Norm parameters of a stage, as the official model builds them. */
export function softShape(stage: StageSpec, model: ModelSpec, c: LayerContext): SoftShape {
  return {
    ...landmarkLayer(stage, c),
    convKernel: stage.localConvKernel,
    landmarkEps: stage.landmarkNormEps,
    newton: {
      variant: model.newton.variant,
      iterations: model.newton.maxIter,
      backward: c.newtonBackward ?? model.newton.backward,
    },
    normalised: stage.attention === 'soft_norm',
    distance: c.distance,
  };
}

/** Nyströmformer parameters of a stage (the pinv analysis builds its A from the same shape). */
export function nystromShape(stage: StageSpec, model: ModelSpec, c: LayerContext): NystromShape {
  return {
    ...landmarkLayer(stage, c),
    ...nystromSettings(stage, model),
  };
}

/** Which attention definition a stage runs, with its shape. */
function attentionOf(g: Graph, x: Tensor, prefix: string, stage: StageSpec, model: ModelSpec, c: LayerContext): Tensor {
  const { dim, heads } = stage;
  switch (stage.attention) {
    case 'soft':
    case 'soft_norm':
      return softAttention(g, x, prefix, softShape(stage, model, c), c.probe).out;
    case 'softmax':
    case 'softmax_sr':
      return softmaxAttention(
        g,
        x,
        prefix,
        {
          batch: c.batch,
          tokens: c.tokens,
          gridH: c.gridH,
          gridW: c.gridW,
          dim,
          heads,
          srRatio: stage.attention === 'softmax_sr' ? stage.srRatio : 1,
          srNormEps: 1e-5,
          maxScoreElements: c.maxScoreElements,
        },
        c.probe,
      );
    case 'performer':
      return performerAttention(
        g,
        x,
        prefix,
        { batch: c.batch, tokens: c.tokens, dim, heads, ...performerSettings(stage, model) },
        c.probe,
      );
    case 'nystrom':
      return nystromAttention(g, x, prefix, nystromShape(stage, model, c), c.probe);
    case 'linformer':
      return linformerAttention(
        g,
        x,
        prefix,
        { batch: c.batch, tokens: c.tokens, dim, heads, k: linformerK(stage, model, c.gridH, c.gridW) },
        c.probe,
      );
    case 'ufo':
      return ufoAttention(
        g,
        x,
        prefix,
        {
          batch: c.batch,
          tokens: c.tokens,
          dim,
          heads,
          tokenTile: c.tokenTileBytes && c.tokenTileBytes / (4 * c.batch * dim),
        },
        c.probe,
      );
  }
}

/** The stage's attention on x [B, tokens, D]; `prefix` is the attention module's key path. */
export function attentionLayer(
  g: Graph,
  x: Tensor,
  prefix: string,
  stage: StageSpec,
  model: ModelSpec,
  c: LayerContext,
): Tensor {
  const out = attentionOf(g, x, prefix, stage, model, c);
  // Attentions whose keys are the tokens themselves leave the key grid to the layer, which knows it.
  if (c.probe?.map && !c.probe.keys) c.probe.keys = { h: c.gridH, w: c.gridW, cls: c.tokens === c.gridH * c.gridW + 1 };
  return out;
}

/** nn.LayerNorm over the last axis with its weight and bias under `key`. */
export function layerNorm(g: Graph, x: Tensor, key: string, dim: number, eps: number): Tensor {
  return g.layerNorm(x, g.weight(`${key}.weight`, [dim]), g.weight(`${key}.bias`, [dim]), eps);
}

/** timm `Mlp`: fc2(GELU_erf(fc1(x))), hidden width `stage.mlpHidden`. */
export function mlp(g: Graph, x: Tensor, p: string, stage: StageSpec): Tensor {
  const hidden = g.gelu(g.linear(x, `${p}.fc1`, stage.dim, stage.mlpHidden), 'erf');
  return g.linear(hidden, `${p}.fc2`, stage.mlpHidden, stage.dim);
}

/** Eval-mode BatchNorm2d on [B, C, H, W]: (x − mean)/√(var + eps)·w + b, from its four tensors. */
export function batchNorm(
  g: Graph,
  x: Tensor,
  key: string,
  channels: number,
  mode: BatchNormMode = 'eval',
  eps = 1e-5,
): Tensor {
  const col = (t: Tensor) => g.reshape(t, [channels, 1, 1]);
  const w = (name: string) => col(g.weight(`${key}.${name}`, [channels]));
  let mean: Tensor;
  let variance: Tensor;
  if (mode === 'eval') {
    mean = w('running_mean');
    variance = w('running_var');
  } else {
    // The batch's statistics per channel over (B, H, W), biased variance, as F.batch_norm normalises in training.
    const [B, , H, W] = x.shape as [number, number, number, number];
    const overBatch = (t: Tensor) => g.reduce('sum', g.reduce('sum', g.reduce('sum', t, 0), 2), 3);
    mean = g.scale(overBatch(x), 1 / (B * H * W));
    variance = g.scale(overBatch(g.unary('square', g.sub(x, mean))), 1 / (B * H * W));
  }
  const scale = g.div(w('weight'), g.unary('sqrt', g.addT(variance, g.scalar(eps, 'bn.eps'))));
  return g.addT(g.mul(g.sub(x, mean), scale), w('bias'));
}

/** The official SoftmaxFreeTransformerBlock (§2.3): x1 = LN(x + attn(x)); out = LN(x1 + FFN_tanh(x1)). */
function softPostNormBlock(
  g: Graph,
  x: Tensor,
  p: string,
  stage: StageSpec,
  model: ModelSpec,
  c: LayerContext,
): Tensor {
  const D = stage.dim;
  const x1 = layerNorm(g, g.addT(x, attentionLayer(g, x, `${p}.mha`, stage, model, c)), `${p}.norm1`, D, stage.normEps);
  const f = g.linear(
    g.gelu(g.linear(x1, `${p}.ff1`, D, stage.mlpHidden), stage.ffnGelu),
    `${p}.ff2`,
    stage.mlpHidden,
    D,
  );
  return layerNorm(g, g.addT(x1, f), `${p}.norm2`, D, stage.normEps);
}

/**
 * The official stage-4 `Block` (§2.4): x += attn(LN(x)); x += MLP(LN(x)) — also timm's ViT `Block`
 * (§2.10). Exported for the ViT's whole-model graph, whose key path is timm's `blocks.{i}`.
 */
export function pvtPreNormBlock(
  g: Graph,
  x: Tensor,
  p: string,
  stage: StageSpec,
  model: ModelSpec,
  c: LayerContext,
): Tensor {
  const D = stage.dim;
  const x1 = g.addT(
    x,
    attentionLayer(g, layerNorm(g, x, `${p}.norm1`, D, stage.normEps), `${p}.attn`, stage, model, c),
  );
  return g.addT(x1, mlp(g, layerNorm(g, x1, `${p}.norm2`, D, stage.normEps), `${p}.mlp`, stage));
}

/**
 * XCiT block (UFO-ViT presets, an assumption — §5.5): layer-scaled attention, LPI, MLP. Exported
 * for the whole-model graph, whose key path is `blocks.{i}` (XCiT naming) rather than `block1.{i}`.
 */
export function xcitBlock(g: Graph, x: Tensor, p: string, stage: StageSpec, model: ModelSpec, c: LayerContext): Tensor {
  const D = stage.dim;
  const { batch: B, gridH: H, gridW: W } = c;
  const gamma = (name: string) => g.weight(`${p}.${name}`, [D]);
  let y = g.addT(
    x,
    g.mul(
      gamma('gamma1'),
      attentionLayer(g, layerNorm(g, x, `${p}.norm1`, D, stage.normEps), `${p}.attn`, stage, model, c),
    ),
  );
  // LPI: depthwise 3×3 conv, GELU, BatchNorm, depthwise 3×3 conv on the token grid.
  const image = g.reshape(g.transpose(layerNorm(g, y, `${p}.norm3`, D, stage.normEps), [0, 2, 1]), [B, D, H, W]);
  const dw = (t: Tensor, name: string) =>
    g.conv2d(t, g.weight(`${p}.local_mp.${name}.weight`, [D, 1, 3, 3]), g.weight(`${p}.local_mp.${name}.bias`, [D]), {
      pad: 1,
      groups: D,
    });
  const lpi = dw(batchNorm(g, g.gelu(dw(image, 'conv1'), 'erf'), `${p}.local_mp.bn`, D, c.batchNormMode), 'conv2');
  y = g.addT(y, g.mul(gamma('gamma3'), g.transpose(g.reshape(lpi, [B, D, H * W]), [0, 2, 1])));
  return g.addT(y, g.mul(gamma('gamma2'), mlp(g, layerNorm(g, y, `${p}.norm2`, D, stage.normEps), `${p}.mlp`, stage)));
}

/** Block `index` (0-based) of a stage: key path `block{stage}.{index}` (+ `.att` for SOFT blocks). */
export function block(g: Graph, x: Tensor, stage: StageSpec, index: number, model: ModelSpec, c: LayerContext): Tensor {
  const p = `block${stage.index}.${index}`;
  switch (stage.layout) {
    case 'soft_post_norm':
      return softPostNormBlock(g, x, `${p}.att`, stage, model, c);
    case 'pvt_pre_norm':
      return pvtPreNormBlock(g, x, p, stage, model, c);
    case 'xcit':
      if (stage.clsToken) throw new Error('XCiT block: stages with a cls token are not supported');
      return xcitBlock(g, x, p, stage, model, c);
  }
}

/** Key path of a stage's attention module inside block `index`, as `block` builds it. */
export function attentionPrefix(stage: StageSpec, index: number): string {
  const p = `block${stage.index}.${index}`;
  return stage.layout === 'soft_post_norm' ? `${p}.att.mha` : `${p}.attn`;
}
