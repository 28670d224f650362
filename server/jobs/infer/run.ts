/**
 * One inference job: checkpoint (or random weights) + images or a raw tensor → logits and
 * top-5, on any runtime the harness knows. The model graph is the engine's one definition
 * (engine/model.ts); the checkpoint is checked key by key before anything runs.
 */
import fs from 'node:fs';
import type { AttentionMap, InferItem, InferReport } from '../../../protocol/infer';
import type { RuntimeId } from '../../../protocol/results';
import type { DeviceReport } from '../../../protocol/devices';
import { openRunner } from '../../runtimes/open-runner';
import { defaultRuntimes } from '../../runtimes/ranking';
import { graphOptionsFor } from '../../runtimes/runner';
import { Graph } from '../../core/engine/graph';
import { MODEL_INPUT, modelGraph, type ProbedLayer } from '../../core/engine/model';
import { convOut } from '../../core/models/build';
import { randomWeights } from '../../core/engine/weights';
import type { WeightSource } from '../../core/engine/lowerings/reference';
import type { ModelSpec } from '../../core/models/spec';
import { numel } from '../../core/shape';
import { loadCheckpoint, type LoadedCheckpoint } from '../../inputs/checkpoint/load';
import { loadImageTensor } from '../../inputs/image';
import { classLabel, topK } from '../../inputs/imagenet';
import { bindCheckpoint, withCheckpointPosEmbedGrids } from './model-weights';
import { inputPreviewPng, overlayPng } from './preview';

export interface InferJob {
  model: ModelSpec;
  config: string | null;
  /** .pth or .safetensors; null runs random weights (for timing, not predictions). */
  checkpoint: string | null;
  images?: string[];
  /** A raw float32 little-endian NCHW file with its shape. */
  tensor?: { file: string; shape: [number, number, number, number] };
  /** Square input size for images; default the config's first img_size. */
  resolution?: number;
  /** 'eval': timm's resize + centre crop; 'none': images already at the input size. */
  resize?: 'eval' | 'none';
  runtime?: RuntimeId;
  seed?: number;
  /**
   * Attention maps of each stage's last block: for the token under `point` (fractions of the
   * input's width and height) in every stage, or by default the grid centre in stages without a
   * cls token and the cls token where there is one. Absent: no maps.
   */
  maps?: { point: { x: number; y: number } | null };
}

export class InferInputError extends Error {}

/** The spec with num_classes taken from the checkpoint's head (a fine-tuned head decides it). */
export function withCheckpointHead(
  spec: ModelSpec,
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
): ModelSpec {
  const head = tensors.get('head.weight')?.shape;
  return head && head.length === 2 && head[0]! > 0 ? { ...spec, numClasses: head[0]! } : spec;
}

function readTensorFile(file: string, shape: readonly number[]): Float32Array {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new InferInputError(
      `${file}: cannot read the input tensor: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  const expected = numel(shape) * 4;
  if (bytes.length !== expected)
    throw new InferInputError(
      `${file}: ${bytes.length} bytes, but shape [${shape.join(', ')}] of float32 needs ${expected}`,
    );
  const out = new Float32Array(numel(shape));
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

/** Token grid (rows, cols) of each stage for an H×W input. */
function stageGridsOf(spec: ModelSpec, height: number, width: number): { h: number; w: number }[] {
  let [h, w] = [height, width];
  return spec.stages.map((s) => {
    for (const c of s.stem) [h, w] = [convOut(h, c), convOut(w, c)];
    return { h, w };
  });
}

/** One probe per stage (its last block): the token under the point, or the centre / the cls token. */
export function mapProbes(
  spec: ModelSpec,
  height: number,
  width: number,
  point: { x: number; y: number } | null,
): { stage: number; block: number; query: number }[] {
  const grids = stageGridsOf(spec, height, width);
  return spec.stages.map((s, i) => {
    const { h, w } = grids[i]!;
    const cls = s.clsToken ? 1 : 0;
    if (!point)
      return { stage: s.index, block: s.depth - 1, query: cls ? 0 : Math.floor(h / 2) * w + Math.floor(w / 2) };
    const row = Math.min(h - 1, Math.max(0, Math.floor(point.y * h)));
    const col = Math.min(w - 1, Math.max(0, Math.floor(point.x * w)));
    return { stage: s.index, block: s.depth - 1, query: cls + row * w + col };
  });
}

/** A probed layer's [B, heads, keys] output for batch item `item`, as the protocol's AttentionMap. */
function attentionMapOf(
  layer: ProbedLayer,
  spec: ModelSpec,
  grid: { h: number; w: number },
  data: Float32Array | Float64Array,
  item: number,
): AttentionMap {
  const [, heads, keys] = layer.probe.map!.shape as [number, number, number];
  const k = layer.probe.keys!;
  const stage = spec.stages.find((s) => s.index === layer.stage)!;
  const rows = Array.from({ length: heads }, (_, h) =>
    Array.from(data.subarray((item * heads + h) * keys, (item * heads + h + 1) * keys)),
  );
  const skip = k.cls ? 1 : 0;
  const mean = Array.from({ length: keys - skip }, (_, j) => rows.reduce((s, r) => s + r[j + skip]!, 0) / heads);
  const q = layer.probe.query - (stage.clsToken ? 1 : 0);
  return {
    stage: layer.stage,
    block: layer.block,
    attention: stage.attention,
    grid,
    keyGrid: { h: k.h, w: k.w },
    query: q < 0 ? 'cls' : { row: Math.floor(q / grid.w), col: q % grid.w },
    clsWeight: k.cls ? { heads: rows.map((r) => r[0]!), mean: rows.reduce((s, r) => s + r[0]!, 0) / heads } : null,
    heads: rows.map((r) => r.slice(skip)),
    mean,
    meaning: layer.probe.meaning ?? 'attention weights',
  };
}

/** What the input path of a model run needs: the model, the checkpoint, and images or a raw tensor. */
export type ModelInputJob = Pick<InferJob, 'model' | 'checkpoint' | 'images' | 'tensor' | 'resolution' | 'resize'>;

/** A job's checkpoint and inputs, read and checked: the batch the model runs on. */
export interface ModelInputs {
  /** The job's spec with num_classes and pos_embed grids taken from the checkpoint. */
  spec: ModelSpec;
  checkpoint: LoadedCheckpoint | null;
  /** [batch, inChannels, height, width], normalised. */
  input: Float32Array;
  batch: number;
  height: number;
  width: number;
  items: Pick<InferItem, 'name' | 'kind' | 'original'>[];
  /** How the inputs became the tensor, in words. */
  transform: string;
  timingMs: { checkpoint: number; preprocess: number };
}

/**
 * Reads the checkpoint (pickles parsed with an allow-list, never executed) and the images (timm's
 * eval transform, or none) or the raw tensor into one batch: the input path every model run shares
 * (inference, gradients). Bad files throw FileError / InferInputError naming the file.
 */
export async function loadModelInputs(job: ModelInputJob): Promise<ModelInputs> {
  let spec = job.model;
  const t0 = performance.now();
  const checkpoint = job.checkpoint ? loadCheckpoint(job.checkpoint) : null;
  if (checkpoint) spec = withCheckpointPosEmbedGrids(withCheckpointHead(spec, checkpoint.tensors), checkpoint.tensors);
  const tCheckpoint = performance.now() - t0;

  // Inputs: all images, or the tensor file, as one batch.
  const t1 = performance.now();
  const resolution = job.resolution ?? spec.resolutions[0] ?? 224;
  let height: number;
  let width: number;
  let batch: number;
  let input: Float32Array;
  const items: Pick<InferItem, 'name' | 'kind' | 'original'>[] = [];
  let transform: string;
  if (job.tensor) {
    const [b, c, h, w] = job.tensor.shape;
    if (c !== spec.inChannels)
      throw new InferInputError(`--shape ${job.tensor.shape.join(',')}: the model takes ${spec.inChannels} channels`);
    input = readTensorFile(job.tensor.file, job.tensor.shape);
    [batch, height, width] = [b, h, w];
    for (let i = 0; i < b; i++)
      items.push({ name: b === 1 ? job.tensor.file : `${job.tensor.file}[${i}]`, kind: 'tensor', original: null });
    transform = 'none (raw tensor given)';
  } else if (job.images?.length) {
    const resize = job.resize ?? 'eval';
    const tensors = [];
    for (const file of job.images) tensors.push(await loadImageTensor(file, { size: resolution, resize }));
    [batch, height, width] = [tensors.length, resolution, resolution];
    input = new Float32Array(batch * 3 * height * width);
    tensors.forEach((t, i) => {
      input.set(t.data, i * 3 * height * width);
      items.push({ name: job.images![i]!, kind: 'image', original: { width: t.image.width, height: t.image.height } });
    });
    transform =
      resize === 'eval'
        ? `timm eval: resize shorter side to ${Math.floor(resolution / 0.9)} (bicubic, Pillow-exact), centre crop ${resolution}, ImageNet mean/std`
        : 'none: decoded pixels / 255, ImageNet mean/std';
  } else {
    throw new InferInputError('nothing to run: give images or an input tensor');
  }
  const tPreprocess = performance.now() - t1;
  return {
    spec,
    checkpoint,
    input,
    batch,
    height,
    width,
    items,
    transform,
    timingMs: { checkpoint: tCheckpoint, preprocess: tPreprocess },
  };
}

/**
 * The weights of a graph built for `spec`: the checkpoint's, bound key by key (WeightMismatchError
 * when it does not fit), or seeded random ones with a note saying the predictions mean nothing.
 */
export function modelWeights(
  g: Graph,
  spec: ModelSpec,
  checkpoint: { loaded: LoadedCheckpoint; file: string } | null,
  seed: number,
  notes: string[],
): WeightSource {
  if (checkpoint) return bindCheckpoint(g, spec, checkpoint.loaded.tensors, checkpoint.file);
  notes.push('Random weights (official-style init): the predictions mean nothing; give --checkpoint for real ones.');
  return randomWeights(g, seed);
}

/** The report's description of the checkpoint a run used (null: random weights). */
export function checkpointSummary(
  checkpoint: LoadedCheckpoint | null,
  file: string | null,
): { file: string; source: string; tensors: number; elements: number } | null {
  return checkpoint && file
    ? {
        file,
        source: checkpoint.source,
        tensors: checkpoint.tensors.size,
        elements: [...checkpoint.tensors.values()].reduce((s, t) => s + numel(t.shape), 0),
      }
    : null;
}

/**
 * Runs the model on the job's inputs. `probeDevices` is called only once the checkpoint and the
 * inputs have been read and checked: a bad file is refused before any runtime (Dawn, a GPU driver,
 * Python) starts.
 */
export async function runInference(job: InferJob, probeDevices: () => Promise<DeviceReport>): Promise<InferReport> {
  const notes: string[] = [];
  const { spec, checkpoint, input, batch, height, width, items, transform, timingMs } = await loadModelInputs(job);

  const report = await probeDevices();
  const runtime = job.runtime ?? defaultRuntimes(report).find((r) => r !== 'reference') ?? 'ort-cpu';
  const runner = await openRunner(runtime, report);
  try {
    const t2 = performance.now();
    const g = new Graph();
    // Built for the runtime it runs on: score tiles under a WebGPU buffer limit, UFO token tiles on ORT CPU.
    const m = modelGraph(g, spec, {
      height,
      width,
      batch,
      ...graphOptionsFor(runner.description),
      ...(job.maps ? { probes: mapProbes(spec, height, width, job.maps.point) } : {}),
    });
    // Attentions that cannot say what they attend to yet are left out of the maps.
    const probed = m.probed.filter((p) => p.probe.map);
    const weights = modelWeights(
      g,
      spec,
      checkpoint && job.checkpoint ? { loaded: checkpoint, file: job.checkpoint } : null,
      job.seed ?? 0,
      notes,
    );
    const tBuild = performance.now() - t2;

    const t3 = performance.now();
    const prepared = await runner.prepare(g, [m.logits, ...probed.map((p) => p.probe.map!)], weights);
    const tSession = performance.now() - t3;
    const t4 = performance.now();
    const [logits, ...mapOutputs] = await prepared.run({ [MODEL_INPUT]: input });
    const tForward = performance.now() - t4;
    await prepared.release();
    const classes = spec.numClasses;
    const labels = Array.from({ length: classes }, (_, i) => classLabel(i, classes));
    if (runner.description.software)
      notes.push(`${runner.description.device}: a software adapter; the timing is not GPU performance.`);
    return {
      model: spec.name,
      config: job.config,
      checkpoint: checkpointSummary(checkpoint, job.checkpoint),
      weights: checkpoint ? `checkpoint ${job.checkpoint} (${checkpoint.source})` : `random (seed ${job.seed ?? 0})`,
      runtime: runner.description,
      input: { batch, height, width, transform },
      numClasses: classes,
      items: items.map((it, i) => {
        const row = Array.from(logits!.data.subarray(i * classes, (i + 1) * classes));
        const maps = probed.map((p, j) => attentionMapOf(p, spec, m.grids[p.stage - 1]!, mapOutputs[j]!.data, i));
        const image = it.kind === 'image';
        return {
          ...it,
          inputImage: image ? inputPreviewPng(input, i, height, width) : null,
          overlayImage: image && maps[0] ? overlayPng(input, i, height, width, maps[0]) : null,
          logits: row,
          top5: topK(row, Math.min(5, classes), labels),
          maps,
        };
      }),
      timingMs: {
        ...timingMs,
        build: tBuild,
        session: tSession,
        forward: tForward,
      },
      notes,
    };
  } finally {
    await runner.close();
  }
}
