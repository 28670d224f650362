/**
 * Architecture parameters → ModelSpec. The only place that knows how the official
 * code turns embed_dims/depths/… into modules (docs/MATHS.md §2), so registered models
 * and custom configs get identical treatment.
 */
import type { ArchitectureParams } from './registry';
import {
  DEFAULT_COMPARISON,
  defaultNewtonBackward,
  type ComparisonParams,
  type KernelMethod,
  type ModelSpec,
  type NewtonBackward,
  type NewtonVariant,
  type StageSpec,
  type StemConv,
} from './spec';

export interface BuildOptions {
  name: string;
  title: string;
  params: ArchitectureParams;
  resolutions: number[];
  numClasses: number;
  newtonMaxIter: number;
  newtonVariant: NewtonVariant;
  newtonVariantSource: string;
  /** Absent: the variant's own code's choice (defaultNewtonBackward). */
  newtonBackward?: NewtonBackward;
  kernelMethod: KernelMethod;
  notes: string[];
  published: ModelSpec['published'];
  /** Comparison-attention settings; DEFAULT_COMPARISON when omitted. */
  comparison?: ComparisonParams;
}

/** Official SOFT depthwise-conv-on-V kernel per stage (conv_size). */
const SOFT_LOCAL_CONV = [9, 5, 3, 3];
/** Official SOFT positional-embedding grids (built for a 224 input, stride 4/8/16/32). */
const SOFT_POS_GRID = [56, 28, 14, 7];

function conv(inC: number, outC: number, stride: number, activation: StemConv['activation'], bias: boolean): StemConv {
  return { inChannels: inC, outChannels: outC, kernel: 3, stride, padding: 1, bias, batchNorm: true, activation };
}

/** `PatchEmbed` of the official SOFT model (docs/MATHS.md §2.1). */
function softStem(stage: number, inC: number, outC: number): StemConv[] {
  if (stage === 1)
    return [conv(inC, 32, 2, 'relu', true), conv(32, 32, 1, 'relu', true), conv(32, outC, 2, 'relu', true)];
  return [conv(inC, outC, 2, 'relu', true)];
}

/** XCiT `ConvPatchEmbed`: log2(patch) stride-2 3×3 convs without bias, BN, GELU between. */
function xcitStem(inC: number, dim: number, patch: number): StemConv[] {
  const steps = Math.round(Math.log2(patch));
  const widths = Array.from({ length: steps }, (_, i) => dim / 2 ** (steps - 1 - i));
  return widths.map((w, i) => conv(i === 0 ? inC : widths[i - 1]!, w, 2, i === steps - 1 ? null : 'gelu', false));
}

function softStages(p: ArchitectureParams, inChannels: number): StageSpec[] {
  return p.embedDims.map((dim, i) => {
    const last = i === p.embedDims.length - 1;
    const heads = p.numHeads[i]!;
    return {
      index: i + 1,
      dim,
      heads,
      headDim: dim / heads,
      depth: p.depths[i]!,
      attention: p.attention[i]!,
      // Stages 1–3 are SoftmaxFreeTransformerBlocks, stage 4 the PVT-style Block (Q5–Q7).
      layout: last ? 'pvt_pre_norm' : 'soft_post_norm',
      mlpHidden: last ? Math.trunc(dim * p.mlpRatios[i]!) : 4 * dim,
      declaredMlpRatio: p.mlpRatios[i]!,
      srRatio: p.srRatios[i]!,
      localConvKernel: SOFT_LOCAL_CONV[i] ?? 3,
      normEps: last ? 1e-6 : 1e-5,
      landmarkNormEps: 1e-5,
      ffnGelu: last ? 'erf' : 'tanh',
      clsToken: last,
      stem: softStem(i + 1, i === 0 ? inChannels : p.embedDims[i - 1]!, dim),
      posEmbedGrid: SOFT_POS_GRID[i] ?? 0,
    };
  });
}

/**
 * SOFT's depthwise conv on V goes with the landmark stride in the official stages (r = 8, 4, 2 with
 * k = 9, 5, 3): the isotropic ViT keeps that pairing, k = r + 1 (odd, so the padding is symmetric).
 */
function convForStride(r: number): number {
  return r % 2 === 0 ? r + 1 : r;
}

/**
 * timm's VisionTransformer / DeiT (docs/MATHS.md §2.10): one stage of `depth` pre-norm blocks
 * (LayerNorm eps 1e-6, erf GELU, mlp_ratio) behind a patch embedding that is one Conv2d with
 * kernel = stride = patch (`patch_embed.proj`), with or without a cls token (global_pool).
 */
function vitStages(p: ArchitectureParams, inChannels: number): StageSpec[] {
  const dim = p.embedDims[0]!;
  const heads = p.numHeads[0]!;
  const patch = p.patchSize;
  const sr = p.srRatios[0]!;
  return [
    {
      index: 1,
      dim,
      heads,
      headDim: dim / heads,
      depth: p.depths[0]!,
      attention: p.attention[0]!,
      layout: 'pvt_pre_norm',
      mlpHidden: Math.trunc(dim * p.mlpRatios[0]!),
      declaredMlpRatio: p.mlpRatios[0]!,
      srRatio: sr,
      localConvKernel: convForStride(sr),
      normEps: 1e-6,
      landmarkNormEps: 1e-5,
      ffnGelu: 'erf',
      clsToken: (p.globalPool ?? 'token') === 'token',
      stem: [
        {
          inChannels,
          outChannels: dim,
          kernel: patch,
          stride: patch,
          padding: 0,
          bias: true,
          batchNorm: false,
          activation: null,
        },
      ],
      // timm: img_size // patch_size (the grid the 224 checkpoints store).
      posEmbedGrid: Math.floor(224 / patch),
      ...(p.landmarkGrid ? { landmarkGrid: p.landmarkGrid } : {}),
    },
  ];
}

function ufoStages(p: ArchitectureParams, inChannels: number): StageSpec[] {
  const dim = p.embedDims[0]!;
  const heads = p.numHeads[0]!;
  return [
    {
      index: 1,
      dim,
      heads,
      headDim: dim / heads,
      depth: p.depths[0]!,
      attention: p.attention[0]!,
      layout: 'xcit',
      mlpHidden: Math.trunc(dim * p.mlpRatios[0]!),
      declaredMlpRatio: p.mlpRatios[0]!,
      srRatio: p.srRatios[0]!,
      localConvKernel: 3,
      normEps: 1e-6,
      landmarkNormEps: 1e-5,
      ffnGelu: 'erf',
      clsToken: false,
      stem: xcitStem(inChannels, dim, p.patchSize),
      posEmbedGrid: 224 / p.patchSize,
    },
  ];
}

export function buildModelSpec(o: BuildOptions): ModelSpec {
  const inChannels = 3;
  const p = o.params;
  return {
    name: o.name,
    family: p.family,
    title: o.title,
    inChannels,
    numClasses: o.numClasses,
    resolutions: o.resolutions,
    stages:
      p.family === 'soft'
        ? softStages(p, inChannels)
        : p.family === 'ufo'
          ? ufoStages(p, inChannels)
          : vitStages(p, inChannels),
    newton: {
      variant: o.newtonVariant,
      maxIter: o.newtonMaxIter,
      variantSource: o.newtonVariantSource,
      backward: o.newtonBackward ?? defaultNewtonBackward(o.newtonVariant),
    },
    comparison: o.comparison ?? DEFAULT_COMPARISON,
    kernelMethod: o.kernelMethod,
    finalNormEps: 1e-6,
    classAttentionLayers: p.family === 'ufo' ? p.classAttentionLayers : 0,
    ...(p.family === 'vit' ? { globalPool: p.globalPool ?? 'token' } : {}),
    notes: o.notes,
    published: o.published,
  };
}

/** Spatial size after a stem conv: floor((in + 2p − k)/s) + 1. */
export function convOut(size: number, c: StemConv): number {
  return Math.floor((size + 2 * c.padding - c.kernel) / c.stride) + 1;
}

/** Token grid (H = W) of every stage for a square input. */
export function stageGrids(spec: ModelSpec, resolution: number): number[] {
  return stageGridShapes(spec, resolution, resolution).map((g) => g.h);
}

/** Token grid (rows, columns) of every stage for an H×W input. */
export function stageGridShapes(spec: ModelSpec, height: number, width: number): { h: number; w: number }[] {
  let [h, w] = [height, width];
  return spec.stages.map((stage) => {
    for (const c of stage.stem) [h, w] = [convOut(h, c), convOut(w, c)];
    return { h, w };
  });
}

/** Landmarks of a SOFT stage: floor(H/r)·floor(W/r) (remainder rows/cols dropped, Q10). */
export function landmarkCount(grid: number, srRatio: number): number {
  return Math.floor(grid / srRatio) ** 2;
}

/**
 * The landmark pooling strides (rows, columns) of a stage on an H×W token grid: sr_ratio both
 * ways, or, with a fixed landmark grid g, ⌊H/g⌋ × ⌊W/g⌋ (at least 1) — the one rule SOFT's
 * landmark conv, Nyströmformer's pooling, the profile walk and the default Linformer k share.
 */
export function landmarkStrides(
  stage: Pick<StageSpec, 'srRatio' | 'landmarkGrid'>,
  gridH: number,
  gridW: number,
): [number, number] {
  const g = stage.landmarkGrid;
  if (!g) return [stage.srRatio, stage.srRatio];
  return [Math.max(1, Math.floor(gridH / g)), Math.max(1, Math.floor(gridW / g))];
}

/** Landmark grid (rows, columns) of a stage on an H×W token grid; m = h·w (remainders dropped, Q10). */
export function landmarkShape(
  stage: Pick<StageSpec, 'srRatio' | 'landmarkGrid'>,
  gridH: number,
  gridW: number,
): { h: number; w: number } {
  const [rh, rw] = landmarkStrides(stage, gridH, gridW);
  return { h: Math.floor(gridH / rh), w: Math.floor(gridW / rw) };
}

/** m = landmarkShape's h·w. */
export function stageLandmarks(
  stage: Pick<StageSpec, 'srRatio' | 'landmarkGrid'>,
  gridH: number,
  gridW: number,
): number {
  const { h, w } = landmarkShape(stage, gridH, gridW);
  return h * w;
}

/** Whether a stage runs a Newton inverse. */
export function usesNewton(stage: StageSpec): boolean {
  return stage.attention === 'soft' || stage.attention === 'soft_norm';
}
