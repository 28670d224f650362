/**
 * One gradient job: a config's model with a checkpoint (or random weights) on images or a raw
 * tensor, the mean cross-entropy against the given class, and the backward graph the engine
 * derives (engine/training.ts) — the loss, every parameter's gradient norm (state-dict order), the
 * input gradient, warnings for exploding / vanishing / non-finite gradients, and for SOFT stages
 * whose Newton inverse is differentiated analytically, how far that gradient is from the one
 * through the iterations. The inputs come through inference's input path (infer/run.ts), so the
 * two commands read checkpoints and images the same way.
 *
 * By default on the float64 reference interpreter in this process; any other runtime through its
 * runner (float32), on the same graph.
 */
import os from 'node:os';
import type {
  GradFlag,
  GradItem,
  GradParameter,
  GradReport,
  GradWarning,
  NewtonGradientCheck,
} from '../../../protocol/grad';
import { GRAD_RULE } from '../../../protocol/grad';
import type { DeviceReport } from '../../../protocol/devices';
import type { RuntimeDescription, RuntimeId } from '../../../protocol/results';
import type { BatchNormMode } from '../../core/engine/blocks';
import { Graph, type Tensor } from '../../core/engine/graph';
import { ReferenceRuntime, type WeightSource } from '../../core/engine/lowerings/reference';
import { MODEL_INPUT, type ModelGraph } from '../../core/engine/model';
import { trainingGraph } from '../../core/engine/training';
import type { ModelSpec, NewtonBackward } from '../../core/models/spec';
import { numel } from '../../core/shape';
import { classLabel, softmax } from '../../inputs/imagenet';
import { openRunner } from '../../runtimes/open-runner';
import { graphOptionsFor } from '../../runtimes/runner';
import { expectedModelTensors } from '../infer/model-weights';
import { checkpointSummary, loadModelInputs, modelWeights, type ModelInputJob } from '../infer/run';

export interface GradJob extends ModelInputJob {
  config: string | null;
  /** The target class: one for every item of the batch, or one per item. */
  labels: number[];
  /** BatchNorm statistics: running (`eval`, default) or the batch's (`train`). */
  mode?: BatchNormMode;
  /** How SOFT's Newton inverse is differentiated; default the config's (newton_backward). */
  newtonBackward?: NewtonBackward;
  /** Absent or `reference`: the float64 reference interpreter; else that runtime's runner (float32). */
  runtime?: RuntimeId;
  /** Random weights' seed when there is no checkpoint. */
  seed?: number;
}

/** The job asks for something the model cannot do (a class it does not have, a label count that does not fit). */
export class GradInputError extends Error {}

export const LOSS_DEFINITION =
  'mean over the batch of the cross-entropy −log softmax(logits)[label], natural log, as torch.nn.functional.cross_entropy';

const SOFT_ATTENTIONS = new Set(['soft', 'soft_norm']);

/** Computes graph outputs on one runtime: the float64 reference, or a runner. */
interface Evaluator {
  description: RuntimeDescription;
  dtype: 'float64' | 'float32';
  graphOptions: { maxScoreElements?: number; tokenTileBytes?: number };
  run(g: Graph, outputs: Tensor[], weights: WeightSource, input: Float32Array): Promise<ArrayLike<number>[]>;
  close(): Promise<void>;
}

function float64Reference(): Evaluator {
  const rt = new ReferenceRuntime('float64');
  return {
    description: {
      id: 'reference',
      runtime: 'ViT Lens TypeScript reference (float64, single thread)',
      device: `1 thread on ${os.cpus()[0]?.model.trim() || os.arch()}`,
      software: false,
      maxBufferBytes: null,
      tokenTileBytes: null,
    },
    dtype: 'float64',
    graphOptions: {},
    run: async (g, outputs, weights, input) => rt.run(g, { [MODEL_INPUT]: input }, weights, outputs).map((t) => t.data),
    close: async () => {},
  };
}

async function runnerEvaluator(runtime: RuntimeId, report: DeviceReport): Promise<Evaluator> {
  const runner = await openRunner(runtime, report);
  return {
    description: runner.description,
    dtype: 'float32',
    graphOptions: graphOptionsFor(runner.description),
    run: async (g, outputs, weights, input) => {
      const prepared = await runner.prepare(g, outputs, weights);
      try {
        return (await prepared.run({ [MODEL_INPUT]: input })).map((o) => o.data);
      } finally {
        await prepared.release();
      }
    },
    close: () => runner.close(),
  };
}

/** L2 norm and max |x|, scaled by the maximum so that no square overflows; NaN / Infinity when an element is. */
export function normOf(
  data: ArrayLike<number>,
  start = 0,
  end = data.length,
  stride = 1,
): { norm: number; maxAbs: number } {
  let maxAbs = 0;
  let bad = 0;
  for (let i = start; i < end; i += stride) {
    const v = data[i]!;
    if (!Number.isFinite(v)) bad = Number.isNaN(v) || Number.isNaN(bad) ? NaN : Infinity;
    else if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v);
  }
  if (bad) return { norm: bad, maxAbs: bad };
  if (maxAbs === 0) return { norm: 0, maxAbs: 0 };
  let s = 0;
  for (let i = start; i < end; i += stride) s += (data[i]! / maxAbs) ** 2;
  return { norm: maxAbs * Math.sqrt(s), maxAbs };
}

function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * The stage (1-based) whose layers first read each parameter, from where the graph reads it: a
 * weight read after stage k−1's last block output and by stage k's last one belongs to stage k;
 * after the last stage: null (final norm, head, class-attention blocks).
 */
export function parameterStages(g: Graph, spec: ModelSpec, model: ModelGraph): Map<string, number | null> {
  const ends: { stage: number; id: number }[] = [];
  for (const s of spec.stages) {
    const tap =
      model.taps.get(`block${s.index}.${s.depth - 1}_out`) ??
      (spec.stages.length === 1 ? model.taps.get(`blocks.${s.depth - 1}_out`) : undefined);
    if (tap) ends.push({ stage: s.index, id: tap.id });
  }
  const out = new Map<string, number | null>();
  for (const { key, tensor } of g.weights) {
    if (out.has(key)) continue;
    out.set(key, ends.find((e) => tensor.id <= e.id)?.stage ?? null);
  }
  return out;
}

/** ‖a − b‖ / ‖b‖ over the concatenation of the pairs. */
function relativeDifference(pairs: [ArrayLike<number>, ArrayLike<number>][]): number {
  let num = 0;
  let den = 0;
  for (const [a, b] of pairs)
    for (let i = 0; i < b.length; i++) {
      num += (a[i]! - b[i]!) ** 2;
      den += b[i]! ** 2;
    }
  return den > 0 ? Math.sqrt(num / den) : num > 0 ? Infinity : 0;
}

function checkLabels(labels: number[], batch: number, classes: number): number[] {
  if (labels.length !== 1 && labels.length !== batch)
    throw new GradInputError(
      `--label: ${labels.length} labels for a batch of ${batch}; give one for every item or one per item`,
    );
  for (const l of labels)
    if (!Number.isInteger(l) || l < 0 || l >= classes)
      throw new GradInputError(
        `--label ${l}: not a class of the model, which has ${classes} classes (0…${classes - 1})`,
      );
  return labels.length === batch ? labels : new Array<number>(batch).fill(labels[0]!);
}

/** Conv biases a BatchNorm follows (`….proj.{3j}.bias` before `….proj.{3j+1}`): batch statistics cancel them. */
function biasesBeforeBatchNorm(spec: ModelSpec): Set<string> {
  const keys = new Set(expectedModelTensors(spec).map((t) => t.key));
  const out = new Set<string>();
  for (const key of keys) {
    const m = /^(.*\.)(\d+)\.bias$/.exec(key);
    if (m && keys.has(`${m[1]}${Number(m[2]) + 1}.running_mean`)) out.add(key);
  }
  return out;
}

/** State-dict order: the profile walk's tensor list; keys it does not list keep the graph's order, after. */
function stateDictOrder(spec: ModelSpec, keys: string[]): string[] {
  const order = new Map(expectedModelTensors(spec).map((t, i) => [t.key, i]));
  return keys
    .map((key, i) => ({ key, rank: order.get(key) ?? order.size + i }))
    .sort((a, b) => a.rank - b.rank)
    .map((k) => k.key);
}

/**
 * Runs the job. `probeDevices` is called only for a runtime other than the float64 reference, and
 * only once the checkpoint and the inputs have been read and checked.
 */
export async function runGradients(job: GradJob, probeDevices: () => Promise<DeviceReport>): Promise<GradReport> {
  const notes: string[] = [];
  const inputs = await loadModelInputs(job);
  const { spec, checkpoint, input, batch, height, width } = inputs;
  const classes = spec.numClasses;
  const labels = checkLabels(job.labels, batch, classes);
  const mode = job.mode ?? 'eval';
  const softStages = spec.stages.filter((s) => SOFT_ATTENTIONS.has(s.attention));
  const backward: NewtonBackward = job.newtonBackward ?? spec.newton.backward;

  const evaluator =
    !job.runtime || job.runtime === 'reference'
      ? float64Reference()
      : await runnerEvaluator(job.runtime, await probeDevices());
  try {
    const build = (newtonBackward: NewtonBackward) => {
      const g = new Graph();
      const tg = trainingGraph(g, spec, {
        labels,
        inputGradient: true,
        height,
        width,
        newtonBackward,
        batchNormMode: mode,
        ...evaluator.graphOptions,
      });
      return { g, tg };
    };
    const t0 = performance.now();
    const { g, tg } = build(backward);
    const weights = modelWeights(
      g,
      spec,
      checkpoint && job.checkpoint ? { loaded: checkpoint, file: job.checkpoint } : null,
      job.seed ?? 0,
      notes,
    );
    const tBuild = performance.now() - t0;

    const t1 = performance.now();
    const [lossOut, logitsOut, inputGradOut, ...gradOuts] = await evaluator.run(
      g,
      [tg.loss, tg.model.logits, tg.inputGradient!, ...tg.parameters.map((p) => p.grad)],
      weights,
      input,
    );
    const tRun = performance.now() - t1;
    const gradOf = new Map(tg.parameters.map((p, i) => [p.key, { p, data: gradOuts[i]! }]));

    // Per parameter, in state-dict order.
    const stages = parameterStages(g, spec, tg.model);
    const rows = stateDictOrder(spec, [...gradOf.keys()]).map((key) => {
      const { p, data } = gradOf.get(key)!;
      const grad = normOf(data);
      const w = weights.get(key);
      const paramNorm = w ? normOf(w.data).norm : NaN;
      return {
        key,
        shape: p.shape,
        elements: numel(p.shape),
        stage: stages.get(key) ?? null,
        gradNorm: grad.norm,
        gradMaxAbs: grad.maxAbs,
        paramNorm,
        ratio: paramNorm > 0 ? grad.norm / paramNorm : null,
      };
    });
    const med = median(rows.map((r) => r.gradNorm).filter(Number.isFinite));
    const cancelled = mode === 'train' ? biasesBeforeBatchNorm(spec) : new Set<string>();
    const warnings: GradWarning[] = [];
    const parameters: GradParameter[] = rows.map((r) => {
      const toMedian = med > 0 && Number.isFinite(r.gradNorm) ? r.gradNorm / med : null;
      let flag: GradFlag | null = null;
      if (!Number.isFinite(r.gradNorm)) flag = 'non-finite';
      else if (toMedian !== null && toMedian > GRAD_RULE.explodingRatio) flag = 'exploding';
      else if (toMedian !== null && toMedian < GRAD_RULE.vanishingRatio) flag = 'vanishing';
      if (flag)
        warnings.push({
          key: r.key,
          stage: r.stage,
          kind: flag,
          message:
            flag === 'non-finite'
              ? `${r.key}: the gradient has NaN or infinite elements (‖grad‖ = ${r.gradNorm})`
              : `${r.key}: ${flag} gradient: ‖grad‖ ${r.gradNorm.toExponential(3)} is ${toMedian!.toExponential(2)} × the median over parameters (${med.toExponential(3)})` +
                (flag === 'vanishing' && cancelled.has(r.key)
                  ? ' — expected here: BatchNorm with batch statistics (train mode) subtracts this bias, so its true gradient is 0'
                  : ''),
        });
      return { ...r, toMedian, flag };
    });
    if (!(med > 0))
      warnings.push({
        key: null,
        stage: null,
        kind: 'vanishing',
        message: `the median gradient norm over parameters is ${med}: gradients vanish (or are not finite) almost everywhere`,
      });
    const loss = lossOut![0]!;
    if (!Number.isFinite(loss)) warnings.push({ key: null, stage: null, kind: 'loss', message: `the loss is ${loss}` });

    // The input gradient: whole, and per channel over the batch and the pixels.
    const ig = normOf(inputGradOut!);
    const C = spec.inChannels;
    const plane = height * width;
    const channelNorms = Array.from({ length: C }, (_, c) => {
      const parts: number[] = [];
      for (let b = 0; b < batch; b++)
        parts.push(normOf(inputGradOut!, (b * C + c) * plane, (b * C + c + 1) * plane).norm);
      return Math.hypot(...parts);
    });

    // SOFT's analytic Newton gradient against the one through the iterations, stage by stage.
    const newton: NewtonGradientCheck[] = [];
    const t2 = performance.now();
    if (backward === 'analytic' && softStages.length) {
      const other = build('unrolled');
      const unrolled = await evaluator.run(
        other.g,
        other.tg.parameters.map((p) => p.grad),
        weights,
        input,
      );
      const unrolledOf = new Map(other.tg.parameters.map((p, i) => [p.key, unrolled[i]!]));
      for (const s of softStages) {
        const keys = parameters.filter((p) => p.stage === s.index).map((p) => p.key);
        const d = relativeDifference(keys.map((k) => [gradOf.get(k)!.data, unrolledOf.get(k)!]));
        newton.push({
          stage: s.index,
          attention: s.attention,
          variant: spec.newton.variant,
          iterations: spec.newton.maxIter,
          parameters: keys.length,
          relativeDifference: d,
        });
        if (!(d <= GRAD_RULE.newtonRelativeDifference))
          warnings.push({
            key: null,
            stage: s.index,
            kind: 'newton',
            message: `stage ${s.index}: the analytic Newton gradient differs from the gradient through the ${spec.newton.maxIter} iterations by ${(d * 100).toPrecision(3)} % (relative L2 over the stage's parameter gradients): the inverse has not converged, and the analytic gradient is the derivative only at convergence; raise newton_maxiter or train with newton_backward: unrolled`,
          });
      }
    }
    const tNewton = performance.now() - t2;

    const items: GradItem[] = inputs.items.map((it, i) => {
      const row = Array.from(logitsOut!).slice(i * classes, (i + 1) * classes);
      const label = labels[i]!;
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      const p = softmax(row);
      const top = row.reduce((best, v, j) => (v > row[best]! ? j : best), 0);
      return {
        name: it.name,
        kind: it.kind,
        label,
        labelName: classLabel(label, classes),
        logits: row,
        loss: lse - row[label]!,
        predicted: { index: top, label: classLabel(top, classes), probability: p[top]! },
      };
    });
    if (evaluator.description.software)
      notes.push(`${evaluator.description.device}: a software adapter; the timing is not GPU performance.`);
    if (spec.stages.some((s) => s.stem.some((c) => c.batchNorm)) && mode === 'train' && batch === 1)
      notes.push('train mode with a batch of 1: BatchNorm normalises each channel by its statistics over one image.');

    const sumSq = (xs: number[]) => {
      const m = Math.max(0, ...xs.filter(Number.isFinite));
      return m > 0 ? m * Math.hypot(...xs.map((x) => x / m)) : xs.some((x) => !Number.isFinite(x)) ? NaN : 0;
    };
    return {
      model: spec.name,
      config: job.config,
      checkpoint: checkpointSummary(checkpoint, job.checkpoint),
      weights: checkpoint ? `checkpoint ${job.checkpoint} (${checkpoint.source})` : `random (seed ${job.seed ?? 0})`,
      runtime: evaluator.description,
      dtype: evaluator.dtype,
      input: { batch, height, width, transform: inputs.transform },
      numClasses: classes,
      mode,
      newtonBackward: softStages.length ? backward : null,
      loss,
      lossDefinition: LOSS_DEFINITION,
      items,
      parameters,
      totals: {
        parameters: parameters.length,
        elements: parameters.reduce((s, p) => s + p.elements, 0),
        gradNorm: sumSq(parameters.map((p) => p.gradNorm)),
        paramNorm: sumSq(parameters.map((p) => p.paramNorm)),
        medianGradNorm: med,
      },
      inputGradient: { norm: ig.norm, maxAbs: ig.maxAbs, channelNorms },
      newton,
      rule: `a parameter is flagged when its ‖grad‖ is over ${GRAD_RULE.explodingRatio.toExponential(0)} × (exploding) or under ${GRAD_RULE.vanishingRatio.toExponential(0)} × (vanishing) the median ‖grad‖ over all parameters, or has NaN/Inf elements; a SOFT stage when its analytic Newton gradient differs from the through-iteration one by over ${GRAD_RULE.newtonRelativeDifference * 100} %`,
      warnings,
      timingMs: { ...inputs.timingMs, build: tBuild, run: tRun, newtonCheck: tNewton },
      notes,
    };
  } finally {
    await evaluator.close();
  }
}
