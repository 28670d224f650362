/**
 * ModelSpec: the fully resolved architecture a config describes.
 *
 * Everything downstream (profile, engine, inference) reads only this, never the
 * YAML. It records the official code's quirks explicitly (per-module LayerNorm eps,
 * GELU flavours, ignored mlp_ratios) so no consumer has to know them.
 */

/**
 * Attention kinds a stage can use. `softmax_sr` is PVT's spatial-reduction softmax, which the SOFT
 * paper ran as its "Linformer" (§4.2); `linformer` is Linformer itself (learned E, F along the
 * tokens). `performer` and `nystrom` are the paper's other two linear attentions (docs/MATHS.md §6A).
 */
export const ATTENTION_KINDS = [
  'softmax',
  'softmax_sr',
  'soft',
  'soft_norm',
  'ufo',
  'performer',
  'nystrom',
  'linformer',
] as const;
export type AttentionKind = (typeof ATTENTION_KINDS)[number];

/** Attentions whose landmarks are pooled from the token grid with the stage's stride (SOFT's conv, Nyströmformer's average). */
export function poolsLandmarks(kind: AttentionKind): boolean {
  return kind === 'soft' || kind === 'soft_norm' || kind === 'nystrom';
}

/** Attentions that work on the H×W token grid, so a stage with a cls token cannot run them (PVT's reduction too). */
export function needsTokenGrid(kind: AttentionKind): boolean {
  return poolsLandmarks(kind) || kind === 'softmax_sr';
}

/**
 * Nyströmformer's skip on V: `grid` = SOFT's k×k depthwise conv per head on the token grid (the
 * stage's conv_size; how the SOFT paper's image version is read here), `sequence` = the original's
 * (c, 1) depthwise conv along the token sequence, `none`.
 */
export const NYSTROM_CONVS = ['grid', 'sequence', 'none'] as const;
export type NystromConv = (typeof NYSTROM_CONVS)[number];

/** Hyperparameters of the comparison attentions (config keys `performer_*`, `nystrom_*`, `linformer_k`). */
export interface ComparisonParams {
  /** Performer random features m per stage; null = ⌊d·ln d⌋ of each stage's head size d. */
  performerFeatures: number[] | null;
  /** Seed of the random features, so a benchmark is reproducible (stage s draws with seed + s). */
  performerSeed: number;
  /** Iterations of Nyströmformer's pseudo-inverse (the original: 6). */
  nystromIterations: number;
  nystromConv: NystromConv;
  /** Kernel c of the `sequence` conv (the original's LRA configs: 35). */
  nystromSequenceKernel: number;
  /** Linformer's projected length k per stage; null = the stage's landmark count ⌊H/r⌋·⌊W/r⌋ at the grid run. */
  linformerK: number[] | null;
}

export const DEFAULT_COMPARISON: ComparisonParams = {
  performerFeatures: null,
  performerSeed: 0,
  nystromIterations: 6,
  nystromConv: 'grid',
  nystromSequenceKernel: 35,
  linformerK: null,
};

/** Newton–Raphson pseudo-inverse variants of the official code (docs/MATHS.md §1.4). */
export const NEWTON_VARIANTS = ['A', 'B'] as const;
export type NewtonVariant = (typeof NEWTON_VARIANTS)[number];

/**
 * How training differentiates SOFT's Newton inverse. `analytic`: the current official code's
 * `_NewtonInverseKernel` runs the iterations forward only and back-propagates −Vᵀ·G·Vᵀ (the true
 * derivative only where V has converged). `unrolled`: through every iteration and the initial step
 * size, as the 2021 code's autograd did.
 */
export const NEWTON_BACKWARDS = ['analytic', 'unrolled'] as const;
export type NewtonBackward = (typeof NEWTON_BACKWARDS)[number];

/** Each variant's own code's choice: the current code (A) is analytic, the 2021 code (B) unrolled. */
export function defaultNewtonBackward(variant: NewtonVariant): NewtonBackward {
  return variant === 'A' ? 'analytic' : 'unrolled';
}

export const KERNEL_METHODS = ['torch', 'cuda'] as const;
export type KernelMethod = (typeof KERNEL_METHODS)[number];

export type GeluFlavour = 'erf' | 'tanh';

/** One convolution of a patch-embedding stem. */
export interface StemConv {
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  padding: number;
  bias: boolean;
  /** BatchNorm2d after the conv (eval: an affine per channel). */
  batchNorm: boolean;
  activation: 'relu' | 'gelu' | null;
}

/**
 * Block layouts:
 * - `soft_post_norm`: the official SoftmaxFreeTransformerBlock (stages 1–3):
 *   x1 = LN(x + attn(x)); out = LN(x1 + FFN(x1)), FFN hidden 4·D, tanh GELU, eps 1e-5.
 * - `pvt_pre_norm`: the official stage-4 `Block`: x += attn(LN(x)); x += MLP(LN(x)), eps 1e-6, erf GELU.
 *   timm's ViT `Block` is the same computation, so the isotropic ViT family uses it too (docs/MATHS.md §2.10).
 * - `xcit`: XCiT-style block (UFO-ViT presets): x += γ1·attn(LN(x)); x += γ3·LPI(LN(x)); x += γ2·MLP(LN(x)).
 */
export type BlockLayout = 'soft_post_norm' | 'pvt_pre_norm' | 'xcit';

export interface StageSpec {
  /** 1-based stage number, as in the official key names (block1, patch_embed1 …). */
  index: number;
  dim: number;
  heads: number;
  headDim: number;
  depth: number;
  attention: AttentionKind;
  layout: BlockLayout;
  /** FFN hidden width actually built (official SOFT blocks ignore mlp_ratios[0..2]: always 4·D). */
  mlpHidden: number;
  /** mlp_ratio as declared in the config/registry, kept for diagnostics. */
  declaredMlpRatio: number;
  /** SOFT landmark stride r (also the PVT spatial-reduction ratio for softmax_sr). */
  srRatio: number;
  /** SOFT depthwise-conv-on-V kernel size (9, 5, 3 for stages 1–3). 0 = none. */
  localConvKernel: number;
  /** LayerNorm eps of the block's norms. */
  normEps: number;
  /** LayerNorm eps of the SOFT landmark norm (Qnorm_act.0). */
  landmarkNormEps: number;
  ffnGelu: GeluFlavour;
  /** True when the stage prepends a cls token (official stage 4). */
  clsToken: boolean;
  /** Patch-embedding stem that feeds this stage. */
  stem: StemConv[];
  /** Grid side the positional embedding was trained at (224 input), or 0 for none. */
  posEmbedGrid: number;
  /**
   * A fixed landmark grid g: SOFT's and Nyströmformer's landmarks are pooled with strides
   * ⌊H/g⌋ × ⌊W/g⌋, so m = g² at every input whose grid sides are multiples of g — how the SOFT
   * paper's Figure 1b keeps m = 49 as n grows (docs/MATHS.md §4.4) and how the 2021 code fixed m
   * (quirk Q9). Absent: the stride is srRatio both ways and m grows with the input (current code).
   */
  landmarkGrid?: number;
}

/**
 * `soft`: the official 4-stage SOFT pyramid. `ufo`: the XCiT-layout UFO-ViT presets. `vit`: the
 * isotropic ViT of timm's VisionTransformer / DeiT (docs/MATHS.md §2.10).
 */
export type ModelFamily = 'soft' | 'ufo' | 'vit';

/**
 * How the isotropic ViT reads its classifier input (timm's `global_pool`): `token` = a cls token
 * prepended to the patch tokens, the final `norm` over all tokens, the head on the cls row (DeiT);
 * `avg` = no cls token (timm's class_token=False), the patch tokens averaged, then `fc_norm`, then
 * the head. Only `avg` leaves the blocks a plain token grid, which SOFT, Nyströmformer and PVT's
 * spatial reduction need.
 */
export const GLOBAL_POOLS = ['token', 'avg'] as const;
export type GlobalPool = (typeof GLOBAL_POOLS)[number];

export interface PublishedFigures {
  params: string;
  gflops: number;
  top1: number;
  source: string;
}

export interface ModelSpec {
  /** Registry name (`soft_tiny`) or `custom`. */
  name: string;
  family: ModelFamily;
  /** One-line description for hovers. */
  title: string;
  inChannels: number;
  numClasses: number;
  /** Input resolutions to study; the first is the default. */
  resolutions: number[];
  stages: StageSpec[];
  newton: { variant: NewtonVariant; maxIter: number; variantSource: string; backward: NewtonBackward };
  /** Performer, Nyströmformer and Linformer settings (used by stages that run them). */
  comparison: ComparisonParams;
  kernelMethod: KernelMethod;
  finalNormEps: number;
  /** UFO-ViT presets: CaiT/XCiT class-attention layers after the last stage. */
  classAttentionLayers: number;
  /** The isotropic ViT's pooling (`vit` family only; the other families classify from a cls token). */
  globalPool?: GlobalPool;
  /** Notes a user must see wherever this model is shown (assumptions, known mismatches). */
  notes: string[];
  published: PublishedFigures | null;
}
