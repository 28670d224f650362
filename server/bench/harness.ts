/**
 * The benchmark harness: plans the cases a config implies (each stage's attention layer and
 * block, for the config's attention and the comparison attentions; an optional token or
 * resolution sweep; a fixed-landmark scaling sweep from ~1k to ~64k tokens), and measures
 * each on each runtime: warm-up, repetitions until the spread is stable (or the time budget
 * is spent), median/p10/p90, MACs of the executed graph and achieved GFLOP/s, the analytic
 * memory peak beside whatever the runtime measures, a check against the reference, and fitted
 * time/memory exponents. A case whose estimated memory exceeds the device is refused before
 * anything is allocated.
 */
import os from 'node:os';
import type { BenchCase, BenchReport, MemoryFigure, RuntimeId, ScalingFit } from '../../protocol/results';
import { landmarkCount, stageGrids } from '../models/build';
import type { AttentionKind, ModelSpec, StageSpec } from '../models/spec';
import { attentionLayer, attentionPrefix, block, type LayerContext } from '../engine/blocks';
import { ReferenceRuntime } from '../engine/backends/reference';
import { graphCost, type GraphCost } from '../engine/cost';
import { Graph, type Tensor } from '../engine/graph';
import { normals, randomWeights, seededRandom } from '../engine/weights';
import type { DeviceReport } from './devices';
import { defaultRuntimes, openRunner, type Runner } from './runners';
import { checkStability, fitPowerLaw, gflops, summarize } from './stats';

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
  /** Fixed-landmark scaling sweep (default on). */
  scaling?: boolean;
  /** Token counts of the scaling sweep (grid sides multiples of 7 keep m = 49: 1225 … 63504). */
  scalingTokens?: number[];
  /** Stages to benchmark (1-based); default all. */
  stages?: number[];
  batch?: number;
  /** Time budget per case for the timed repetitions (ms). */
  budgetMs?: number;
  /** Compare each runtime's output with the TypeScript reference when a case is at most this many MACs. */
  referenceMacsLimit?: number;
  /** Started by the caller at process start (ms since epoch), for the overhead figure. */
  processStartedAt?: number;
  onProgress?: (message: string, done: number, total: number) => void;
  isCancelled?: () => boolean;
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
  grid: number;
  tokens: number;
  landmarks: number | null;
  /** SOFT landmark stride for this case (the scaling sweep changes it to keep m fixed). */
  ratio: number;
}

const DEFAULT_SCALING_TOKENS = [35, 70, 140, 252].map((s) => s * s);
const MIN_REPS = 5;
const MAX_REPS = 200;
/** Beyond this predicted time per run, a larger size of the same sweep is skipped rather than run. */
const SWEEP_RUN_LIMIT_MS = 8000;

function comparisonAttentions(model: ModelSpec): AttentionKind[] {
  const own = model.stages.find((s) => s.attention === 'soft' || s.attention === 'soft_norm')?.attention ?? 'soft';
  return [...new Set<AttentionKind>([own, 'ufo', 'softmax'])];
}

/** Why an attention cannot run on a stage, or null. */
function unsupported(stage: StageSpec, attention: AttentionKind, grid: number, ratio: number): string | null {
  if ((attention === 'soft' || attention === 'soft_norm' || attention === 'softmax_sr') && stage.clsToken) {
    return `${attention} needs a token grid without a cls token; stage ${stage.index} carries one`;
  }
  if ((attention === 'soft' || attention === 'soft_norm') && landmarkCount(grid, ratio) < 1) {
    return `no landmark: a ${grid}×${grid} grid is smaller than the ${ratio}×${ratio} landmark conv`;
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
          const isSoft = attention === 'soft' || attention === 'soft_norm';
          out.push({
            group: 'config', stage, attention, level, resolution, grid, tokens: grid * grid + (stage.clsToken ? 1 : 0),
            landmarks: isSoft ? landmarkCount(grid, stage.srRatio) : null, ratio: stage.srRatio,
          });
        }
      }
    }
  }
  const first = model.stages[0]!;
  for (const t of o.tokens ?? []) {
    const grid = Math.max(1, Math.round(Math.sqrt(t)));
    for (const attention of attentions) {
      const isSoft = attention === 'soft' || attention === 'soft_norm';
      out.push({ group: 'sweep', stage: first, attention, level: 'attention', resolution: null, grid, tokens: grid * grid, landmarks: isSoft ? landmarkCount(grid, first.srRatio) : null, ratio: first.srRatio });
    }
  }
  if (o.scaling ?? true) {
    for (const attention of attentions) {
      for (const t of o.scalingTokens ?? DEFAULT_SCALING_TOKENS) {
        const grid = Math.round(Math.sqrt(t));
        // m = 49 fixed, as the 2021 code built it (quirk Q9): stride = grid/7.
        const ratio = Math.max(1, Math.floor(grid / 7));
        const isSoft = attention === 'soft' || attention === 'soft_norm';
        out.push({ group: 'scaling', stage: first, attention, level: 'attention', resolution: null, grid, tokens: grid * grid, landmarks: isSoft ? landmarkCount(grid, ratio) : null, ratio });
      }
    }
  }
  return out;
}

function buildGraph(w: Workload, model: ModelSpec, batch: number, maxScoreElements: number): { graph: Graph; input: Tensor; output: Tensor } {
  const stage: StageSpec = { ...w.stage, attention: w.attention, srRatio: w.ratio };
  const g = new Graph();
  const c: LayerContext = { batch, gridH: w.grid, gridW: w.grid, tokens: w.tokens, distance: 'expanded', maxScoreElements };
  const x = g.input('x', [batch, w.tokens, stage.dim]);
  const output =
    w.level === 'block'
      ? block(g, x, stage, 0, model, c)
      : attentionLayer(g, x, attentionPrefix(stage, 0), stage, model, c);
  return { graph: g, input: x, output };
}

/** Memory a runtime's device can give, and how we know. */
function deviceBudget(runner: Runner, report: DeviceReport): { bytes: number; what: string } {
  const d = runner.description;
  if (d.id === 'ort-webgpu' || d.id === 'tfjs-webgpu') {
    if (!d.software) {
      const gpu = report.nvidia.gpus[0];
      if (gpu) return { bytes: (gpu.memoryTotalMiB - gpu.memoryUsedMiB) * 2 ** 20, what: `free memory of ${gpu.name} (nvidia-smi)` };
      return { bytes: Infinity, what: 'GPU memory (not readable here)' };
    }
    return { bytes: os.freemem(), what: 'free host memory (a software adapter allocates there)' };
  }
  if (d.id === 'tfjs-wasm') return { bytes: 2 * 2 ** 30, what: 'the WebAssembly heap (2 GiB)' };
  return { bytes: os.freemem(), what: 'free host memory' };
}

const GiB = 2 ** 30;
const fmtBytes = (b: number) => (b >= GiB ? `${(b / GiB).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);

function caseId(r: RuntimeId, w: Workload): string {
  return `${r}/${w.group}/s${w.stage.index}/${w.attention}/${w.level}/N${w.tokens}`;
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

export async function runBenchmark(o: BenchOptions, report: DeviceReport): Promise<BenchReport> {
  const t0 = Date.now();
  const batch = o.batch ?? 1;
  const budgetMs = o.budgetMs ?? 1500;
  const refLimit = o.referenceMacsLimit ?? 3e8;
  const workloads = planWorkloads(o);
  const requested = o.runtimes ?? defaultRuntimes(report);
  const cases: BenchCase[] = [];
  const unavailable: BenchReport['unavailable'] = [];
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
  const referenceCache = new Map<Workload, Float32Array | Float64Array | null>();
  // The last measured median per (runtime, group, attention), to skip sizes that would take too long.
  const lastRun = new Map<string, { tokens: number; ms: number; exponent: number }>();

  for (const [ri, runner] of runners.entries()) {
    const rid = runner.description.id;
    const budget = deviceBudget(runner, report);
    // The scaling sweep runs on the best runtime only: its point is the exponent, not a runtime comparison.
    for (const w of ri === 0 ? workloads : workloads.filter((x) => x.group !== 'scaling')) {
      if (o.isCancelled?.()) throw new CancelledError();
      o.onProgress?.(`${rid}: stage ${w.stage.index} ${w.attention} ${w.level} @ ${w.tokens} tokens`, done, total);
      done++;
      const base: BenchCase = {
        id: caseId(rid, w), runtime: rid, group: w.group, stage: w.stage.index, attention: w.attention, level: w.level, batch,
        resolution: w.resolution, tokens: w.tokens, grid: w.grid, landmarks: w.landmarks, dim: w.stage.dim, heads: w.stage.heads,
        status: 'ok', message: null, macs: 0, timingMs: null, gflopsPerSecond: null, warmup: null, setupMs: null, memory: [], relErrorVsReference: null,
      };
      const why = unsupported(w.stage, w.attention, w.grid, w.ratio);
      if (why) {
        cases.push({ ...base, status: 'skipped', message: why });
        continue;
      }
      const maxScore = runner.description.maxBufferBytes ? Math.floor(runner.description.maxBufferBytes / 4) : Infinity;
      const tb = performance.now();
      const { graph, input, output } = buildGraph(w, o.model, batch, maxScore);
      const cost: GraphCost = graphCost(graph, [output]);
      const weights = randomWeights(graph, 0);
      const caseBuildMs = performance.now() - tb;
      buildMs += caseBuildMs;
      base.macs = cost.macs;
      base.memory.push({ label: 'analytic peak: weights + live activations (graph liveness, float32)', bytes: cost.peakBytes, kind: 'estimated' });

      if (cost.peakBytes > 0.8 * budget.bytes) {
        cases.push({ ...base, status: 'refused', message: `estimated peak ${fmtBytes(cost.peakBytes)} exceeds 80 % of ${budget.what} (${fmtBytes(budget.bytes)}); not allocated` });
        continue;
      }
      if (runner.description.maxBufferBytes !== null && cost.largestTensor.bytes > runner.description.maxBufferBytes) {
        cases.push({ ...base, status: 'refused', message: `largest tensor [${cost.largestTensor.shape}] (${cost.largestTensor.op}) is ${fmtBytes(cost.largestTensor.bytes)}, above the ${fmtBytes(runner.description.maxBufferBytes)} one buffer may hold on ${runner.description.device}` });
        continue;
      }
      const key = `${rid}/${w.group}/${w.attention}/${w.level}/${w.stage.index}`;
      const prev = lastRun.get(key);
      if (prev && w.group !== 'config') {
        const predicted = prev.ms * (w.tokens / prev.tokens) ** prev.exponent;
        if (predicted > SWEEP_RUN_LIMIT_MS) {
          cases.push({ ...base, status: 'skipped', message: `predicted ${(predicted / 1000).toFixed(1)} s per run from the previous size (${prev.tokens} tokens: ${prev.ms.toFixed(0)} ms); above the ${SWEEP_RUN_LIMIT_MS / 1000} s sweep limit` });
          continue;
        }
      }

      const inputData = normals(batch * w.tokens * w.stage.dim, seededRandom(1));
      let prepared;
      try {
        const ts = performance.now();
        prepared = await runner.prepare(graph, [output], weights);
        sessionMs += performance.now() - ts;
        base.setupMs = { build: caseBuildMs, session: performance.now() - ts };
      } catch (e) {
        cases.push({ ...base, status: 'failed', message: `could not prepare: ${(e as Error).message}` });
        continue;
      }
      try {
        const feeds = { [graph.inputs[0]!.name]: inputData };
        // Warm-up: the first run compiles shaders / plans memory; keep warming while runs still speed up a lot.
        let t = performance.now();
        let [first] = await prepared.run(feeds);
        const firstMs = performance.now() - t;
        let warm = 1;
        let last = firstMs;
        while (warm < 5) {
          t = performance.now();
          await prepared.run(feeds);
          const ms = performance.now() - t;
          warm++;
          if (ms > 0.8 * last || ms > budgetMs) {
            last = ms;
            break;
          }
          last = ms;
        }
        const samples: number[] = [];
        const started = performance.now();
        const minReps = last > budgetMs / 2 ? 3 : MIN_REPS;
        while (samples.length < MAX_REPS) {
          if (o.isCancelled?.()) throw new CancelledError();
          t = performance.now();
          await prepared.run(feeds);
          samples.push(performance.now() - t);
          const spent = performance.now() - started;
          if (samples.length >= minReps && (spent > budgetMs || checkStability(samples, { window: 5, tolerance: 0.02 }).stable)) break;
        }
        const s = summarize(samples);
        base.timingMs = { n: s.n, median: s.median, p10: s.p10, p90: s.p90, min: s.min, max: s.max, relSpread: s.relSpread };
        base.gflopsPerSecond = gflops(cost.macs, s.median);
        base.warmup = { runs: warm, firstMs };
        const exponent = w.attention === 'softmax' ? 2 : 1.2;
        lastRun.set(key, { tokens: w.tokens, ms: s.median, exponent });
        const measured: MemoryFigure[] = await prepared.measureMemory(feeds).catch(() => []);
        base.memory.push(...measured);

        if (cost.macs <= refLimit && first) {
          let ref = referenceCache.get(w);
          if (ref === undefined) {
            try {
              ref = new ReferenceRuntime('float64').run(graph, feeds, weights, [output])[0]!.data;
            } catch (e) {
              if (process.env.VITLENS_DEBUG) console.error(e);
              ref = null;
            }
            referenceCache.set(w, ref);
          }
          if (ref) base.relErrorVsReference = relError(first.data, ref);
        }
        cases.push(base);
      } catch (e) {
        if (e instanceof CancelledError) throw e;
        cases.push({ ...base, status: 'failed', message: (e as Error).message });
      } finally {
        await prepared.release();
      }
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
    runtimes: runners.map((r) => r.description),
    unavailable,
    cases,
    scaling,
    overhead: { processStartMs, probeMs: report.probeMs, buildMs, sessionMs, totalMs: totalMs + processStartMs, fraction: overheadMs / (totalMs + processStartMs) },
    notes: notesFor(o.model, runners),
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
    const time = fitPowerLaw(xs, list.map((c) => c.timingMs!.median));
    const mem = fitPowerLaw(xs, list.map((c) => c.memory[0]!.bytes));
    const c0 = list[0]!;
    out.push({ runtime: c0.runtime, attention: c0.attention, level: c0.level, timeExponent: time.exponent, timeR2: time.r2, memoryExponent: mem.exponent, memoryR2: mem.r2, tokens: xs, landmarks: c0.landmarks });
  }
  return out;
}

function notesFor(model: ModelSpec, runners: Runner[]): string[] {
  const notes = [
    'MACs count the multiply–accumulates of every matmul and convolution in the executed graph (Newton iterations included); FLOPs = 2 × MACs; GFLOP/s = 2·MACs / median time.',
    'Memory: the first figure is an analytic estimate (weights + live float32 activations by liveness); the others are what the runtime measured.',
    'rel.err = max |runtime − reference| / max |reference| against the float64 TypeScript reference, on cases of at most 3e8 MACs (larger ones would take the reference too long); a WebGPU graph is thereby checked at small sizes.',
    'Weights are random (official-style init, seed 0) and inputs N(0,1): timings do not depend on the values.',
    `SOFT distances use ‖q‖² + ‖l‖² − 2q·l (the torch kernel_method); Newton variant ${model.newton.variant}, ${model.newton.maxIter} iterations.`,
    'The scaling sweep keeps the landmark count fixed at 49 (stride = grid/7, as the 2021 code did) so its exponents isolate the token dependence; the config cases use the current code, whose landmark count grows with resolution.',
  ];
  for (const r of runners) if (r.description.software) notes.push(`${r.description.id} runs on ${r.description.device}: its timings measure a CPU emulating a GPU, not GPU performance.`);
  return notes;
}
