/**
 * The model registry: every architecture ViT Lens knows by name, as plain
 * architecture parameters. `build.ts` turns parameters (after a config's
 * overrides) into a ModelSpec, so a registered model and a hand-written one
 * go through the same code.
 */
import type { AttentionKind, GlobalPool, ModelFamily, NewtonVariant, PublishedFigures } from './spec';

export interface ArchitectureParams {
  family: ModelFamily;
  embedDims: number[];
  depths: number[];
  numHeads: number[];
  mlpRatios: number[];
  srRatios: number[];
  attention: AttentionKind[];
  newtonVariant: NewtonVariant;
  /** UFO and ViT families: patch size of the stem (XCiT's conv stack, ViT's one strided conv). UFO: class-attention layers. */
  patchSize: number;
  classAttentionLayers: number;
  /** ViT family: cls token (`token`, DeiT) or average pooling (`avg`). */
  globalPool?: GlobalPool;
  /** A fixed landmark grid (StageSpec.landmarkGrid); absent = landmarks at stride srRatio. */
  landmarkGrid?: number;
}

export interface RegisteredModel {
  name: string;
  title: string;
  params: ArchitectureParams;
  published: PublishedFigures | null;
  /** Why the default Newton variant is what it is (docs/MATHS.md §1.8). */
  newtonNote: string;
  notes: string[];
}

const SOFT_README = 'official SOFT README (fudan-zvg/SOFT)';

/** Fields every official SOFT variant shares (docs/MATHS.md §2.6). */
function softParams(embedDims: number[], numHeads: number[], depths: number[], norm: boolean): ArchitectureParams {
  const kind: AttentionKind = norm ? 'soft_norm' : 'soft';
  return {
    family: 'soft',
    embedDims,
    depths,
    numHeads,
    mlpRatios: [8, 8, 4, 4],
    srRatios: [8, 4, 2, 1],
    attention: [kind, kind, kind, 'softmax'],
    newtonVariant: norm ? 'B' : 'A',
    patchSize: 4,
    classAttentionLayers: 0,
  };
}

const SMALL_MISMATCH =
  'soft_small as registered in the official code (depths [1,3,20,4]) has 38.86M parameters and 6.40 GMACs (convention B), ' +
  'but the README lists SOFT-Small as 24M / 3.3G. Depths [1,3,7,4] would give 24.11M / 3.36 GMACs (a guess, unconfirmed).';

interface SoftRow {
  size: string;
  embedDims: number[];
  numHeads: number[];
  depths: number[];
  readmeParams: string;
  gflops: number;
  top1: number;
  top1Norm: number;
}

const SOFT_ROWS: SoftRow[] = [
  {
    size: 'tiny',
    embedDims: [64, 128, 320, 512],
    numHeads: [2, 4, 10, 16],
    depths: [1, 2, 3, 2],
    readmeParams: '13M',
    gflops: 1.9,
    top1: 79.3,
    top1Norm: 79.4,
  },
  {
    size: 'small',
    embedDims: [64, 128, 320, 512],
    numHeads: [2, 4, 10, 16],
    depths: [1, 3, 20, 4],
    readmeParams: '24M',
    gflops: 3.3,
    top1: 82.2,
    top1Norm: 82.4,
  },
  {
    size: 'medium',
    embedDims: [64, 128, 288, 512],
    numHeads: [2, 4, 9, 16],
    depths: [1, 3, 29, 5],
    readmeParams: '45M',
    gflops: 7.2,
    top1: 82.9,
    top1Norm: 83.1,
  },
  {
    size: 'large',
    embedDims: [64, 128, 320, 512],
    numHeads: [2, 4, 10, 16],
    depths: [1, 3, 40, 5],
    readmeParams: '64M',
    gflops: 11.0,
    top1: 83.1,
    top1Norm: 83.3,
  },
  {
    size: 'huge',
    embedDims: [64, 128, 352, 512],
    numHeads: [2, 4, 11, 16],
    depths: [1, 5, 49, 5],
    readmeParams: '87M',
    gflops: 16.3,
    top1: 83.3,
    top1Norm: 83.4,
  },
];

function softModels(): RegisteredModel[] {
  const out: RegisteredModel[] = [];
  for (const norm of [false, true]) {
    for (const row of SOFT_ROWS) {
      const name = norm ? `soft_norm_${row.size}` : `soft_${row.size}`;
      const label = `SOFT-${row.size[0]!.toUpperCase()}${row.size.slice(1)}${norm ? '-Norm' : ''}`;
      out.push({
        name,
        title: `${label}: 4-stage softmax-free pyramid (SOFT attention in stages 1–3, softmax + cls token in stage 4)`,
        params: softParams(row.embedDims, row.numHeads, row.depths, norm),
        published: {
          params: row.readmeParams,
          gflops: row.gflops,
          top1: norm ? row.top1Norm : row.top1,
          source: SOFT_README,
        },
        newtonNote: norm
          ? 'variant B: SOFT-Norm kernels always use the 2021 inverse (global alpha with back-off, no 0.01·I), docs/MATHS.md §1.8'
          : 'variant A: current master newton_inv (per-matrix alpha = 1.8/s², P = A + 0.01·I). The released SOFT_Tiny checkpoints were trained with variant B (2021 code)',
        notes: row.size === 'small' ? [SMALL_MISMATCH] : [],
      });
    }
  }
  return out;
}

const XCIT_NOTE =
  'UFO-ViT preset sizes are XCiT-sized assumptions (the UFO-ViT paper table was not available): ' +
  'XCiT layout with conv patch stem, learnable positional embedding, LPI and CaiT-style class attention built from UFO modules.';

interface UfoRow {
  size: string;
  dim: number;
  depth: number;
  heads: number;
}

const UFO_ROWS: UfoRow[] = [
  { size: 'tiny', dim: 192, depth: 12, heads: 4 },
  { size: 'small', dim: 384, depth: 12, heads: 8 },
  { size: 'medium', dim: 512, depth: 24, heads: 8 },
];

function ufoModels(): RegisteredModel[] {
  return UFO_ROWS.map((row) => ({
    name: `ufo_vit_${row.size}`,
    title: `UFO-ViT-${row.size} (XCiT-sized assumption): isotropic ${row.depth}-block UFO (XNorm linear attention) ViT, patch 16`,
    params: {
      family: 'ufo',
      embedDims: [row.dim],
      depths: [row.depth],
      numHeads: [row.heads],
      mlpRatios: [4],
      srRatios: [2],
      attention: ['ufo'],
      newtonVariant: 'A',
      patchSize: 16,
      classAttentionLayers: 2,
    },
    published: null,
    newtonNote: 'variant A (only used if a stage is switched to SOFT attention)',
    notes: [XCIT_NOTE],
  }));
}

const DEIT = 'DeiT (Touvron et al. 2021), Table 1';

interface VitRow {
  name: string;
  title: string;
  dim: number;
  heads: number;
  published: PublishedFigures | null;
}

/**
 * DeiT's three sizes (timm `deit_{tiny,small,base}_patch16_224`: patch 16, depth 12, mlp_ratio 4,
 * qkv_bias) with DeiT's own figures; their "FLOPs" are multiply–accumulates, as the SOFT README's.
 */
const VIT_ROWS: VitRow[] = [
  {
    name: 'vit_tiny',
    title:
      'DeiT-Ti: isotropic 12-block ViT (timm VisionTransformer: patch 16, cls token, pre-norm blocks), width 192, 3 heads',
    dim: 192,
    heads: 3,
    published: { params: '5.7M', gflops: 1.3, top1: 72.2, source: DEIT },
  },
  {
    name: 'vit_small',
    title:
      'DeiT-S: isotropic 12-block ViT (timm VisionTransformer: patch 16, cls token, pre-norm blocks), width 384, 6 heads',
    dim: 384,
    heads: 6,
    published: { params: '22M', gflops: 4.6, top1: 79.8, source: DEIT },
  },
  {
    name: 'vit_base',
    title:
      'DeiT-B: isotropic 12-block ViT (timm VisionTransformer: patch 16, cls token, pre-norm blocks), width 768, 12 heads',
    dim: 768,
    heads: 12,
    published: { params: '86M', gflops: 17.6, top1: 81.8, source: DEIT },
  },
];

export const FIG1B_NOTE =
  "The SOFT paper's Figure 1b stack (docs/MATHS.md §4.4): 12 layers, hidden 384, 12 heads, m = 49 landmarks at every sequence length. " +
  'The paper gives nothing else; patch 16, average pooling without a cls token (so n = H·W patch tokens and the grid attentions run) ' +
  'and sr_ratio 4 for the PVT spatial reduction are ViT Lens choices.';

/** sr_ratio 2 gives SOFT's m = 49 on the 14×14 grid of a 224 input; only `global_pool: avg` runs the grid attentions. */
function vitModels(): RegisteredModel[] {
  const vit = (row: VitRow, extra: Partial<ArchitectureParams>, notes: string[]): RegisteredModel => ({
    name: row.name,
    title: row.title,
    params: {
      family: 'vit',
      embedDims: [row.dim],
      depths: [12],
      numHeads: [row.heads],
      mlpRatios: [4],
      srRatios: [2],
      attention: ['softmax'],
      newtonVariant: 'A',
      patchSize: 16,
      classAttentionLayers: 0,
      globalPool: 'token',
      ...extra,
    },
    published: row.published,
    newtonNote: 'variant A (only used if the attention is switched to SOFT)',
    notes,
  });
  return [
    ...VIT_ROWS.map((row) => vit(row, {}, [])),
    vit(
      {
        name: 'vit_paper_fig1b',
        title:
          'SOFT paper Figure 1b stack: isotropic 12-block ViT, width 384, 12 heads, m = 49 landmarks at any length (patch 16, average pooling)',
        dim: 384,
        heads: 12,
        published: null,
      },
      { srRatios: [4], globalPool: 'avg', landmarkGrid: 7 },
      [FIG1B_NOTE],
    ),
  ];
}

export const REGISTERED_MODELS: readonly RegisteredModel[] = [...softModels(), ...ufoModels(), ...vitModels()];

const BY_NAME = new Map(REGISTERED_MODELS.map((m) => [m.name, m]));

export function findModel(name: string): RegisteredModel | undefined {
  return BY_NAME.get(name);
}

export const MODEL_NAMES: readonly string[] = REGISTERED_MODELS.map((m) => m.name);

/** Stage count of a family: the SOFT pyramid has 4 stages, the UFO-ViT presets and the ViT one isotropic stage. */
export function stageCount(family: ModelFamily): number {
  return family === 'soft' ? 4 : 1;
}
