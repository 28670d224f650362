/**
 * Puts a loaded checkpoint's tensors onto a model graph's weight nodes by state_dict key, after
 * checking the checkpoint against the tensor list the profile walk records for the spec (the
 * official state_dict, docs/MATHS.md §2.7), the way `load_state_dict(strict=True)` would, so a
 * wrong or foreign checkpoint fails with a readable list of missing / unexpected / mis-shaped
 * keys instead of a runtime error on the first weight node that reads it.
 *
 * Use: `spec = withCheckpointPosEmbedGrids(spec, ck.tensors)` (a checkpoint trained at another
 * resolution stores another pos_embed grid), then `modelGraph(g, spec, …)`, then
 * `bindCheckpoint(g, spec, ck.tensors, file)` for the runtime's WeightSource.
 */
import type { WeightSource } from '../../core/engine/lowerings/reference';
import type { Graph } from '../../core/engine/graph';
import type { ModelSpec } from '../../core/models/spec';
import type { TensorEntry } from '../../core/profile/recorder';
import { walkModel } from '../../core/profile/walk';
import { checkAgainst, formatCheckReport, isCleanCheck, type CheckResult } from '../../inputs/checkpoint/check';

/** A checkpoint tensor as `loadCheckpoint` returns it (dtype optional for hand-made maps). */
export interface CheckpointTensor {
  shape: readonly number[];
  dtype?: string;
  data: ArrayLike<number> | BigInt64Array;
}

/** BatchNorm's step counter: a training statistic, never read at inference, so neither required nor unexpected. */
const IGNORED_LEAF = 'num_batches_tracked';

function ignored(key: string): boolean {
  return key === IGNORED_LEAF || key.endsWith(`.${IGNORED_LEAF}`);
}

/** The state_dict tensors (parameters and BatchNorm running statistics) the spec's model has, in state_dict order. */
export function expectedModelTensors(spec: ModelSpec): TensorEntry[] {
  // Tensor shapes do not depend on the input size; the smallest walk that builds is enough.
  const resolution = spec.resolutions[0] ?? 224;
  return walkModel(spec, resolution, 1).tensors.filter((t) => !ignored(t.key));
}

/** Keys of the positional embeddings and how many leading non-grid rows (cls positions) each has. */
function posEmbedKeys(spec: ModelSpec): { stage: number; key: string; extra: number }[] {
  if (spec.family === 'ufo') return spec.stages[0] ? [{ stage: 0, key: 'pos_embed', extra: 0 }] : [];
  if (spec.family === 'vit') {
    const s = spec.stages[0];
    return s ? [{ stage: 0, key: 'pos_embed', extra: s.clsToken ? 1 : 0 }] : [];
  }
  return spec.stages.map((s, i) => ({ stage: i, key: `pos_embed${s.index}`, extra: s.clsToken ? 1 : 0 }));
}

/**
 * The spec with each stage's `posEmbedGrid` read from the checkpoint's pos_embed (the official
 * code takes g = int(√rows)), so a checkpoint trained at another resolution is resized from its
 * own grid. Stages whose pos_embed is absent or not a square grid keep the spec's value (the
 * check then reports the mismatch).
 */
export function withCheckpointPosEmbedGrids(
  spec: ModelSpec,
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
): ModelSpec {
  const stages = spec.stages.map((s) => ({ ...s }));
  for (const { stage, key, extra } of posEmbedKeys(spec)) {
    const shape = tensors.get(key)?.shape;
    if (!shape || shape.length !== 3 || shape[0] !== 1 || shape[2] !== stages[stage]!.dim) continue;
    const side = Math.round(Math.sqrt(shape[1]! - extra));
    if (side >= 1 && side * side === shape[1]! - extra) stages[stage]!.posEmbedGrid = side;
  }
  return { ...spec, stages };
}

function mismatchReport(check: CheckResult, notFloat: string[], expectedCount: number): string {
  const lines = isCleanCheck(check) ? [] : [formatCheckReport(check, expectedCount)];
  if (notFloat.length)
    lines.push(`Not a floating-point tensor (${notFloat.length}):`, ...notFloat.map((k) => `  ${k}`));
  return lines.join('\n');
}

/** The checkpoint does not fit the model; `check` has the details, `message` says them for people. */
export class WeightMismatchError extends Error {
  override readonly name = 'WeightMismatchError';
  constructor(
    readonly source: string,
    readonly check: CheckResult,
    /** Expected keys whose checkpoint tensor is not floating point. */
    readonly notFloat: string[],
    expectedCount: number,
  ) {
    super(`${source} does not fit the model:\n${mismatchReport(check, notFloat, expectedCount)}`);
  }
}

const FLOAT_DTYPES = new Set(['float32', 'float64', 'float16', 'bfloat16']);

/** Elements start … end−1 of a tensor's data, as a view where the data is a typed array. */
function sliceData(data: ArrayLike<number>, start: number, end: number): ArrayLike<number> {
  if (ArrayBuffer.isView(data)) return (data as unknown as Float32Array).subarray(start, end);
  return Array.prototype.slice.call(data, start, end) as number[];
}

/**
 * A timm VisionTransformer checkpoint in this engine's key names. timm's `Attention` has one
 * `qkv` Linear(D, 3D) whose rows are Q, K, V in that order (each head-major); the engine's
 * attentions that share its projections (softmax, Performer, Linformer) read `q` Linear(D, D) and
 * `kv` Linear(D, 2D) (K rows then V rows, PVT's layout, docs/MATHS.md §2.4). So `qkv` rows 0…D−1
 * are `q` and rows D…3D−1 are `kv`, exactly; a weight split by rows, nothing recomputed. Other keys
 * (`patch_embed.proj`, `cls_token`, `pos_embed`, `norm`, `head`, `blocks.{i}.norm1` …) are timm's
 * names already. Tensors of other families, or a checkpoint already split, pass through.
 */
export function engineCheckpointKeys(
  spec: ModelSpec,
  tensors: ReadonlyMap<string, CheckpointTensor>,
): ReadonlyMap<string, CheckpointTensor> {
  if (spec.family !== 'vit') return tensors;
  const D = spec.stages[0]?.dim ?? 0;
  let out: Map<string, CheckpointTensor> | null = null;
  for (const [key, t] of tensors) {
    const m = /^(blocks\.\d+\.attn)\.qkv\.(weight|bias)$/.exec(key);
    if (!m || t.shape[0] !== 3 * D || t.data instanceof BigInt64Array) continue;
    out ??= new Map(tensors);
    const [prefix, leaf] = [m[1]!, m[2]!];
    const rowSize = leaf === 'weight' ? t.shape[1]! : 1;
    const rest = t.shape.slice(1);
    out.delete(key);
    out.set(`${prefix}.q.${leaf}`, { ...t, shape: [D, ...rest], data: sliceData(t.data, 0, D * rowSize) });
    out.set(`${prefix}.kv.${leaf}`, {
      ...t,
      shape: [2 * D, ...rest],
      data: sliceData(t.data, D * rowSize, 3 * D * rowSize),
    });
  }
  return out ?? tensors;
}

/**
 * A WeightSource serving `graph`'s weight nodes from a checkpoint. Throws WeightMismatchError
 * when the checkpoint misses expected tensors, has tensors the model lacks, or has a different
 * shape for one (num_batches_tracked is ignored). Throws a plain Error if the graph itself reads
 * a key the profile walk does not list: that is an engine bug, not a checkpoint problem.
 */
export function bindCheckpoint(
  graph: Graph,
  spec: ModelSpec,
  tensors: ReadonlyMap<string, CheckpointTensor>,
  source = 'checkpoint',
): WeightSource {
  tensors = engineCheckpointKeys(spec, tensors);
  const expected = expectedModelTensors(spec);
  const relevant = new Map([...tensors].filter(([key]) => !ignored(key)));
  const check = checkAgainst(relevant, expected);
  const notFloat = expected
    .filter((e) => {
      const dtype = relevant.get(e.key)?.dtype;
      return dtype !== undefined && !FLOAT_DTYPES.has(dtype);
    })
    .map((e) => e.key);
  if (!isCleanCheck(check) || notFloat.length) throw new WeightMismatchError(source, check, notFloat, expected.length);

  const shapes = new Map(expected.map((e) => [e.key, e.shape]));
  for (const { key, tensor } of graph.weights) {
    const want = shapes.get(key);
    if (!want || want.join() !== tensor.shape.join()) {
      throw new Error(
        `model graph reads weight "${key}" [${tensor.shape}], which the profile walk lists as ${want ? `[${want}]` : 'absent'}`,
      );
    }
  }
  return {
    get: (key) => {
      const t = relevant.get(key);
      return t && !(t.data instanceof BigInt64Array) ? { shape: t.shape, data: t.data } : undefined;
    },
  };
}
