/**
 * The whole network on the op set, image [B, 3, H, W] → logits [B, numClasses], with the
 * state_dict key names of the profile walk (`profile/walk.ts`) so a checkpoint drops in by name.
 *
 * SOFT family (docs/MATHS.md §2, the official `SoftmaxFreeVisionTransformer` on master): per stage
 * the `PatchEmbed` stem (3×3 convs + BatchNorm + ReLU), tokens = flatten(2).transpose(1, 2), the
 * positional embedding resized bilinearly (align_corners=False) from its stored grid to the
 * stage grid and added, then the stage's blocks (`blocks.ts`); stage 4 first prepends the cls
 * token, and its pos_embed row 0 (the cls position) is prepended to the resized grid rows
 * before the add. Final LayerNorm over all tokens, the cls row, the head.
 *
 * UFO family (XCiT layout, §5.5, a ViT Lens assumption): conv stem, learnable pos_embed
 * (resized likewise), XCiT blocks, then the cls token is prepended and CaiT-style
 * class-attention layers update only it, final LayerNorm, head on the cls row.
 *
 * ViT family (timm's VisionTransformer / DeiT, §2.10): `patch_embed.proj` (one Conv2d, kernel =
 * stride = patch), the cls token prepended and pos_embed (cls position first, grid rows resized)
 * added, `blocks.{i}` pre-norm blocks, then either the final `norm` and the head on the cls row
 * (global_pool token) or, without a cls token, the mean over the tokens, `fc_norm`, the head (avg).
 *
 * Intermediates are exposed by name (`taps`) for tests and attention-map extraction; a
 * runtime only evaluates what the requested outputs depend on, so unused taps cost nothing.
 */
import { convOut } from '../models/build';
import type { ModelSpec, NewtonBackward, StageSpec } from '../models/spec';
import type { AttentionProbe } from './attention/probe';
import type { DistanceMethod } from './attention/soft';
import { softmaxWeights } from './attention/softmax';
import { ufoAttention } from './attention/ufo';
import {
  batchNorm,
  block,
  layerContext,
  layerNorm,
  mlp,
  pvtPreNormBlock,
  xcitBlock,
  type BatchNormMode,
  type LayerContext,
} from './blocks';
import type { Graph, Tensor } from './graph';
import { resizeBilinearTokens } from './interpolate';

/** Name of the graph input holding the image batch. */
export const MODEL_INPUT = 'image';

export interface ModelGraphOptions {
  /** Square input side; or give `height` and `width`. Default: the spec's first resolution. */
  resolution?: number;
  height?: number;
  width?: number;
  batch?: number;
  /** SOFT distance evaluation (default `expanded`, the official `kernel_method: torch`). */
  distance?: DistanceMethod;
  /** Largest softmax score tile a runtime can hold (WebGPU binding limit); default no limit. */
  maxScoreElements?: number;
  /** Least bytes of a UFO token tile on runtimes faster in tiles (LayerContext.tokenTileBytes); default untiled. */
  tokenTileBytes?: number;
  /** How SOFT's Newton inverse is differentiated when a training graph is built on this one (pinv.ts). */
  newtonBackward?: NewtonBackward;
  /** BatchNorm's statistics: running (`eval`, default) or the batch's (`train`). */
  batchNormMode?: BatchNormMode;
  /** Attention maps wanted: the query token of a block's attention (stage 1-based, block 0-based). */
  probes?: { stage: number; block: number; query: number }[];
}

/** A probed attention layer: its map is `probe.map` ([B, heads, keys]) once the graph is built. */
export interface ProbedLayer {
  stage: number;
  block: number;
  probe: AttentionProbe;
}

export interface ModelGraph {
  /** [B, inChannels, H, W], named MODEL_INPUT. */
  input: Tensor;
  /** [B, numClasses]. */
  logits: Tensor;
  /**
   * Named intermediates in forward order. SOFT: `patch_embed{k}_out` [B, HW, D],
   * `block{k}.0_in` (after the pos-embed add; stage 4 after the cls concat), `block{k}.{i}_out`,
   * `norm_out` [B, tokens, D], `logits` (the names of the official intermediates index).
   * UFO: `patch_embed_out`, `blocks.0_in`, `blocks.{i}_out`, `cls_attn_blocks.{j}_out`, `norm_out`, `logits`.
   * ViT: `patch_embed_out`, `blocks.0_in`, `blocks.{i}_out`, then `norm_out` (cls token) or
   * `pool_out` [B, D] (average pooling, before fc_norm), `logits`.
   */
  taps: Map<string, Tensor>;
  /** Token grid (rows, columns) of each stage. */
  grids: { h: number; w: number }[];
  /** The probed attention layers, in the order asked. */
  probed: ProbedLayer[];
}

interface Build {
  g: Graph;
  spec: ModelSpec;
  batch: number;
  opts: ModelGraphOptions;
  taps: Map<string, Tensor>;
  grids: { h: number; w: number }[];
  probed: ProbedLayer[];
}

/** The context for block `index` of a stage: with a probe when that block's map was asked for. */
function blockContext(b: Build, c: LayerContext, stage: number, index: number): LayerContext {
  const want = b.opts.probes?.find((p) => p.stage === stage && p.block === index);
  if (!want) return c;
  const probe: AttentionProbe = { query: want.query };
  b.probed.push({ stage, block: index, probe });
  return { ...c, probe };
}

function inputSize(spec: ModelSpec, o: ModelGraphOptions): [number, number] {
  if (o.resolution !== undefined) return [o.resolution, o.resolution];
  if (o.height !== undefined || o.width !== undefined) {
    if (o.height === undefined || o.width === undefined)
      throw new Error('modelGraph: give both height and width (or resolution)');
    return [o.height, o.width];
  }
  const r = spec.resolutions[0];
  if (r === undefined) throw new Error('modelGraph: no resolution given and the spec lists none');
  return [r, r];
}

/** A stem (`PatchEmbed.proj` / XCiT `ConvPatchEmbed`): Sequential index 3j conv, 3j+1 BN, 3j+2 activation. */
function stem(b: Build, x: Tensor, prefix: string, stage: StageSpec): Tensor {
  const { g } = b;
  stage.stem.forEach((c, j) => {
    const key = `${prefix}.proj.${3 * j}`;
    const w = g.weight(`${key}.weight`, [c.outChannels, c.inChannels, c.kernel, c.kernel]);
    const bias = c.bias ? g.weight(`${key}.bias`, [c.outChannels]) : null;
    x = g.conv2d(x, w, bias, { stride: c.stride, pad: c.padding });
    if (c.batchNorm) x = batchNorm(g, x, `${prefix}.proj.${3 * j + 1}`, c.outChannels, b.opts.batchNormMode);
    if (c.activation === 'relu') x = g.unary('relu', x);
    else if (c.activation === 'gelu') x = g.gelu(x, 'erf');
  });
  return x;
}

/** [B, C, H, W] → [B, H·W, C] (`flatten(2).transpose(1, 2)`; token y·W + x). */
function toTokens(g: Graph, image: Tensor): Tensor {
  const [B, C, H, W] = image.shape as [number, number, number, number];
  return g.transpose(g.reshape(image, [B, C, H * W]), [0, 2, 1]);
}

/** [B, H·W, C] → [B, C, H, W] (`reshape(B, H, W, C).permute(0, 3, 1, 2)`). */
function toImage(g: Graph, tokens: Tensor, h: number, w: number): Tensor {
  const [B, , C] = tokens.shape as [number, number, number];
  return g.reshape(g.transpose(tokens, [0, 2, 1]), [B, C, h, w]);
}

/**
 * The stage's positional embedding for a grid of h×w tokens, [1, extra + h·w, C]: the stored
 * grid rows resized (identity when the grid is unchanged), the leading `extra` rows (the cls
 * position) passed through unresized, as the official `pos_embed4[:, 0]` is.
 */
function positionalEmbedding(g: Graph, key: string, stage: StageSpec, h: number, w: number, extra: number): Tensor {
  const pg = stage.posEmbedGrid;
  const C = stage.dim;
  const stored = g.weight(key, [1, extra + pg * pg, C]);
  const gridRows = extra ? g.slice(stored, 1, extra, extra + pg * pg) : stored;
  const resized = g.reshape(resizeBilinearTokens(g, g.reshape(gridRows, [pg, pg, C]), h, w, key), [1, h * w, C]);
  return extra ? g.concat([g.slice(stored, 1, 0, extra), resized], 1) : resized;
}

/** The cls token [1, 1, C] repeated over the batch (`cls_token.expand(B, -1, -1)`). */
function clsTokens(b: Build, dim: number): Tensor {
  const cls = b.g.weight('cls_token', [1, 1, dim]);
  // concat needs equal batch sizes; adding a zero [B,1,1] broadcasts the token without new ops.
  return b.batch === 1
    ? cls
    : b.g.addT(b.g.constant(new Float64Array(b.batch), [b.batch, 1, 1], 'cls_token.expand'), cls);
}

function stageContext(b: Build, stage: StageSpec, h: number, w: number): LayerContext {
  const c = layerContext(stage, h, b.batch, {
    ...(b.opts.distance ? { distance: b.opts.distance } : {}),
    ...(b.opts.maxScoreElements !== undefined ? { maxScoreElements: b.opts.maxScoreElements } : {}),
  });
  return {
    ...c,
    gridW: w,
    tokens: h * w + (stage.clsToken ? 1 : 0),
    ...(b.opts.tokenTileBytes ? { tokenTileBytes: b.opts.tokenTileBytes } : {}),
    ...(b.opts.newtonBackward ? { newtonBackward: b.opts.newtonBackward } : {}),
    ...(b.opts.batchNormMode ? { batchNormMode: b.opts.batchNormMode } : {}),
  };
}

/** Final LayerNorm over every token (as the official `self.norm(x)`), then the cls row through the head. */
function head(b: Build, tokens: Tensor, stage: StageSpec): Tensor {
  const { g, spec } = b;
  const D = stage.dim;
  const normed = layerNorm(g, tokens, 'norm', D, spec.finalNormEps);
  b.taps.set('norm_out', normed);
  const cls = g.reshape(g.slice(normed, 1, 0, 1), [b.batch, D]);
  const logits = g.linear(cls, 'head', D, spec.numClasses);
  b.taps.set('logits', logits);
  return logits;
}

function softPyramid(b: Build, image: Tensor): Tensor {
  const { g, spec } = b;
  let tokens: Tensor | null = null;
  for (const stage of spec.stages) {
    const k = stage.index;
    const previous = b.grids[b.grids.length - 1];
    const feature = stem(
      b,
      tokens && previous ? toImage(g, tokens, previous.h, previous.w) : image,
      `patch_embed${k}`,
      stage,
    );
    const [, , h, w] = feature.shape as [number, number, number, number];
    b.grids.push({ h, w });
    tokens = toTokens(g, feature);
    b.taps.set(`patch_embed${k}_out`, tokens);
    // Official order in stage 4: x = cat(cls_token, x), then x + cat(pos_embed4[:, :1], resize(pos_embed4[:, 1:])).
    const extra = stage.clsToken ? 1 : 0;
    if (stage.clsToken) tokens = g.concat([clsTokens(b, stage.dim), tokens], 1);
    if (stage.posEmbedGrid > 0) tokens = g.addT(tokens, positionalEmbedding(g, `pos_embed${k}`, stage, h, w, extra));
    b.taps.set(`block${k}.0_in`, tokens);
    const c = stageContext(b, stage, h, w);
    for (let i = 0; i < stage.depth; i++) {
      tokens = block(g, tokens, stage, i, spec, blockContext(b, c, k, i));
      b.taps.set(`block${k}.${i}_out`, tokens);
    }
  }
  const last = spec.stages[spec.stages.length - 1];
  if (!tokens || !last) throw new Error('modelGraph: the spec has no stages');
  if (!last.clsToken)
    throw new Error('modelGraph: the SOFT pyramid classifies from a cls token, but the last stage has none');
  return head(b, tokens, last);
}

/**
 * Class attention of the cls token over all tokens `u` [B, T, D] (already normalised) → [B, 1, D].
 * UFO: each query row of UFO attention depends only on its own query and on KᵀV over all
 * tokens, so the cls row of the full layer is exactly the class attention (the other rows are
 * wasted work, a few percent of the model, paid to keep one UFO definition).
 * Other kinds: CaiT's softmax class attention (q from the cls token; k, v, proj).
 */
function classAttention(b: Build, u: Tensor, prefix: string, stage: StageSpec): Tensor {
  const { g, batch: B } = b;
  const [, T] = u.shape as [number, number, number];
  const { dim: D, heads: h } = stage;
  if (stage.attention === 'ufo')
    return g.slice(ufoAttention(g, u, prefix, { batch: B, tokens: T, dim: D, heads: h }), 1, 0, 1);
  const dh = D / h;
  const heads = (t: Tensor, n: number, perm: number[]) => g.transpose(g.reshape(t, [B, n, h, dh]), perm);
  const q = heads(g.linear(g.slice(u, 1, 0, 1), `${prefix}.q`, D, D), 1, [0, 2, 1, 3]); // [B,h,1,dh]
  const kT = heads(g.linear(u, `${prefix}.k`, D, D), T, [0, 2, 3, 1]); // [B,h,dh,T]
  const v = heads(g.linear(u, `${prefix}.v`, D, D), T, [0, 2, 1, 3]); // [B,h,T,dh]
  const attn = softmaxWeights(g, q, kT);
  const merged = g.reshape(g.transpose(g.matmul(attn, v), [0, 2, 1, 3]), [B, 1, D]);
  return g.linear(merged, `${prefix}.proj`, D, D);
}

/**
 * CaiT class-attention block, as the profile walk counts it: only the cls token changes,
 * cls += γ1·CA(LN1(x)); cls += γ2·MLP(LN2(cls)); patch tokens pass through unchanged.
 */
function classAttentionBlock(b: Build, x: Tensor, p: string, stage: StageSpec): Tensor {
  const { g } = b;
  const D = stage.dim;
  const T = x.shape[1]!;
  const gamma = (name: string) => g.weight(`${p}.${name}`, [D]);
  const attended = classAttention(b, layerNorm(g, x, `${p}.norm1`, D, stage.normEps), `${p}.attn`, stage);
  let cls = g.addT(g.slice(x, 1, 0, 1), g.mul(gamma('gamma1'), attended));
  cls = g.addT(
    cls,
    g.mul(gamma('gamma2'), mlp(g, layerNorm(g, cls, `${p}.norm2`, D, stage.normEps), `${p}.mlp`, stage)),
  );
  return g.concat([cls, g.slice(x, 1, 1, T)], 1);
}

function ufoIsotropic(b: Build, image: Tensor): Tensor {
  const { g, spec } = b;
  const stage = spec.stages[0];
  if (!stage || spec.stages.length !== 1)
    throw new Error(`modelGraph: the UFO-ViT layout has one isotropic stage, the spec has ${spec.stages.length}`);
  const feature = stem(b, image, 'patch_embed', stage);
  const [, , h, w] = feature.shape as [number, number, number, number];
  b.grids.push({ h, w });
  let tokens = toTokens(g, feature);
  b.taps.set('patch_embed_out', tokens);
  if (stage.posEmbedGrid > 0) tokens = g.addT(tokens, positionalEmbedding(g, 'pos_embed', stage, h, w, 0));
  b.taps.set('blocks.0_in', tokens);
  const c = stageContext(b, stage, h, w);
  for (let i = 0; i < stage.depth; i++) {
    tokens = xcitBlock(g, tokens, `blocks.${i}`, stage, spec, blockContext(b, c, 1, i));
    b.taps.set(`blocks.${i}_out`, tokens);
  }
  // XCiT prepends the cls token only for the class-attention layers.
  let x = g.concat([clsTokens(b, stage.dim), tokens], 1);
  for (let j = 0; j < spec.classAttentionLayers; j++) {
    x = classAttentionBlock(b, x, `cls_attn_blocks.${j}`, stage);
    b.taps.set(`cls_attn_blocks.${j}_out`, x);
  }
  return head(b, x, stage);
}

/** timm's VisionTransformer: patch embedding, [cls +] pos_embed, pre-norm blocks, token or average pooling. */
function vitIsotropic(b: Build, image: Tensor): Tensor {
  const { g, spec } = b;
  const stage = spec.stages[0];
  if (!stage || spec.stages.length !== 1)
    throw new Error(`modelGraph: the ViT has one isotropic stage, the spec has ${spec.stages.length}`);
  // timm's PatchEmbed: `patch_embed.proj` is the conv itself (no Sequential index, no norm).
  const c = stage.stem[0]!;
  const feature = g.conv2d(
    image,
    g.weight('patch_embed.proj.weight', [c.outChannels, c.inChannels, c.kernel, c.kernel]),
    g.weight('patch_embed.proj.bias', [c.outChannels]),
    { stride: c.stride, pad: c.padding },
  );
  const [, , h, w] = feature.shape as [number, number, number, number];
  b.grids.push({ h, w });
  let tokens = toTokens(g, feature);
  b.taps.set('patch_embed_out', tokens);
  // timm's _pos_embed: x = cat(cls_token, x), then x + pos_embed (its row 0 is the cls position).
  const extra = stage.clsToken ? 1 : 0;
  if (stage.clsToken) tokens = g.concat([clsTokens(b, stage.dim), tokens], 1);
  tokens = g.addT(tokens, positionalEmbedding(g, 'pos_embed', stage, h, w, extra));
  b.taps.set('blocks.0_in', tokens);
  const ctx = stageContext(b, stage, h, w);
  for (let i = 0; i < stage.depth; i++) {
    tokens = pvtPreNormBlock(g, tokens, `blocks.${i}`, stage, spec, blockContext(b, ctx, 1, i));
    b.taps.set(`blocks.${i}_out`, tokens);
  }
  if (stage.clsToken) return head(b, tokens, stage);
  // global_pool 'avg': norm is Identity; the patch tokens' mean goes through fc_norm, then the head.
  const D = stage.dim;
  const pooled = g.reshape(g.scale(g.reduce('sum', tokens, 1), 1 / (h * w)), [b.batch, D]);
  b.taps.set('pool_out', pooled);
  const logits = g.linear(layerNorm(g, pooled, 'fc_norm', D, spec.finalNormEps), 'head', D, spec.numClasses);
  b.taps.set('logits', logits);
  return logits;
}

/** Builds the whole model on `g`; the input is `MODEL_INPUT` [batch, inChannels, H, W]. */
export function modelGraph(g: Graph, spec: ModelSpec, opts: ModelGraphOptions = {}): ModelGraph {
  const [height, width] = inputSize(spec, opts);
  const batch = opts.batch ?? 1;
  // Fail with the stage that runs out of pixels rather than deep inside a conv.
  let [h, w] = [height, width];
  for (const stage of spec.stages) {
    for (const c of stage.stem) [h, w] = [convOut(h, c), convOut(w, c)];
    if (h < 1 || w < 1)
      throw new Error(`modelGraph: a ${height}×${width} input leaves no tokens for stage ${stage.index}`);
  }
  const b: Build = { g, spec, batch, opts, taps: new Map(), grids: [], probed: [] };
  const input = g.input(MODEL_INPUT, [batch, spec.inChannels, height, width]);
  const logits =
    spec.family === 'soft'
      ? softPyramid(b, input)
      : spec.family === 'ufo'
        ? ufoIsotropic(b, input)
        : vitIsotropic(b, input);
  return { input, logits, taps: b.taps, grids: b.grids, probed: b.probed };
}
