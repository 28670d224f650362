/**
 * The real activations the approximation-quality job compares attentions on: the model (a
 * checkpoint's weights, or seeded random ones as inference draws them) runs on one image (a file
 * through timm's eval transform, or a seeded random tensor) on the float64 reference runtime, and
 * each analysed stage's first block hands over the tensors its attention computes — through the
 * attention probe (attention/probe.ts `operands`), so Q, K, V and SOFT's landmarks are exactly the
 * tensors the layer's one definition builds, not a second copy of it. The approximations' factors
 * come from the same definitions in turn (factors.ts).
 */
import { MODEL_INPUT, modelGraph } from '../../core/engine/model';
import { Graph, type Tensor } from '../../core/engine/graph';
import { ReferenceRuntime, type WeightSource } from '../../core/engine/lowerings/reference';
import { randomWeights, normals, seededRandom } from '../../core/engine/weights';
import type { AttentionFactors, AttentionOperands, AttentionProbe } from '../../core/engine/attention/probe';
import { softAttention } from '../../core/engine/attention/soft';
import { layerContext, softShape } from '../../core/engine/blocks';
import { landmarkStrides } from '../../core/models/build';
import type { ModelSpec, StageSpec } from '../../core/models/spec';
import { loadCheckpoint } from '../../inputs/checkpoint/load';
import { loadImageTensor } from '../../inputs/image';
import { bindCheckpoint, withCheckpointPosEmbedGrids } from '../infer/model-weights';
import { withCheckpointHead } from '../infer/run';

/** Per-head float64 tensors of one stage's first attention layer, heads outermost. */
export interface StageOperands {
  stage: StageSpec;
  grid: { h: number; w: number };
  /** N: query (and key) tokens, a cls token included where the stage has one. */
  tokens: number;
  headDim: number;
  /** q, k scaled by d^-¼ each (softmax(q·kᵀ) is exact attention), v: [heads, N, d]. */
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  /** SOFT: the landmarks the model computed, [heads, m, d], and m. */
  landmarks: { data: Float64Array; m: number } | null;
  /** PVT spatial reduction: the layer's attention rows over its t reduced keys [heads, N, t] (probe `factors`) and the reduced values [heads, t, d]. */
  reduced: { weights: Float64Array; v: Float64Array; tokens: number } | null;
  /** Linformer: its E and F, [k, N]. */
  linformer: { e: Float64Array; f: Float64Array; k: number } | null;
  /** The attention layer's input x [N, D] and its weights' key path: SOFT's landmarks are rebuilt from them for other strides, and the other attentions' factors computed on them (factors.ts). */
  input: Float64Array | null;
  prefix: string | null;
}

/** The model with its weights and one input image, ready to run. */
export interface PreparedModel {
  spec: ModelSpec;
  weights: WeightSource | null;
  /** Random weights come per graph from this seed (randomWeights hashes each key, so every graph of the model agrees). */
  seed: number;
  checkpoint: string | null;
  checkpointSource: string | null;
  image: Float32Array;
  imageFile: string | null;
  resolution: number;
  /** How the image became the input tensor, in words. */
  transform: string;
}

export interface InputOptions {
  resolution: number;
  /** A checkpoint file, or null for seeded random weights. */
  checkpoint: string | null;
  /** An image file, or null for a seeded random N(0, 1) input tensor (already normalised). */
  image: string | null;
  resize?: 'eval' | 'none';
  seed?: number;
}

/** Reads the checkpoint and the image (both checked before anything runs) into a model ready to run. */
export async function prepareModel(model: ModelSpec, o: InputOptions): Promise<PreparedModel> {
  const seed = o.seed ?? 0;
  let spec = model;
  let checkpointSource: string | null = null;
  let tensors: ReturnType<typeof loadCheckpoint>['tensors'] | null = null;
  if (o.checkpoint) {
    const loaded = loadCheckpoint(o.checkpoint);
    tensors = loaded.tensors;
    checkpointSource = loaded.source;
    spec = withCheckpointPosEmbedGrids(withCheckpointHead(spec, tensors), tensors);
  }
  const R = o.resolution;
  let image: Float32Array;
  let transform: string;
  if (o.image) {
    const resize = o.resize ?? 'eval';
    image = (await loadImageTensor(o.image, { size: R, resize })).data;
    transform =
      resize === 'eval'
        ? `timm eval transform to ${R}×${R} (resize shorter side to ${Math.floor(R / 0.9)}, centre crop)`
        : `decoded pixels as they are (${R}×${R}), ImageNet mean/std`;
  } else {
    // Its own stream: the weights draw one per key from the same seed (weights.ts).
    image = normals(spec.inChannels * R * R, seededRandom(seed ^ 0x5eed1e55));
    transform = `random N(0, 1) input tensor ${R}×${R} (seed ${seed})`;
  }
  let weights: WeightSource | null = null;
  if (tensors && o.checkpoint) {
    // Bind against the whole model's graph: the checkpoint is checked key by key as inference checks it.
    const g = new Graph();
    modelGraph(g, spec, { resolution: R });
    weights = bindCheckpoint(g, spec, tensors, o.checkpoint);
  }
  return {
    spec,
    weights,
    seed,
    checkpoint: o.checkpoint,
    checkpointSource,
    image,
    imageFile: o.image,
    resolution: R,
    transform,
  };
}

const f64 = (data: Float32Array | Float64Array): Float64Array =>
  data instanceof Float64Array ? data : Float64Array.from(data);

/**
 * Runs the model once in float64 and returns the operands of the first block of each stage asked
 * for (stages whose attention has no operands to give, UFO's, are left out).
 */
export function stageOperands(p: PreparedModel, stages: readonly number[]): Map<number, StageOperands> {
  const g = new Graph();
  const m = modelGraph(g, p.spec, {
    resolution: p.resolution,
    distance: p.spec.kernelMethod === 'torch' ? 'expanded' : 'direct',
    probes: stages.map((stage) => ({ stage, block: 0, query: 0 })),
  });
  const weights = p.weights ?? randomWeights(g, p.seed);
  const wanted: { stage: number; operands: AttentionOperands; factors: AttentionFactors | undefined }[] = [];
  for (const layer of m.probed)
    if (layer.probe.operands)
      wanted.push({ stage: layer.stage, operands: layer.probe.operands, factors: layer.probe.factors });
  const outputs: Tensor[] = [];
  const index = (t: Tensor | undefined) => (t ? outputs.push(t) - 1 : -1);
  const slots = wanted.map(({ stage, operands: o, factors }) => ({
    stage,
    q: index(o.q),
    k: index(o.k),
    v: index(o.v),
    landmarks: index(o.landmarks),
    reducedP: index(o.reduced && factors?.kind === 'softmax' ? factors.weights : undefined),
    reducedV: index(o.reduced?.v),
    e: index(o.linformer?.e),
    f: index(o.linformer?.f),
    input: index(o.input),
    prefix: o.prefix ?? null,
  }));
  const values = new ReferenceRuntime('float64').run(g, { [MODEL_INPUT]: p.image }, weights, outputs);
  const get = (i: number) => (i < 0 ? null : f64(values[i]!.data));
  const out = new Map<number, StageOperands>();
  for (const s of slots) {
    const stage = p.spec.stages.find((x) => x.index === s.stage)!;
    const grid = m.grids[s.stage - 1]!;
    const qShape = values[s.q]!.shape;
    const landmarks = get(s.landmarks);
    const reducedP = get(s.reducedP);
    const e = get(s.e);
    out.set(s.stage, {
      stage,
      grid,
      tokens: qShape[2]!,
      headDim: qShape[3]!,
      q: get(s.q)!,
      k: get(s.k)!,
      v: get(s.v)!,
      landmarks: landmarks ? { data: landmarks, m: values[s.landmarks]!.shape[2]! } : null,
      reduced: reducedP ? { weights: reducedP, v: get(s.reducedV)!, tokens: values[s.reducedV]!.shape[2]! } : null,
      linformer: e ? { e, f: get(s.f)!, k: values[s.e]!.shape[0]! } : null,
      input: get(s.input),
      prefix: s.prefix,
    });
  }
  return out;
}

/**
 * soft.ts's own layer at landmark stride r on the stage's attention input, with its probe: the
 * model's weights — random ones for a stride other than its own (a checkpoint has a landmark conv
 * for its trained r only) — the model's kernel distance (as stageOperands builds the model), and
 * `newtonIterations` Newton steps (default the model's). Null when r leaves no landmark.
 */
export function softLayer(
  p: PreparedModel,
  ops: StageOperands,
  r: number,
  newtonIterations?: number,
): { g: Graph; probe: AttentionProbe; inputs: Record<string, Float64Array>; weights: WeightSource } | null {
  const { stage, grid } = ops;
  if (!ops.input || !ops.prefix || Math.floor(grid.h / r) * Math.floor(grid.w / r) < 1) return null;
  const own = landmarkStrides(stage, grid.h, grid.w)[0];
  if (p.weights && r !== own) throw new Error(`approx: a checkpoint has a landmark conv for r = ${own} only, not ${r}`);
  const g = new Graph();
  const x = g.input('x', [1, ops.tokens, stage.dim]);
  // The kernels' distance as the model evaluates it (kernel_method: torch → expanded, cuda → direct).
  const distance = p.spec.kernelMethod === 'torch' ? 'expanded' : 'direct';
  const c = { ...layerContext(stage, grid.h, 1, { distance }), gridW: grid.w, tokens: ops.tokens };
  const probe: AttentionProbe = { query: 0 };
  const shape = softShape(stage, p.spec, c);
  softAttention(
    g,
    x,
    ops.prefix,
    { ...shape, ratio: r, newton: { ...shape.newton, iterations: newtonIterations ?? shape.newton.iterations } },
    probe,
  );
  return { g, probe, inputs: { x: ops.input }, weights: p.weights ?? randomWeights(g, p.seed) };
}

/** SOFT's landmarks [heads, m, d] for another stride r than the model's, from the same attention input (softLayer). Null when r leaves no landmark. */
export function softLandmarksAt(
  p: PreparedModel,
  ops: StageOperands,
  r: number,
): { data: Float64Array; m: number } | null {
  const layer = softLayer(p, ops, r);
  if (!layer) return null;
  const landmarks = layer.probe.operands!.landmarks!;
  const [l] = new ReferenceRuntime('float64').run(layer.g, layer.inputs, layer.weights, [landmarks]);
  return { data: f64(l!.data), m: landmarks.shape[2]! };
}
