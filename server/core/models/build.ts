/**
 * Architecture parameters → ModelSpec. The only place that knows how the official
 * code turns embed_dims/depths/… into modules (docs/MATHS.md §2), so registered models
 * and custom configs get identical treatment.
 */
import type { ArchitectureParams } from './registry';
import {
  DEFAULT_COMPARISON,
  type ComparisonParams,
  type KernelMethod,
  type ModelSpec,
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
    stages: p.family === 'soft' ? softStages(p, inChannels) : ufoStages(p, inChannels),
    newton: { variant: o.newtonVariant, maxIter: o.newtonMaxIter, variantSource: o.newtonVariantSource },
    comparison: o.comparison ?? DEFAULT_COMPARISON,
    kernelMethod: o.kernelMethod,
    finalNormEps: 1e-6,
    classAttentionLayers: p.family === 'ufo' ? p.classAttentionLayers : 0,
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
  const grids: number[] = [];
  let size = resolution;
  for (const stage of spec.stages) {
    for (const c of stage.stem) size = convOut(size, c);
    grids.push(size);
  }
  return grids;
}

/** Landmarks of a SOFT stage: floor(H/r)·floor(W/r) (remainder rows/cols dropped, Q10). */
export function landmarkCount(grid: number, srRatio: number): number {
  return Math.floor(grid / srRatio) ** 2;
}

/** Whether a stage runs a Newton inverse. */
export function usesNewton(stage: StageSpec): boolean {
  return stage.attention === 'soft' || stage.attention === 'soft_norm';
}
