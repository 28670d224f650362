/**
 * The benchmark harness: plans the cases a config implies (each stage's attention layer and
 * block, for the config's attention and the comparison attentions; an optional token or
 * resolution sweep; a fixed-landmark scaling sweep from ~1k to ~64k tokens), and measures
 * each on each runtime: warm-up, repetitions until the spread is stable (or the time budget
 * is spent), median/p10/p90, MACs of the executed graph and achieved GFLOP/s, the analytic
 * memory peak beside whatever the runtime measures, a check against the reference, and fitted
 * time/memory exponents. A case whose estimated memory exceeds the device is refused before
 * anything is allocated. With `train`, every case is a training step instead (training-step.ts):
 * forward, backward from the output with a fixed random cotangent, gradients with respect to the
 * input and every parameter, optionally an AdamW update, all in one graph measured the same way.
 */
import os from 'node:os';
import { formatBytes, formatMs, formatNumber, REPORT_BYTES, type BytesFormat } from '../../../protocol/format';
import type {
  BenchCase,
  BenchReport,
  BenchTraining,
  BenchTrainingSetup,
  DeviceLimits,
  MemoryFigure,
  RuntimeDescription,
  RuntimeId,
  ScalingFit,
} from '../../../protocol/results';
import { landmarkShape, stageGrids } from '../../core/models/build';
import { attentionSetting } from '../../core/models/comparison';
import {
  needsTokenGrid,
  poolsLandmarks,
  type AttentionKind,
  type ModelSpec,
  type NewtonBackward,
  type StageSpec,
} from '../../core/models/spec';
import { attentionLayer, attentionPrefix, block, type LayerContext } from '../../core/engine/blocks';
import { ReferenceRuntime, type RefArray, type WeightSource } from '../../core/engine/lowerings/reference';
import { graphCost, type GraphCost } from '../../core/engine/cost';
import { Graph, type Tensor } from '../../core/engine/graph';
import { normals, randomWeights, seededRandom } from '../../core/engine/weights';
import { ADAMW_DEFAULTS } from '../../core/engine/optimizer';
import type { DeviceReport, NvidiaGpu } from '../../../protocol/devices';
import { startGpuMemorySampler, type GpuMemoryPeak } from '../../runtimes/nvidia';
import { openRunner } from '../../runtimes/open-runner';
import { defaultRuntimes } from '../../runtimes/ranking';
import { DeviceLostError, graphOptionsFor, type Runner } from '../../runtimes/runner';
import { startHostLoadMeter } from './host-load';
import { measureDeviceLimits } from './roofline';
import { timeOnce } from './timing';
import { checkStability, fitPowerLaw, gflops, summarize } from './stats';
import { DEFAULT_COTANGENT_SEED, DEFAULT_OPTIMIZER_STEP, trainingStep, type OptimizerKind } from './training-step';

export type Level = 'attention' | 'block';

export interface BenchOptions {
  model: ModelSpec;
  config: string | null;
  runtimes?: RuntimeId[];
  /** Attentions to compare; default: the config's own (SOFT or SOFT-Norm), UFO and softmax. */
  attentions?: AttentionKind[];
  levels?: Level[];
  /** Resolutions whose every stage is benchmarked (default: the config's first). */
  resolutions?: number[];
  /** Optional sweep of token counts at stage 1's width (square grids). */
  tokens?: number[];
  /**
   * Optional sweep of explicit token grids (rows × columns) at stage 1's width, n = h·w exactly: for
   * token counts that are no square (the SOFT paper's n = 784·p on 28×28p grids, scripts/paper/fig1b.ts).
   */
  grids?: { h: number; w: number }[];
  /**
   * Time the token sweep's points as the scaling sweep's: for at least half the budget, and again
   * (up to 3 attempts, the quietest kept) while other processes are busy — for a sweep whose
   * figures are compared across sizes (scripts/paper/fig1b.ts).
   */
  retimeContended?: boolean;
  /** Fixed-landmark scaling sweep (default on). */
  scaling?: boolean;
  /** Measure each runtime's matmul throughput and read bandwidth after its cases, for the roofline (default on). */
  limits?: boolean;
  /** Token counts of the scaling sweep (grid sides multiples of 7 keep m = 49: 1225 … 63504). */
  scalingTokens?: number[];
  /** Stages to benchmark (1-based); default all. */
  stages?: number[];
  batch?: number;
  /** Time budget per case for the timed repetitions (ms). */
  budgetMs?: number;
  /** Compare each runtime's output with the TypeScript reference when a case is at most this many MACs. */
  referenceMacsLimit?: number;
  /**
   * Overrides every runtime's token tile (RuntimeDescription.tokenTileBytes); null runs untiled.
   * For comparing the tiled and untiled lowerings (scripts/perf/ufo-tiling.ts).
   */
  tokenTileBytes?: number | null;
  /** Started by the caller at process start (ms since epoch), for the overhead figure. */
  processStartedAt?: number;
  /** Every case as a training step (forward + backward, optionally + an optimizer update) rather than a forward pass. */
  train?: TrainBenchOptions;
  onProgress?: (message: string, done: number, total: number) => void;
  /** Each case as soon as it is measured, refused, skipped or failed (for live views). */
  onCase?: (c: BenchCase) => void;
  isCancelled?: () => boolean;
}

/**
 * Test hook, empty in production: the benchmark worker sets it under VITLENS_WORKER_FAULT
 * (worker.ts) to inject a fault at a precise point of a run. `afterTimedRun` is awaited after
 * each timed repetition, with the runtime and the repetition's number (1 for the first).
 */
export const benchFaultHooks: { afterTimedRun?: (runtime: RuntimeId, repetition: number) => void | Promise<void> } = {};

export interface TrainBenchOptions {
  /** An optimizer update after the backward pass (in the same graph); absent or null: gradients only. */
  optimizer?: OptimizerKind | null;
  /** Seed of the output cotangent (default 2). */
  seed?: number;
  /** How SOFT stages differentiate the Newton inverse; default: the config's (newton_backward, else the variant's code's). */
  newtonBackward?: NewtonBackward;
}

export class CancelledError extends Error {
  constructor() {
    super('benchmark cancelled');
  }
}

interface Workload {
  group: BenchCase['group'];
  stage: StageSpec;
  attention: AttentionKind;
  level: Level;
  resolution: number | null;
  /** Token grid rows × columns (equal but for the `grids` sweep). */
  grid: number;
  gridW: number;
  tokens: number;
  landmarks: number | null;
  /** SOFT landmark stride for this case (the scaling sweep changes it to keep m fixed). */
  ratio: number;
}

/**
 * 1225 … 63504 tokens, about ×2 apart: grid sides that are multiples of 7 keep m = 49. Seven
 * points rather than four, because on a CPU the per-token cost steps up where the activations
 * stop fitting the last-level cache (on the 32 MiB-L3 development box: between 19600 and
 * 38416 tokens), and with four points one point on either side of that step moved the fit.
 */
const DEFAULT_SCALING_TOKENS = [35, 49, 70, 98, 140, 196, 252].map((s) => s * s);
const MIN_REPS = 5;
const MAX_REPS = 200;
/**
 * Scaling points are timed for at least half the budget (small sizes otherwise meet the
 * stability rule after a few milliseconds, and a few milliseconds of another process's
 * activity then decide their median), and are re-timed when other processes were busy.
 */
const SCALING_MAX_REPS = 1000;
const SCALING_ATTEMPTS = 3;
/** Other processes' CPU use (cores) above which a scaling point's timing counts as contended. */
const CONTENDED_CORES = 0.25;
/** Beyond this predicted time per run, a larger size of the same sweep is skipped rather than run. */
const SWEEP_RUN_LIMIT_MS = 8000;

function comparisonAttentions(model: ModelSpec): AttentionKind[] {
  const own = model.stages.find((s) => s.attention === 'soft' || s.attention === 'soft_norm')?.attention ?? 'soft';
  return [...new Set<AttentionKind>([own, 'ufo', 'softmax'])];
}

/** The stage a case runs: its attention, and the landmark stride the case sets (the scaling sweep's). */
function caseStage(w: Pick<Workload, 'stage' | 'attention' | 'ratio'>): StageSpec {
  return { ...w.stage, attention: w.attention, srRatio: w.ratio };
}

/** Landmarks of a case's attention on its grid, or null for attentions without landmarks. */
function caseLandmarks(w: Pick<Workload, 'stage' | 'attention' | 'ratio' | 'grid' | 'gridW'>): number | null {
  if (!poolsLandmarks(w.attention)) return null;
  const { h, w: cols } = landmarkShape(caseStage(w), w.grid, w.gridW);
  return h * cols;
}

/** Why an attention cannot run on a stage, or null. */
function unsupported(w: Workload): string | null {
  const { stage, attention } = w;
  const pooled = poolsLandmarks(attention);
  if (needsTokenGrid(attention) && stage.clsToken) {
    return `${attention} needs a token grid without a cls token; stage ${stage.index} carries one`;
  }
  if (pooled && caseLandmarks(w)! < 1) {
    return `no landmark: a ${w.grid}×${w.gridW} grid is smaller than the ${w.ratio}×${w.ratio} landmark conv`;
  }
  return null;
}

function planWorkloads(o: BenchOptions): Workload[] {
  const { model } = o;
  const attentions = o.attentions ?? comparisonAttentions(model);
  const levels = o.levels ?? ['attention', 'block'];
  const stages = model.stages.filter((s) => !o.stages || o.stages.includes(s.index));
  const out: Workload[] = [];
  for (const resolution of o.resolutions ?? [model.resolutions[0] ?? 224]) {
    const grids = stageGrids(model, resolution);
    for (const stage of stages) {
      const grid = grids[stage.index - 1]!;
      for (const attention of attentions) {
        for (const level of levels) {
          const w = { stage, attention, ratio: stage.srRatio, grid, gridW: grid };
          out.push({
            ...w,
            group: 'config',
            level,
            resolution,
            tokens: grid * grid + (stage.clsToken ? 1 : 0),
            landmarks: caseLandmarks(w),
          });
        }
      }
    }
  }
  // The sweeps feed plain token sequences (no cls token) at stage 1's width.
  const first: StageSpec = { ...model.stages[0]!, clsToken: false };
  const sweepGrids = [
    ...(o.tokens ?? []).map((t) => Math.max(1, Math.round(Math.sqrt(t)))).map((side) => ({ h: side, w: side })),
    ...(o.grids ?? []),
  ];
  // The token sweep times the attention layer unless levels were asked for.
  for (const level of o.levels ?? ['attention']) {
    for (const { h, w: cols } of sweepGrids) {
      for (const attention of attentions) {
        const w = { stage: first, attention, ratio: first.srRatio, grid: h, gridW: cols };
        out.push({ ...w, group: 'sweep', level, resolution: null, tokens: h * cols, landmarks: caseLandmarks(w) });
      }
    }
  }
  if (o.scaling ?? true) {
    for (const attention of attentions) {
      for (const t of o.scalingTokens ?? DEFAULT_SCALING_TOKENS) {
        const grid = Math.round(Math.sqrt(t));
        // m = 49 fixed, as the 2021 code built it (quirk Q9): stride = grid/7.
        const ratio = Math.max(1, Math.floor(grid / 7));
        const w = { stage: first, attention, ratio, grid, gridW: grid };
        out.push({
          ...w,
          group: 'scaling',
          level: 'attention',
          resolution: null,
          tokens: grid * grid,
          landmarks: caseLandmarks(w),
        });
      }
    }
  }
  return out;
}

/** What a case runs: its graph, the outputs asked for (with names), the forward output, weights and inputs. */
export interface CaseGraph {
  graph: Graph;
  outputs: Tensor[];
  outputNames: string[];
  /** The layer's output: the forward pass is what it depends on. */
  forward: Tensor;
  weights: WeightSource;
  feeds(x: Float32Array): Record<string, Float32Array>;
  /** Training steps: what was differentiated. */
  parameters: { key: string; shape: number[] }[] | null;
  newtonBackward: NewtonBackward | null;
  optimizer: OptimizerKind | null;
}

function buildGraph(
  w: Workload,
  model: ModelSpec,
  batch: number,
  runtime: RuntimeDescription,
  train?: TrainBenchOptions,
): CaseGraph {
  const stage = caseStage(w);
  const g = new Graph();
  const newtonBackward = train?.newtonBackward ?? model.newton.backward;
  const c: LayerContext = {
    batch,
    gridH: w.grid,
    gridW: w.gridW,
    tokens: w.tokens,
    distance: 'expanded',
    ...graphOptionsFor(runtime),
    // A training step normalises with the batch's statistics, as model.train() does.
    ...(train ? { newtonBackward, batchNormMode: 'train' as const } : {}),
  };
  const x = g.input('x', [batch, w.tokens, stage.dim]);
  const output =
    w.level === 'block'
      ? block(g, x, stage, 0, model, c)
      : attentionLayer(g, x, attentionPrefix(stage, 0), stage, model, c);
  const weights = randomWeights(g, 0);
  const soft = stage.attention === 'soft' || stage.attention === 'soft_norm';
  if (!train)
    return {
      graph: g,
      outputs: [output],
      outputNames: ['out'],
      forward: output,
      weights,
      feeds: (input) => ({ [g.inputs[0]!.name]: input }),
      parameters: null,
      newtonBackward: null,
      optimizer: null,
    };
  const step = trainingStep(g, x, output, weights, {
    optimizer: train.optimizer ?? null,
    ...(train.seed !== undefined ? { seed: train.seed } : {}),
  });
  return {
    graph: g,
    outputs: step.outputs.map((o) => o.tensor),
    outputNames: step.outputs.map((o) => o.name),
    forward: output,
    weights: step.weights,
    feeds: step.feeds,
    parameters: step.parameters,
    newtonBackward: soft ? newtonBackward : null,
    optimizer: train.optimizer ?? null,
  };
}

/** A training step's MACs, forward (graphCost on the layer's output) against the whole step, and what it differentiated. */
function trainingFigures(graph: Graph, built: CaseGraph, step: GraphCost): BenchTraining {
  const forward = graphCost(graph, [built.forward]);
  const backwardMacs = step.macs - forward.macs;
  const parameters = built.parameters ?? [];
  return {
    forwardMacs: forward.macs,
    backwardMacs,
    backwardOverForward: forward.macs > 0 ? backwardMacs / forward.macs : 0,
    forwardPeakBytes: forward.peakBytes,
    parameters: parameters.length,
    parameterValues: parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0),
    newtonBackward: built.newtonBackward,
    optimizer: built.optimizer,
    outputs: built.outputs.length,
    worstOutput: null,
    outputErrors: null,
  };
}

/**
 * The graph a config case of the harness builds (stage `stage` at `resolution`, one attention and
 * level), with its cost and, for a training step, its forward/backward MACs — without running it
 * (scripts/perf/training-vs-pytorch.ts prints the backward/forward ratio of every attention this way).
 * A string says why the case cannot be built. `runtime` decides runtime-dependent tiling; default untiled.
 */
export function benchCaseGraph(
  model: ModelSpec,
  c: {
    stage: number;
    attention: AttentionKind;
    level: Level;
    resolution?: number;
    batch?: number;
    train?: TrainBenchOptions;
  },
  runtime: RuntimeDescription = UNTILED_CPU,
): (CaseGraph & { cost: GraphCost; training: BenchTraining | null }) | string {
  const [w] = planWorkloads({
    model,
    config: null,
    stages: [c.stage],
    attentions: [c.attention],
    levels: [c.level],
    resolutions: [c.resolution ?? model.resolutions[0] ?? 224],
    scaling: false,
  });
  if (!w) return `stage ${c.stage} is not a stage of ${model.name}`;
  const why = unsupported(w);
  if (why) return why;
  const built = buildGraph(w, model, c.batch ?? 1, runtime, c.train);
  const cost = graphCost(built.graph, built.outputs);
  return { ...built, cost, training: c.train ? trainingFigures(built.graph, built, cost) : null };
}

const UNTILED_CPU: RuntimeDescription = {
  id: 'reference',
  runtime: 'none (graph only)',
  device: 'none',
  software: false,
  maxBufferBytes: null,
  tokenTileBytes: null,
};

/** The run's training setup in words, for the report. */
function trainingSetup(model: ModelSpec, train: TrainBenchOptions): BenchTrainingSetup {
  const a = ADAMW_DEFAULTS;
  return {
    cotangentSeed: train.seed ?? DEFAULT_COTANGENT_SEED,
    optimizer: train.optimizer ?? null,
    optimizerSettings:
      train.optimizer === 'adamw'
        ? `lr ${a.lr}, betas (${a.beta1}, ${a.beta2}), eps ${a.eps}, weight decay 0.05 but none on biases and 1-D parameters (timm), step ${DEFAULT_OPTIMIZER_STEP}, state from a seeded draw`
        : null,
    newtonBackward: train.newtonBackward ?? model.newton.backward,
  };
}

/** Memory a runtime's device can give, and how we know. */
function deviceBudget(runner: Runner, report: DeviceReport): { bytes: number; what: string } {
  const d = runner.description;
  if (d.id === 'ort-webgpu' || d.id === 'tfjs-webgpu') {
    if (!d.software) {
      const gpu = report.nvidia.gpus[0];
      if (gpu)
        return {
          bytes: (gpu.memoryTotalMiB - gpu.memoryUsedMiB) * 2 ** 20,
          what: `free memory of ${gpu.name} (nvidia-smi)`,
        };
      return { bytes: Infinity, what: 'GPU memory (not readable here)' };
    }
    return { bytes: os.freemem(), what: 'free host memory (a software adapter allocates there)' };
  }
  if (d.id === 'tfjs-wasm') return { bytes: 2 * 2 ** 30, what: 'the WebAssembly heap (2 GiB)' };
  return { bytes: os.freemem(), what: 'free host memory' };
}

/** Sizes in refusal messages: MiB or GiB (a refused case is never small). */
const REFUSAL_BYTES: BytesFormat = { ...REPORT_BYTES, smallest: 'MiB' };

function caseId(r: RuntimeId, w: Workload, train: boolean): string {
  const rect = w.gridW !== w.grid ? `/${w.grid}x${w.gridW}` : '';
  return `${r}/${w.group}/s${w.stage.index}/${w.attention}/${w.level}/N${w.tokens}${rect}${train ? '/train' : ''}`;
}

/** relError of each output against its reference, and the worst (NaN, from a runtime that produced one, counts as the worst). */
function outputErrors(
  outs: readonly { data: ArrayLike<number> }[],
  refs: readonly ArrayLike<number>[],
  names: readonly string[],
): { each: { name: string; relError: number }[]; worst: { name: string; relError: number } } {
  const each = refs.map((ref, i) => ({ name: names[i] ?? `output ${i}`, relError: relError(outs[i]!.data, ref) }));
  let worst = each[0]!;
  for (const e of each)
    if (!Number.isNaN(worst.relError) && (Number.isNaN(e.relError) || e.relError > worst.relError)) worst = e;
  return { each, worst };
}

function relError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(out[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return diff / (scale || 1);
}

interface TimedRuns {
  samples: number[];
  /** Other processes' CPU use while the samples were taken (cores), or null when not measurable. */
  otherCores: number | null;
}

/** Times `run` until the spread is stable after minReps runs and minMs, or the budget or maxReps is spent. */
async function timeRepetitions(
  run: () => Promise<unknown>,
  limits: { budgetMs: number; minReps: number; minMs: number; maxReps: number },
  isCancelled?: () => boolean,
  afterRun?: (repetition: number) => void | Promise<void>,
): Promise<TimedRuns> {
  const hostLoad = startHostLoadMeter();
  const samples: number[] = [];
  const started = performance.now();
  while (samples.length < limits.maxReps) {
    if (isCancelled?.()) throw new CancelledError();
    samples.push(await timeOnce(run));
    await afterRun?.(samples.length);
    const spent = performance.now() - started;
    if (
      samples.length >= limits.minReps &&
      spent >= limits.minMs &&
      (spent > limits.budgetMs || checkStability(samples, { window: 5, tolerance: 0.02 }).stable)
    )
      break;
  }
  return { samples, otherCores: hostLoad() };
}

/** Whether nvidia-smi can see the memory a runtime uses: a hardware NVIDIA WebGPU adapter, ORT's CUDA EP or tfjs-node-gpu. */
function runsOnNvidiaGpu(d: RuntimeDescription, report: DeviceReport): boolean {
  if (!report.nvidia.available) return false;
  if (d.id === 'tfjs-node-gpu' || d.id === 'ort-cuda') return true;
  const nvidiaAdapter = report.webgpu.adapters.some((a) => !a.software && a.vendor.toLowerCase() === 'nvidia');
  return (d.id === 'ort-webgpu' || d.id === 'tfjs-webgpu') && !d.software && nvidiaAdapter;
}

export type GpuSampler = { stop(): Promise<GpuMemoryPeak> };

/**
 * nvidia-smi sampling around one case, or null when the runtime does not run on an NVIDIA
 * GPU (then nothing is spawned). `start` is the sampler to use (tests pass their own).
 */
export function caseGpuSampler(
  d: RuntimeDescription,
  report: DeviceReport,
  start: () => GpuSampler = () => startGpuMemorySampler(),
): GpuSampler | null {
  return runsOnNvidiaGpu(d, report) ? start() : null;
}

/**
 * The case's figure from a sampler's readings: the largest rise of any GPU's used memory above
 * its reading before the case. Null without a reading during the case (the first one is the baseline).
 */
export function gpuMemoryFigure(peak: GpuMemoryPeak, gpus: readonly NvidiaGpu[]): MemoryFigure | null {
  if (!peak.available || peak.samples < 2) return null;
  let best: { index: number; riseMiB: number } | null = null;
  for (const [i, p] of peak.peakMiB.entries()) {
    const riseMiB = p - peak.baselineMiB[i]!;
    if (Number.isFinite(riseMiB) && (!best || riseMiB > best.riseMiB)) best = { index: i, riseMiB };
  }
  if (!best) return null;
  const gpu = gpus[best.index];
  return {
    label: `nvidia-smi: rise of used memory on GPU ${best.index}${gpu ? ` (${gpu.name})` : ''} during the case above the reading before it (whole device, every process; ${peak.samples} readings ~100 ms apart, so shorter peaks can be missed)`,
    bytes: best.riseMiB * 2 ** 20,
    kind: 'measured',
  };
}

/** Median of the pairwise log–log slopes (Theil–Sen): one disturbed point among seven cannot move it. */
export function theilSenExponent(xs: readonly number[], ys: readonly number[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    for (let j = i + 1; j < xs.length; j++) {
      if (xs[i] !== xs[j]) slopes.push(Math.log(ys[j]! / ys[i]!) / Math.log(xs[j]! / xs[i]!));
    }
  }
  if (slopes.length === 0) throw new RangeError('theilSenExponent: need two distinct xs');
  slopes.sort((a, b) => a - b);
  const mid = slopes.length >> 1;
  return slopes.length % 2 ? slopes[mid]! : (slopes[mid - 1]! + slopes[mid]!) / 2;
}

export async function runBenchmark(o: BenchOptions, report: DeviceReport): Promise<BenchReport> {
  const t0 = Date.now();
  const batch = o.batch ?? 1;
  const budgetMs = o.budgetMs ?? 1500;
  const refLimit = o.referenceMacsLimit ?? 3e8;
  const workloads = planWorkloads(o);
  const requested = o.runtimes ?? defaultRuntimes(report);
  const cases: BenchCase[] = [];
  const record = (c: BenchCase): void => {
    cases.push(c);
    o.onCase?.(c);
  };
  const unavailable: BenchReport['unavailable'] = [];
  const limits: DeviceLimits[] = [];
  const limitFailures: string[] = [];
  const runners: Runner[] = [];
  for (const id of requested) {
    try {
      runners.push(await openRunner(id, report));
    } catch (e) {
      unavailable.push({ id, reason: (e as Error).message });
    }
  }
  const total = workloads.length + (runners.length - 1) * workloads.filter((x) => x.group !== 'scaling').length;
  let done = 0;
  let buildMs = 0;
  let sessionMs = 0;
  // Reference outputs are shared by every runtime; keyed by workload.
  const referenceCache = new Map<Workload, RefArray[] | null>();
  const train = o.train;
  // The last measured median per (runtime, group, attention), to skip sizes that would take too long.
  const lastRun = new Map<string, { tokens: number; ms: number; exponent: number }>();

  const describe = (r: Runner): RuntimeDescription =>
    o.tokenTileBytes === undefined ? r.description : { ...r.description, tokenTileBytes: o.tokenTileBytes };
  for (const [ri, runner] of runners.entries()) {
    const rid = runner.description.id;
    const description = describe(runner);
    const budget = deviceBudget(runner, report);
    let measuredCases = 0;
    // Once the runtime's device is lost nothing more can run on it here: its remaining cases fail with the loss.
    let lost: DeviceLostError | null = null;
    // The scaling sweep runs on the best runtime only: its point is the exponent, not a runtime comparison.
    for (const w of ri === 0 ? workloads : workloads.filter((x) => x.group !== 'scaling')) {
      if (o.isCancelled?.()) throw new CancelledError();
      o.onProgress?.(`${rid}: stage ${w.stage.index} ${w.attention} ${w.level} @ ${w.tokens} tokens`, done, total);
      done++;
      const base: BenchCase = {
        id: caseId(rid, w, !!train),
        runtime: rid,
        group: w.group,
        stage: w.stage.index,
        attention: w.attention,
        level: w.level,
        batch,
        resolution: w.resolution,
        tokens: w.tokens,
        grid: w.grid,
        ...(w.gridW !== w.grid ? { gridW: w.gridW } : {}),
        landmarks: w.landmarks,
        setting: attentionSetting(caseStage(w), o.model, w.grid, w.gridW),
        dim: w.stage.dim,
        heads: w.stage.heads,
        status: 'ok',
        message: null,
        macs: 0,
        timingMs: null,
        gflopsPerSecond: null,
        warmup: null,
        setupMs: null,
        memory: [],
        relErrorVsReference: null,
        mode: train ? 'train' : 'inference',
      };
      if (lost) {
        record({ ...base, status: 'failed', message: `not run: ${lost.message}` });
        continue;
      }
      const why = unsupported(w);
      if (why) {
        record({ ...base, status: 'skipped', message: why });
        continue;
      }
      const tb = performance.now();
      let built: CaseGraph;
      try {
        built = buildGraph(w, o.model, batch, description, train);
      } catch (e) {
        // A graph that cannot be built (a backward the op set cannot express) fails this case only.
        record({
          ...base,
          status: 'failed',
          message: `could not build the ${train ? 'training-step ' : ''}graph: ${(e as Error).message}`,
        });
        continue;
      }
      const { graph, outputs, weights } = built;
      const cost: GraphCost = graphCost(graph, outputs);
      if (train) base.training = trainingFigures(graph, built, cost);
      const caseBuildMs = performance.now() - tb;
      buildMs += caseBuildMs;
      base.macs = cost.macs;
      base.memory.push({
        label: train
          ? `analytic peak of the training step: weights${train.optimizer ? ' + optimizer state' : ''} + live activations, gradients and outputs (graph liveness, float32)`
          : 'analytic peak: weights + live activations (graph liveness, float32)',
        bytes: cost.peakBytes,
        kind: 'estimated',
      });

      if (cost.peakBytes > 0.8 * budget.bytes) {
        record({
          ...base,
          status: 'refused',
          message: `estimated peak ${formatBytes(cost.peakBytes, REFUSAL_BYTES)} exceeds 80 % of ${budget.what} (${formatBytes(budget.bytes, REFUSAL_BYTES)}); not allocated`,
        });
        continue;
      }
      if (runner.description.maxBufferBytes !== null && cost.largestTensor.bytes > runner.description.maxBufferBytes) {
        record({
          ...base,
          status: 'refused',
          message: `largest tensor [${cost.largestTensor.shape}] (${cost.largestTensor.op}) is ${formatBytes(cost.largestTensor.bytes, REFUSAL_BYTES)}, above the ${formatBytes(runner.description.maxBufferBytes, REFUSAL_BYTES)} one buffer may hold on ${runner.description.device}`,
        });
        continue;
      }
      const key = `${rid}/${w.group}/${w.attention}/${w.level}/${w.stage.index}`;
      const prev = lastRun.get(key);
      if (prev && w.group !== 'config') {
        const predicted = prev.ms * (w.tokens / prev.tokens) ** prev.exponent;
        if (predicted > SWEEP_RUN_LIMIT_MS) {
          record({
            ...base,
            status: 'skipped',
            message: `predicted ${formatMs(predicted, { unit: 's', decimals: 1 })} per run from the previous size (${prev.tokens} tokens: ${formatMs(prev.ms, { unit: 'ms', decimals: 0 })}); above the ${SWEEP_RUN_LIMIT_MS / 1000} s sweep limit`,
          });
          continue;
        }
      }

      const inputData = normals(batch * w.tokens * w.stage.dim, seededRandom(1));
      const gpuSampler = caseGpuSampler(runner.description, report);
      let gpuPeak: Promise<GpuMemoryPeak> | undefined;
      const stopGpuSampler = () => (gpuPeak ??= gpuSampler?.stop());
      let prepared;
      try {
        const ts = performance.now();
        prepared = await runner.prepare(graph, outputs, weights);
        sessionMs += performance.now() - ts;
        base.setupMs = { build: caseBuildMs, session: performance.now() - ts };
      } catch (e) {
        await stopGpuSampler();
        if (e instanceof DeviceLostError) lost = e;
        record({
          ...base,
          status: 'failed',
          message: e instanceof DeviceLostError ? e.message : `could not prepare: ${(e as Error).message}`,
        });
        continue;
      }
      try {
        const feeds = built.feeds(inputData);
        // Warm-up: the first run compiles shaders / plans memory; keep warming while runs still speed up a lot.
        const t = performance.now();
        const outs = await prepared.run(feeds);
        const firstMs = performance.now() - t;
        // Timed the runtime's own way where it has one (on the device, inputs already there).
        const run = prepared.timedRun ? () => prepared.timedRun!(feeds) : () => prepared.run(feeds);
        let warm = 1;
        let last = firstMs;
        while (warm < 5) {
          const ms = await timeOnce(run);
          warm++;
          if (ms > 0.8 * last || ms > budgetMs) {
            last = ms;
            break;
          }
          last = ms;
        }
        const scaling = w.group === 'scaling' || (w.group === 'sweep' && !!o.retimeContended);
        const limits = {
          budgetMs,
          minReps: last > budgetMs / 2 ? 3 : MIN_REPS,
          minMs: scaling ? budgetMs / 2 : 0,
          maxReps: scaling ? SCALING_MAX_REPS : MAX_REPS,
        };
        const hook = benchFaultHooks.afterTimedRun;
        const afterRun = hook && ((n: number) => hook(rid, n));
        const attemptStarted = performance.now();
        let timed = await timeRepetitions(run, limits, o.isCancelled, afterRun);
        let attempts = 1;
        // A scaling point timed while other processes were busy would bend the fitted exponent: time it again and
        // keep the quietest, unless one attempt already took well over the budget (a few runs of a large size).
        const retry = performance.now() - attemptStarted <= 2 * budgetMs;
        while (
          scaling &&
          retry &&
          attempts < SCALING_ATTEMPTS &&
          timed.otherCores !== null &&
          timed.otherCores > CONTENDED_CORES
        ) {
          const again = await timeRepetitions(run, limits, o.isCancelled, afterRun);
          attempts++;
          if (again.otherCores !== null && again.otherCores < timed.otherCores) timed = again;
        }
        const s = summarize(timed.samples);
        base.timingMs = {
          n: s.n,
          median: s.median,
          p10: s.p10,
          p90: s.p90,
          min: s.min,
          max: s.max,
          relSpread: s.relSpread,
        };
        base.gflopsPerSecond = gflops(cost.macs, s.median);
        base.trafficBytes = cost.trafficBytes;
        measuredCases++;
        base.warmup = { runs: warm, firstMs };
        base.hostLoad = { otherCores: timed.otherCores, attempts };
        const exponent = w.attention === 'softmax' ? 2 : 1.2;
        lastRun.set(key, { tokens: w.tokens, ms: s.median, exponent });
        const measured: MemoryFigure[] = await prepared.measureMemory(feeds).catch((e: unknown) => {
          if (e instanceof DeviceLostError) throw e;
          return [];
        });
        base.memory.push(...measured);
        const gpu = gpuSampler && gpuMemoryFigure(await stopGpuSampler()!, report.nvidia.gpus);
        if (gpu) base.memory.push(gpu);

        if (cost.macs <= refLimit && outs.length === outputs.length) {
          let ref = referenceCache.get(w);
          if (ref === undefined) {
            try {
              ref = new ReferenceRuntime('float64').run(graph, feeds, weights, outputs).map((r) => r.data);
            } catch (e) {
              if (process.env.VITLENS_DEBUG) console.error(e);
              ref = null;
            }
            referenceCache.set(w, ref);
          }
          if (ref) {
            const errors = outputErrors(outs, ref, built.outputNames);
            base.relErrorVsReference = errors.worst.relError;
            if (base.training)
              Object.assign(base.training, { worstOutput: errors.worst.name, outputErrors: errors.each });
          }
        }
        record(base);
      } catch (e) {
        if (e instanceof CancelledError) throw e;
        if (e instanceof DeviceLostError) {
          lost = e;
          // Repetitions timed before the loss are no figure of this case: it did not complete.
          Object.assign(base, { timingMs: null, gflopsPerSecond: null, relErrorVsReference: null });
        }
        record({ ...base, status: 'failed', message: (e as Error).message });
      } finally {
        await stopGpuSampler();
        // Freeing buffers of a lost device may fail too; the loss is what the case reports.
        await prepared.release().catch((e: unknown) => {
          if (!lost) throw e;
        });
      }
    }
    // The roofline's two limits, measured on this runtime after its cases: measured first, ORT's
    // large matmul slowed the next cases (SOFT stage 1 on ORT CPU 7.6 → 15.6 ms). A failure only
    // loses the fractions.
    if (o.limits !== false && !lost && measuredCases > 0) {
      o.onProgress?.(`${rid}: measuring matmul throughput and read bandwidth`, done, total);
      const deviceLimits = await measureDeviceLimits(runner).catch((e: unknown) => {
        limitFailures.push(`${rid}: device limits not measured (${(e as Error).message})`);
        return null;
      });
      if (deviceLimits) limits.push(deviceLimits);
    }
    await runner.close();
  }

  const scaling = fitScaling(cases);
  const totalMs = Date.now() - t0;
  const processStartMs = o.processStartedAt ? Math.max(0, t0 - o.processStartedAt) : 0;
  const overheadMs = processStartMs + report.probeMs + buildMs + sessionMs;
  return {
    schemaVersion: 1,
    model: o.model.name,
    config: o.config,
    startedAt: new Date(t0).toISOString(),
    runtimes: runners.map(describe),
    unavailable,
    cases,
    scaling,
    mode: train ? 'train' : 'inference',
    ...(train ? { training: trainingSetup(o.model, train) } : {}),
    overhead: {
      processStartMs,
      probeMs: report.probeMs,
      buildMs,
      sessionMs,
      totalMs: totalMs + processStartMs,
      fraction: overheadMs / (totalMs + processStartMs),
    },
    limits,
    notes: [
      ...(train ? trainingNotes(trainingSetup(o.model, train)) : []),
      ...notesFor(o.model, runners.map(describe), report),
      ...comparisonNotes(o.model, o.attentions ?? comparisonAttentions(o.model)),
      ...rooflineNotes(limits),
      ...limitFailures,
    ],
  };
}

function fitScaling(cases: BenchCase[]): ScalingFit[] {
  const groups = new Map<string, BenchCase[]>();
  for (const c of cases) {
    if (c.group !== 'scaling' || c.status !== 'ok' || !c.timingMs) continue;
    const k = `${c.runtime}|${c.attention}|${c.level}`;
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  const out: ScalingFit[] = [];
  for (const list of groups.values()) {
    if (list.length < 2) continue;
    const xs = list.map((c) => c.tokens);
    const medians = list.map((c) => c.timingMs!.median);
    const time = fitPowerLaw(xs, medians);
    const mem = fitPowerLaw(
      xs,
      list.map((c) => c.memory[0]!.bytes),
    );
    const c0 = list[0]!;
    out.push({
      runtime: c0.runtime,
      attention: c0.attention,
      level: c0.level,
      timeExponent: time.exponent,
      timeR2: time.r2,
      memoryExponent: mem.exponent,
      memoryR2: mem.r2,
      tokens: xs,
      landmarks: c0.landmarks,
      timeExponentTheilSen: theilSenExponent(xs, medians),
      contendedPoints: list.filter((c) => (c.hostLoad?.otherCores ?? 0) > CONTENDED_CORES).length,
    });
  }
  return out;
}

/** What a reader of training-step figures must know about how they were built. */
function trainingNotes(t: BenchTrainingSetup): string[] {
  return [
    `Training steps: every case is one graph — the layer's forward pass, then its backward pass from the output with a fixed N(0, 1) cotangent (seed ${t.cotangentSeed}), giving the gradient with respect to the input and to every parameter of the layer${t.optimizer === 'adamw' ? `, then an AdamW update of every parameter (${t.optimizerSettings}), written on the op set` : ''}. Reverse-mode differentiation appends the backward graph to the forward one, so every runtime runs it as it runs any graph (no runtime's own autograd). BatchNorm uses the batch's statistics, as in model.train().`,
    `Training MACs: forward = the graph's MACs up to the layer's output; backward = the whole step's less those (an optimizer adds no MACs). A matmul's two gradients cost twice its forward; SOFT's Newton inverse ${t.newtonBackward === 'analytic' ? 'is differentiated analytically (−Vᵀ·G·Vᵀ: two m×m products per matrix instead of the iterations), so its backward costs well under twice its forward' : 'is differentiated through every iteration (unrolled), so its backward costs about twice its forward'}.`,
    "Training memory: the analytic peak is the whole step's by liveness — forward activations a gradient reads stay live until the backward node that reads it, and every gradient (and optimizer output) is an output, held to the end; the forward pass alone is in training.forwardPeakBytes. The graph is functional: updated parameters and state are new tensors where torch updates in place.",
    'Training rel.err: every output of the step (the layer output, d/dx, each parameter gradient, and any updated parameters and state) against the float64 reference, each relative to its own max |reference|; the worst is shown.',
  ];
}

function rooflineNotes(limits: DeviceLimits[]): string[] {
  if (!limits.length) return [];
  const each = limits
    .map(
      (l) =>
        `${l.runtime} ${formatNumber(l.matmul.gflopsPerSecond, { digits: 3 })} GFLOP/s (fp32 matmul ${l.matmul.n}³) and ${formatNumber(l.read.gbPerSecond, { digits: 3 })} GB/s (reading ${formatBytes(l.read.bytes, REPORT_BYTES)})`,
    )
    .join('; ');
  return [
    `Roofline: each runtime's limits were measured in this run, after its cases — ${each}. A case's "% matmul" is its GFLOP/s over that throughput; its "% bandwidth" is an estimate: the bytes its ops would move reading every operand and writing every result once (no fusion, no cache reuse), per second, over the read bandwidth.`,
  ];
}

/** What a reader of the comparison attentions' figures must know about how they were built. */
function comparisonNotes(model: ModelSpec, attentions: readonly AttentionKind[]): string[] {
  const notes: string[] = [];
  if (attentions.includes('performer'))
    notes.push(
      `Performer (FAVOR+, softmax kernel): m = ⌊d·ln d⌋ orthogonal random features per stage unless performer_features says otherwise, drawn from seed ${model.comparison.performerSeed} (+ stage − 1), the same on every runtime; the scaling sweep keeps m fixed.`,
    );
  if (attentions.includes('nystrom'))
    notes.push(
      `Nyströmformer: landmarks are r×r average pools of the grid (the SOFT paper's 2-D version; m = 49 in the scaling sweep), ${model.comparison.nystromIterations} iterations of its pseudo-inverse, and ${model.comparison.nystromConv === 'grid' ? "SOFT's k×k depthwise conv on V as its skip" : model.comparison.nystromConv === 'sequence' ? `the original (${model.comparison.nystromSequenceKernel}, 1) conv along the sequence as its skip` : 'no skip conv'}.`,
    );
  if (attentions.includes('linformer'))
    notes.push(
      "Linformer: E and F are [k, n], so every token count gets its own (random) E and F — a Linformer trained at one size does not run at another; k = the stage's landmark count unless linformer_k says otherwise (49 in the scaling sweep).",
    );
  if (attentions.includes('softmax_sr'))
    notes.push(
      'softmax_sr is PVT\'s spatial-reduction attention, which the SOFT paper ran and reported as "Linformer" (its §4.2); `linformer` is Linformer itself.',
    );
  return notes;
}

function notesFor(model: ModelSpec, runtimes: RuntimeDescription[], report: DeviceReport): string[] {
  const notes = [
    'MACs count the multiply–accumulates of every matmul and convolution in the executed graph (Newton iterations included); FLOPs = 2 × MACs; GFLOP/s = 2·MACs / median time.',
    'Memory: the first figure is an analytic estimate (weights + live float32 activations by liveness); the others are what the runtime measured.',
    'rel.err = max |runtime − reference| / max |reference| against the float64 TypeScript reference, on cases of at most 3e8 MACs (larger ones would take the reference too long); a WebGPU graph is thereby checked at small sizes.',
    'Weights are random (official-style init, seed 0) and inputs N(0,1): timings do not depend on the values.',
    `SOFT distances use ‖q‖² + ‖l‖² − 2q·l (the torch kernel_method); Newton variant ${model.newton.variant}, ${model.newton.maxIter} iterations.`,
    'The scaling sweep keeps the landmark count fixed at 49 (stride = grid/7, as the 2021 code did) so its exponents isolate the token dependence; the config cases use the current code, whose landmark count grows with resolution.',
    `Scaling points are timed for at least half the per-case budget and timed again (up to ${SCALING_ATTEMPTS} attempts, the quietest kept) while other processes use more than ${CONTENDED_CORES} CPU cores, unless an attempt took over twice the budget; the time exponent is a least-squares fit of log median time on log tokens, shown beside the Theil–Sen slope (median of the pairwise slopes). On a CPU the per-token cost steps up once the activations outgrow the last-level cache, which the exponent includes.`,
  ];
  for (const d of runtimes) {
    if (d.software) {
      notes.push(`${d.id} runs on ${d.device}: its timings measure a CPU emulating a GPU, not GPU performance.`);
      // A GPU that is here but out of Vulkan's reach: say so beside the software figures, with the fix.
      const v = report.gpuVisibility;
      if (v && !v.webgpuReachesIt) notes.push(`${v.diagnosis} ${v.fixes[0] ?? ''}`.trim());
    }
    if (d.tokenTileBytes)
      notes.push(
        `${d.id} runs UFO in token tiles of ${d.tokenTileBytes / 2 ** 20} MiB or more per [B, tokens, D] activation (cache blocking; the same maths, KᵀV summed tile by tile): inputs under two tiles run whole.`,
      );
  }
  return notes;
}
