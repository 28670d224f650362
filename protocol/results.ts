/**
 * Plain result objects that cross process boundaries (LSP, CLI JSON, webview).
 * No classes, no functions: JSON in, JSON out.
 */
import type { Convention, ElementwiseKind, MacCategory, OpKind } from '../server/profile/categories';

export interface StageSummary {
  group: string;
  stage: number;
  attention: string | null;
  grid: number;
  tokens: number;
  landmarks: number | null;
  dim: number;
  heads: number;
  depth: number;
  params: number;
  macsByConvention: Record<Convention, number>;
  macsByCategory: Record<MacCategory, number>;
  macsByKind: Record<OpKind, number>;
  elementwise: Record<ElementwiseKind, number>;
  /** Estimated largest live-activation set inside the stage (float32). */
  peakActivationBytesEstimate: number;
}

/** One module-level layer: a stem, a block, the positional embeddings, the head. */
export interface LayerSummary {
  /** state_dict prefix: `patch_embed1`, `block2.1`, `blocks.3`, `head` … */
  name: string;
  group: string;
  stage: number;
  block: number;
  params: number;
  macsByConvention: Record<Convention, number>;
  /** Sum of the layer's op output sizes (float32) — what the layer writes. */
  activationBytes: number;
  /** Largest live set while the layer runs (estimate, float32). */
  peakActivationBytesEstimate: number;
}

/** One op of the profile walk. */
export interface OpSummary {
  path: string;
  layer: string;
  kind: OpKind;
  label: string;
  category: MacCategory | null;
  macs: number;
  params: number;
  elementwise: Partial<Record<ElementwiseKind, number>>;
  outputBytes: number;
}

export interface ModelProfileSummary {
  model: string;
  title: string;
  notes: string[];
  resolution: number;
  batch: number;
  /** Counting unit of every `macs*` field: multiply–accumulates. FLOPs = 2 × MACs. */
  unit: 'MACs';
  params: number;
  macsByConvention: Record<Convention, number>;
  conventions: { convention: Convention; label: string; macs: number; flops: number }[];
  readmeConvention: Convention;
  readmeConventionNote: string;
  macsByCategory: Record<MacCategory, number>;
  macsByKind: Record<OpKind, number>;
  elementwise: Record<ElementwiseKind, number>;
  newton: { variant: string; iterations: number; source: string; macsAreLowerBound: boolean };
  kernelMethod: string;
  memory: {
    kind: 'estimate';
    note: string;
    parameterBytes: number;
    bufferBytes: number;
    peakActivationBytes: number;
    peakTotalBytes: number;
    peakAt: string;
  };
  stages: StageSummary[];
  layers: LayerSummary[];
  /** Every op, in execution order (omitted when not asked for). */
  ops?: OpSummary[];
  published: { params: string; gflops: number; top1: number; source: string } | null;
}
