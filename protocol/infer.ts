/**
 * Inference results (`vitlens infer`, later `vitlens/infer`): plain JSON, like results.ts.
 */
import type { RuntimeDescription } from './results';

export interface ClassPrediction {
  index: number;
  label: string;
  /** Softmax probability over all classes. */
  probability: number;
  logit: number;
}

/**
 * What one attention layer attends to from one query token: a weight per key token, per head
 * and averaged over heads, laid out on the key grid (row-major) for an overlay on the image.
 */
export interface AttentionMap {
  stage: number;
  /** Block index inside the stage (0-based; default the stage's last block). */
  block: number;
  attention: string;
  /** The token grid of the stage (queries). */
  grid: { h: number; w: number };
  /** The grid the weights lie on: the stage grid, or PVT's spatially reduced grid for softmax_sr. */
  keyGrid: { h: number; w: number };
  /** The query: a grid position, or the cls token (stage 4). */
  query: { row: number; col: number } | 'cls';
  /** Weights of the cls key (stage 4 softmax), kept apart from the grid; null when there is none. */
  clsWeight: { heads: number[]; mean: number } | null;
  /** heads[h][k] for k over keyGrid (row-major). */
  heads: number[][];
  mean: number[];
  /**
   * What the numbers are: "softmax attention row (sums to 1)", "SOFT implied attention
   * K1·K2⁺·K1ᵀ row (not normalised; can be negative)", "UFO implied token weights
   * XNorm(q)·k (linear, not normalised)".
   */
  meaning: string;
}

export interface InferItem {
  /** The image file, or the raw tensor file and its batch row. */
  name: string;
  kind: 'image' | 'tensor';
  /** Decoded image size before the transform (images only). */
  original: { width: number; height: number } | null;
  /** The model's input as a picture (after resize and crop, before normalisation): a PNG data URL. */
  inputImage: string | null;
  /** The input with the first map's head average over it (PNG data URL), for places that cannot draw (hovers). */
  overlayImage: string | null;
  top5: ClassPrediction[];
  logits: number[];
  /** Attention maps for the chosen query, one per stage (when asked for). */
  maps: AttentionMap[];
}

export interface InferReport {
  model: string;
  config: string | null;
  /** The checkpoint file and which of its dicts held the weights; null = random weights. */
  checkpoint: { file: string; source: string; tensors: number; elements: number } | null;
  weights: string;
  runtime: RuntimeDescription;
  input: { batch: number; height: number; width: number; transform: string };
  numClasses: number;
  items: InferItem[];
  /** Milliseconds: reading the checkpoint, preprocessing, graph build, session creation, the forward pass. */
  timingMs: { checkpoint: number; preprocess: number; build: number; session: number; forward: number };
  notes: string[];
}
