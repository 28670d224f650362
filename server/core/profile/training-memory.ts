/**
 * Training memory in the profile: an estimate, at a batch and resolution, of what one AdamW step of
 * a config's model keeps in GPU memory, read off the training graph (engine/training.ts: forward,
 * mean cross-entropy, one gradient per parameter) by engine/training-memory.ts:
 *
 *   weights      parameters × 4 B (float32; under mixed precision the float32 master copy)
 *   gradients    parameters × 4 B (float32)
 *   AdamW state  parameters × 8 B (exp_avg and exp_avg_sq, float32)
 *   buffers      BatchNorm running statistics (no gradient, no optimizer state)
 *   saved activations   the forward tensors the backward reads (what autograd would save)
 *   peak during the step   the liveness peak of forward + backward: saved activations, the
 *                gradients made so far and the transients of the node running
 *
 * The total a GPU must hold is weights + buffers + AdamW state (+ the half-precision weight copies
 * under mixed precision) + the peak during the step (which already holds the gradients). It is an
 * analytic estimate of this graph — no allocator, no framework workspace, no CUDA context — and is
 * labelled so wherever it is shown.
 *
 * The batch: every graph of batch ≥ 2 has the same nodes (batch 1 skips a broadcast), and each
 * tensor's size is fixed or proportional to the batch, so the live bytes after each node are
 * `a + b·batch`, found exactly from graphs at batches 2 and 3. The peak is the largest of those
 * lines: from some batch on one line (the steepest) is the peak, `fixed + perSample·batch`; below
 * it the peak is elsewhere and larger than that line. The largest batch that fits is the largest
 * batch at which every line fits, so it is exact for this graph at any batch ≥ 2 — and equals
 * floor((memory − fixed) / perSample) whenever that is past the crossover.
 */
import { convOut } from '../models/build';
import type { ModelSpec } from '../models/spec';
import { Graph } from '../engine/graph';
import { trainingGraph } from '../engine/training';
import { stepMemory, trainingStep, type StepMemory } from '../engine/training-memory';
import { profileModel } from './profile';

export type TrainingPrecision = 'fp32' | 'mixed';

export const TRAINING_PRECISIONS: readonly TrainingPrecision[] = ['fp32', 'mixed'];

/** What each precision assumes, as printed. */
export const PRECISION_LABELS: Record<TrainingPrecision, string> = {
  fp32: 'fp32 (weights, gradients, optimizer state and activations in float32)',
  mixed:
    'mixed precision (bf16/fp16 activations; float32 master weights, gradients and AdamW state, plus a half-precision copy of the weights)',
};

/** The short form for one-line summaries: "fp32 + AdamW". */
export const PRECISION_SHORT: Record<TrainingPrecision, string> = { fp32: 'fp32', mixed: 'mixed precision' };

const ACTIVATION_BYTES: Record<TrainingPrecision, number> = { fp32: 4, mixed: 2 };

/** Bytes that are `fixedBytes + perSampleBytes × batch`. */
export interface Linear {
  fixedBytes: number;
  perSampleBytes: number;
}

export interface TrainingMemoryRow extends Linear {
  /** Layer (`block1.0`, `patch_embed2`, `pos_embed4`, `norm`, `head`, `loss`) or stage (`stage1` … `head`). */
  name: string;
  stage: string;
  params: number;
  /** Weights + gradients + AdamW state (+ half-precision copy) of its parameters. */
  parameterStateBytes: number;
  /** Its saved activations at the estimate's batch (= fixed + perSample × batch). */
  savedBytes: number;
}

export interface TrainingMemoryEstimate {
  /** An analytic estimate of the training graph, not a measurement. */
  kind: 'estimate';
  model: string;
  resolution: number;
  batch: number;
  precision: TrainingPrecision;
  optimizer: 'AdamW';
  params: number;
  weightBytes: number;
  /** Mixed precision: the half-precision copy of the weights autocast makes (0 in fp32). */
  halfWeightBytes: number;
  bufferBytes: number;
  gradientBytes: number;
  optimizerBytes: number;
  /** Forward tensors the backward reads, at `batch`, and as fixed + per sample. */
  savedActivations: Linear & { bytes: number };
  /** Liveness peak of the step (saved activations + gradients made so far + transients). */
  stepPeak: Linear & {
    bytes: number;
    /** fixed + perSample × batch is the peak from this batch on (below it the peak is larger). */
    linearFromBatch: number;
    /** Where the peak is at `batch`. */
    at: StepMemory['peakAt'];
  };
  /** Everything a GPU holds at the peak: weights + half copy + buffers + AdamW state + the step's peak. */
  total: Linear & { bytes: number; linearFromBatch: number };
  stages: TrainingMemoryRow[];
  layers: TrainingMemoryRow[];
  note: string;
}

export interface TrainingMemoryOptions {
  /** Square input side; default the spec's first resolution. */
  resolution?: number;
  /** Default 1. */
  batch?: number;
  /** Default fp32. */
  precision?: TrainingPrecision;
}

export const TRAINING_MEMORY_NOTE =
  'Analytic estimate of one AdamW training step from the training graph (forward, cross-entropy, backward): weights, gradients and AdamW state from the exact parameter count, saved activations and the liveness peak from the graph. Views (reshapes, weight transposes) are free; no allocator overhead, framework workspace or CUDA context is included. Not a measurement.';

/** The stage a layer belongs to: `stage{k}` for a pyramid stage's stem, position embedding and blocks; `stage1` for the one stage of an isotropic model; else `head`. */
export function stageOfLayer(layer: string): string {
  const k = /^(?:patch_embed|pos_embed|block)(\d+)(?:\.|$)/.exec(layer);
  if (k) return `stage${k[1]}`;
  if (/^(patch_embed|pos_embed|blocks|cls_attn_blocks)(\.|$)/.test(layer)) return 'stage1';
  return 'head';
}

function buildStep(spec: ModelSpec, resolution: number, batch: number, precision: TrainingPrecision): StepMemory {
  const g = new Graph();
  const t = trainingGraph(g, spec, {
    labels: new Array<number>(batch).fill(0),
    resolution,
    batchNormMode: 'train',
  });
  return stepMemory(trainingStep(g, t), { activationBytes: ACTIVATION_BYTES[precision], gradientBytes: 4 });
}

/** The bytes that do not depend on the batch or the graph: weights (+ half copy), buffers, gradients, AdamW. */
function parameterState(params: number, bufferBytes: number, precision: TrainingPrecision) {
  const weightBytes = 4 * params;
  return {
    weightBytes,
    halfWeightBytes: precision === 'mixed' ? 2 * params : 0,
    bufferBytes,
    gradientBytes: 4 * params,
    optimizerBytes: 8 * params,
  };
}

/** Bytes resident outside the step's liveness: weights, the half copy, buffers and AdamW state (gradients are in the step). */
function residentBytes(s: ReturnType<typeof parameterState>): number {
  return s.weightBytes + s.halfWeightBytes + s.bufferBytes + s.optimizerBytes;
}

/**
 * The step at batches 2 and 3 as lines: per executed node, live bytes a + b·batch (exact for every
 * batch ≥ 2, where the graph's nodes are the same), and per layer, saved bytes likewise.
 */
export interface TrainingFit {
  spec: ModelSpec;
  resolution: number;
  precision: TrainingPrecision;
  params: number;
  /** Weights + half copy + buffers + AdamW state. */
  residentBytes: number;
  state: ReturnType<typeof parameterState>;
  /** Live bytes after node i at batch B: a[i] + b[i]·B (B ≥ 2). */
  a: Float64Array;
  b: Float64Array;
  /** The steepest line (the peak for large batches) and the batch from which it is the peak. */
  asymptote: Linear & { index: number; fromBatch: number };
  saved: Linear;
  layers: (Linear & { layer: string; parameters: number })[];
  at: StepMemory['at'];
}

const FIT_BATCHES = [2, 3] as const;

export function trainingFit(spec: ModelSpec, o: Omit<TrainingMemoryOptions, 'batch'> = {}): TrainingFit {
  const resolution = o.resolution ?? spec.resolutions[0] ?? 224;
  const precision = o.precision ?? 'fp32';
  const [b1, b2] = FIT_BATCHES;
  const m1 = buildStep(spec, resolution, b1, precision);
  const m2 = buildStep(spec, resolution, b2, precision);
  if (m1.liveAfter.length !== m2.liveAfter.length)
    throw new Error(`training memory: the graphs at batch ${b1} and ${b2} differ; the batch fit does not apply`);
  const n = m1.liveAfter.length;
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    b[i] = (m2.liveAfter[i]! - m1.liveAfter[i]!) / (b2 - b1);
    a[i] = m1.liveAfter[i]! - b[i]! * b1;
    if (b[i]! > b[k]! || (b[i] === b[k] && a[i]! > a[k]!)) k = i;
  }
  let from: number = b1;
  for (let i = 0; i < n; i++) {
    if (a[i]! > a[k]! && b[i]! < b[k]!) from = Math.max(from, Math.ceil((a[i]! - a[k]!) / (b[k]! - b[i]!)));
  }
  const line = (x1: number, x2: number): Linear => {
    const perSampleBytes = (x2 - x1) / (b2 - b1);
    return { fixedBytes: x1 - perSampleBytes * b1, perSampleBytes };
  };
  const bufferBytes = profileModel(spec, resolution, 1).memory.bufferBytes;
  const state = parameterState(m1.parameters, bufferBytes, precision);
  return {
    spec,
    resolution,
    precision,
    params: m1.parameters,
    residentBytes: residentBytes(state),
    state,
    a,
    b,
    asymptote: { fixedBytes: a[k]!, perSampleBytes: b[k]!, index: k, fromBatch: from },
    saved: line(m1.savedBytes, m2.savedBytes),
    layers: m1.layers.map((l, i) => ({
      layer: l.layer,
      parameters: l.parameters,
      ...line(l.savedBytes, m2.layers[i]!.savedBytes),
    })),
    at: m2.at,
  };
}

/** The training memory estimate at one batch and resolution (batch 1 is built on its own graph). */
export function trainingMemory(spec: ModelSpec, o: TrainingMemoryOptions = {}): TrainingMemoryEstimate {
  return trainingMemoryAt(trainingFit(spec, o), o.batch ?? 1);
}

/** The estimate at `batch` from a fit (at its resolution and precision). */
export function trainingMemoryAt(fit: TrainingFit, batch: number): TrainingMemoryEstimate {
  const { spec, resolution, precision } = fit;
  const step = batch >= FIT_BATCHES[0] ? null : buildStep(spec, resolution, batch, precision);
  let peakBytes: number;
  let at: StepMemory['peakAt'];
  if (step) {
    peakBytes = step.peakBytes;
    at = step.peakAt;
  } else {
    let best = 0;
    for (let i = 0; i < fit.a.length; i++)
      if (fit.a[i]! + fit.b[i]! * batch > fit.a[best]! + fit.b[best]! * batch) best = i;
    peakBytes = fit.a[best]! + fit.b[best]! * batch;
    at = fit.at(best);
  }
  const stepLayers = new Map(step?.layers.map((l) => [l.layer, l.savedBytes]));
  const savedAt = (l: Linear, name: string | null): number =>
    step && name !== null ? (stepLayers.get(name) ?? 0) : l.fixedBytes + l.perSampleBytes * batch;
  const perParam = 16 + (precision === 'mixed' ? 2 : 0);
  const layers: TrainingMemoryRow[] = fit.layers.map((l) => ({
    name: l.layer,
    stage: stageOfLayer(l.layer),
    params: l.parameters,
    parameterStateBytes: perParam * l.parameters,
    fixedBytes: l.fixedBytes,
    perSampleBytes: l.perSampleBytes,
    savedBytes: savedAt(l, l.layer),
  }));
  const stages = new Map<string, TrainingMemoryRow>();
  for (const l of layers) {
    const s = stages.get(l.stage);
    if (!s) stages.set(l.stage, { ...l, name: l.stage });
    else {
      s.params += l.params;
      s.parameterStateBytes += l.parameterStateBytes;
      s.fixedBytes += l.fixedBytes;
      s.perSampleBytes += l.perSampleBytes;
      s.savedBytes += l.savedBytes;
    }
  }
  const { asymptote } = fit;
  return {
    kind: 'estimate',
    model: spec.name,
    resolution,
    batch,
    precision,
    optimizer: 'AdamW',
    params: fit.params,
    ...fit.state,
    savedActivations: { ...fit.saved, bytes: step ? step.savedBytes : savedAt(fit.saved, null) },
    stepPeak: {
      fixedBytes: asymptote.fixedBytes,
      perSampleBytes: asymptote.perSampleBytes,
      linearFromBatch: asymptote.fromBatch,
      bytes: peakBytes,
      at,
    },
    total: {
      fixedBytes: fit.residentBytes + asymptote.fixedBytes,
      perSampleBytes: asymptote.perSampleBytes,
      linearFromBatch: asymptote.fromBatch,
      bytes: fit.residentBytes + peakBytes,
    },
    stages: [...stages.values()],
    layers,
    note: TRAINING_MEMORY_NOTE,
  };
}

/** floor(x / d) for d > 0, corrected for the division's rounding. */
function floorDiv(x: number, d: number): number {
  let q = Math.floor(x / d);
  while ((q + 1) * d <= x) q++;
  while (q * d > x) q--;
  return q;
}

export interface LargestBatch {
  kind: 'estimate';
  /** 0 when not even batch 1 fits. */
  batch: number;
  memoryBytes: number;
  resolution: number;
  precision: TrainingPrecision;
  /** The estimated total at `batch` (null when 0). */
  totalBytes: number | null;
}

/** The largest batch whose training step fits in `memoryBytes` at the fit's resolution (estimate). */
export function largestBatch(fit: TrainingFit, memoryBytes: number): LargestBatch {
  const room = memoryBytes - fit.residentBytes;
  let best = Infinity;
  for (let i = 0; i < fit.a.length; i++) {
    const a = fit.a[i]!;
    const b = fit.b[i]!;
    if (b > 0) best = Math.min(best, floorDiv(room - a, b));
    else if (a > room) best = -1;
  }
  const base = { kind: 'estimate' as const, memoryBytes, resolution: fit.resolution, precision: fit.precision };
  if (best >= FIT_BATCHES[0] && Number.isFinite(best)) {
    let peak = 0;
    for (let i = 0; i < fit.a.length; i++) peak = Math.max(peak, fit.a[i]! + fit.b[i]! * best);
    return { ...base, batch: best, totalBytes: fit.residentBytes + peak };
  }
  // Below the fitted range: batch 1 has its own graph.
  const one = buildStep(fit.spec, fit.resolution, 1, fit.precision);
  const total = fit.residentBytes + one.peakBytes;
  return total <= memoryBytes ? { ...base, batch: 1, totalBytes: total } : { ...base, batch: 0, totalBytes: null };
}

/** The product of every stem stride: the input sizes the model divides evenly are its multiples. */
export function totalStride(spec: ModelSpec): number {
  return spec.stages.reduce((s, st) => s * st.stem.reduce((p, c) => p * c.stride, 1), 1);
}

export interface LargestResolution {
  kind: 'estimate';
  /** null when no multiple of the stride fits (or builds). */
  resolution: number | null;
  batch: number;
  memoryBytes: number;
  precision: TrainingPrecision;
  /** The searched resolutions are multiples of this (the stems' total stride). */
  stride: number;
  totalBytes: number | null;
  /** Every resolution tried, with its estimated total or why the model does not build there. */
  probes: { resolution: number; totalBytes: number | null; error?: string }[];
}

/** Resolutions the search may try (the CLI's --resolution range). */
export const MAX_TRAINING_RESOLUTION = 8192;

/**
 * The largest square input, a multiple of the stems' total stride, whose training step at `batch`
 * fits in `memoryBytes` (estimate). Memory grows with the input, so the search grows from the
 * spec's first resolution until a probe does not fit, then narrows the bracket; each probe builds
 * the training graph at `batch` (no fit: exact for this graph). A resolution the model cannot be built at (too few
 * pixels), or at which it has other parameters (Linformer's E, F are tied to the sequence length),
 * counts as not fitting.
 */
export function largestResolution(
  spec: ModelSpec,
  memoryBytes: number,
  o: { batch?: number; precision?: TrainingPrecision } = {},
): LargestResolution {
  const batch = o.batch ?? 1;
  const precision = o.precision ?? 'fp32';
  const stride = totalStride(spec);
  const probes: LargestResolution['probes'] = [];
  const home = spec.resolutions[0] ?? 224;
  const profile = profileModel(spec, home, 1);
  const bufferBytes = profile.memory.bufferBytes;
  const params = () => profile.params;
  const totals = new Map<number, number | null>();
  const total = (k: number): number | null => {
    if (totals.has(k)) return totals.get(k)!;
    const resolution = k * stride;
    let t: number | null = null;
    try {
      // Reject early: a stem that leaves no pixels is not a resolution of this model.
      for (const st of spec.stages)
        for (const c of st.stem) if (convOut(resolution, c) < 1) throw new Error('too small');
      const step = buildStep(spec, resolution, batch, precision);
      // A model whose parameters depend on the input (Linformer's E, F of n columns) is another model there.
      if (step.parameters !== params())
        throw new Error(
          `${step.parameters} parameters at ${resolution}, ${params()} at ${home}: the weights depend on the input size`,
        );
      t = residentBytes(parameterState(step.parameters, bufferBytes, precision)) + step.peakBytes;
      probes.push({ resolution, totalBytes: t });
    } catch (e) {
      probes.push({ resolution, totalBytes: null, error: e instanceof Error ? e.message : String(e) });
    }
    totals.set(k, t);
    return t;
  };
  const fits = (k: number): boolean => {
    const t = total(k);
    return t !== null && t <= memoryBytes;
  };
  const kMax = Math.floor(MAX_TRAINING_RESOLUTION / stride);
  const resident = residentBytes(parameterState(params(), bufferBytes, precision));
  const room = memoryBytes - resident;
  /** The step's own bytes (activations, gradients) at a probe that built. */
  const act = (k: number): number => total(k)! - resident;
  const result = (k: number | null): LargestResolution => ({
    kind: 'estimate',
    resolution: k === null ? null : k * stride,
    batch,
    memoryBytes,
    precision,
    stride,
    totalBytes: k === null ? null : total(k),
    probes: [...probes].sort((x, y) => x.resolution - y.resolution),
  });
  // Invariant below: fits(lo); hi, once known, does not fit.
  let lo = Math.min(kMax, Math.max(1, Math.round((spec.resolutions[0] ?? 224) / stride)));
  let hi = 0;
  if (fits(lo)) {
    // Grow by what the room allows. Activations grow at least with the tokens (r²) and, with
    // softmax scores or SOFT's landmark matrices (m ∝ tokens), up to r⁴: far from the limit a step
    // assumes r⁴ and so does not overshoot (a graph at a large input takes seconds to build);
    // within 2× of it, r², to bracket the limit at once (overshooting by at most 2^¼).
    while (hi === 0) {
      if (lo === kMax) return result(lo);
      const ratio = room / act(lo);
      const next = Math.min(kMax, 4 * lo, Math.max(lo + 1, Math.floor(lo * ratio ** (ratio > 2 ? 1 / 4 : 1 / 2))));
      if (fits(next)) lo = next;
      else hi = next;
    }
  } else {
    // Halve until it fits.
    while (lo > 1 && !fits(Math.floor(lo / 2))) lo = Math.floor(lo / 2);
    if (lo === 1 && !fits(1)) return result(null);
    hi = lo;
    lo = Math.max(1, Math.floor(lo / 2));
  }
  // Narrow [lo, hi): a guess interpolated in log–log between the ends when both built, checked
  // with its neighbour so that a good guess closes the bracket in two probes; else bisection.
  while (hi - lo > 1) {
    const tHi = total(hi);
    let guess = (lo + hi) >> 1;
    if (tHi !== null && tHi - resident > act(lo)) {
      const p = Math.log((tHi - resident) / act(lo)) / Math.log(hi / lo);
      guess = Math.floor(lo * (room / act(lo)) ** (1 / p));
    }
    guess = Math.min(hi - 1, Math.max(lo + 1, guess));
    if (fits(guess)) {
      lo = guess;
      if (lo + 1 < hi && !fits(lo + 1)) hi = lo + 1;
    } else {
      hi = guess;
      if (hi - 1 > lo && fits(hi - 1)) lo = hi - 1;
    }
  }
  return result(lo);
}

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  ki: 2 ** 10,
  mi: 2 ** 20,
  gi: 2 ** 30,
  ti: 2 ** 40,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * A memory size as people write it: `80GiB`, `80 GiB`, `24Gi`, `80GB` (decimal: 80·10⁹), `24G` (a
 * bare K/M/G/T is binary, as docker's --memory and nvidia-smi's MiB), `512MiB`, `1.5TiB`. Case does
 * not matter. Throws an Error saying what is accepted.
 */
export function parseMemorySize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$/.exec(text);
  const accepted = 'a number and a unit, e.g. 80GiB, 80GB, 24G, 512MiB (GB = 10⁹ bytes; GiB, Gi and G = 2³⁰)';
  if (!m) throw new Error(`"${text}" is not a memory size: give ${accepted}.`);
  const unit = m[2]!.toLowerCase();
  if (!unit) throw new Error(`"${text}" has no unit: give ${accepted}.`);
  const scale = UNITS[unit];
  if (scale === undefined) throw new Error(`"${text}": unknown unit "${m[2]}"; give ${accepted}.`);
  const bytes = Number(m[1]) * scale;
  if (!(bytes >= 1)) throw new Error(`"${text}" is not a positive memory size.`);
  return Math.round(bytes);
}
