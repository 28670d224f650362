/**
 * Training memory (issue 17, point 5): the saved activations and liveness of a training graph
 * against hand counts, the parameter state against the profile's exact parameter count, the batch
 * fit against graphs built at the batches it predicts, and the memory sizes the CLI and the
 * setting accept.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { graphCost } from '../server/core/engine/cost';
import { Graph, type Tensor } from '../server/core/engine/graph';
import { parameterGradients, trainingGraph } from '../server/core/engine/training';
import { stepMemory, trainingStep, type StepGraph } from '../server/core/engine/training-memory';
import type { ModelSpec } from '../server/core/models/spec';
import { profileModel } from '../server/core/profile/profile';
import {
  largestBatch,
  largestResolution,
  parseMemorySize,
  stageOfLayer,
  totalStride,
  trainingFit,
  trainingMemory,
} from '../server/core/profile/training-memory';
import { trainsAtLine } from '../server/core/profile/training-text';
import { numel } from '../server/core/shape';
import { FIXTURES, specOf } from './helpers/fixtures';

const GiB = 2 ** 30;
const paperSpec = (row: string): ModelSpec =>
  specOf(fs.readFileSync(path.join(FIXTURES, 'configs', 'paper', `table2_${row}.yaml`), 'utf8'));
const tiny = paperSpec('soft');

/** A hand-made step: `loss` of graph `g`, gradients for every weight. */
function step(g: Graph, loss: Tensor): StepGraph {
  const forwardEnd = loss.id;
  const params = parameterGradients(g, loss);
  return {
    graph: g,
    forwardEnd,
    outputs: [loss, ...params.map((p) => p.grad)],
    parameterGradients: params.map((p) => p.grad),
    parameters: params.map((p) => ({
      key: p.key,
      numel: numel(p.shape),
      tensor: g.weights.find((w) => w.key === p.key)!.tensor,
    })),
  };
}

/** Sum of every element down to [1, …, 1]. */
function sumAll(g: Graph, t: Tensor): Tensor {
  let s = t;
  for (let axis = t.shape.length - 1; axis >= 0; axis--) s = g.reduce('sum', s, axis);
  return s;
}

/** The total a GPU holds for one step built directly at `batch` (no fit): weights, AdamW, buffers + the step's peak. */
function builtTotal(spec: ModelSpec, resolution: number, batch: number): number {
  const g = new Graph();
  const t = trainingGraph(g, spec, { labels: new Array<number>(batch).fill(0), resolution, batchNormMode: 'train' });
  const m = stepMemory(trainingStep(g, t));
  const buffers = profileModel(spec, resolution, 1).memory.bufferBytes;
  return (4 + 8) * m.parameters + buffers + m.peakBytes;
}

describe('saved activations and liveness of a step graph', () => {
  test('nn.Linear: the backward reads only the input (dW = xᵀ·G), B·n·4 bytes; half that in bf16', () => {
    const [B, n, m] = [3, 5, 7];
    const g = new Graph();
    const x = g.input('x', [B, n]);
    const loss = sumAll(g, g.linear(x, 'fc', n, m));
    const s = step(g, loss);
    assert.equal(stepMemory(s).savedBytes, B * n * 4);
    assert.equal(stepMemory(s, { activationBytes: 2 }).savedBytes, B * n * 2);
    assert.equal(stepMemory(s).parameters, n * m + m);
  });

  test('softmax attention: x (for the three projections), q, kᵀ, P and v are saved — 4·(4·B·N·D + B·N²) bytes', () => {
    const [B, N, D] = [2, 6, 4];
    const g = new Graph();
    const x = g.input('x', [B, N, D]);
    const q = g.linear(x, 'q', D, D);
    const k = g.linear(x, 'k', D, D);
    const v = g.linear(x, 'v', D, D);
    const p = g.softmax(g.scale(g.matmul(q, g.transposeLast2(k)), 1 / Math.sqrt(D)));
    const loss = sumAll(g, g.matmul(p, v));
    const m = stepMemory(step(g, loss));
    // x [B,N,D] once, q [B,N,D], kᵀ [B,D,N], v [B,N,D], P [B,N,N]; the weight transposes are views.
    assert.equal(m.savedBytes, 4 * (4 * B * N * D + B * N * N));
    assert.equal(m.parameters, 3 * (D * D + D));
  });

  test('on a graph without views the liveness peak is graphCost’s', () => {
    const [B, n, m] = [4, 6, 3];
    const g = new Graph();
    const x = g.input('x', [B, n]);
    const w = g.weight('w', [n, m]);
    const loss = sumAll(g, g.unary('exp', g.matmul(x, w)));
    const s = step(g, loss);
    const mine = stepMemory(s);
    assert.equal(mine.peakBytes, graphCost(g, [...s.outputs]).peakActivationBytes);
    // Saved: x (for dW) and exp's output (its own derivative).
    assert.equal(mine.savedBytes, 4 * (B * n + B * m));
  });

  test('a reshape keeps its storage alive until the reshape’s last reader (graphCost frees it at the reshape)', () => {
    const [B, n, m] = [2, 8, 3];
    const g = new Graph();
    const x = g.input('x', [B, n]);
    const h = g.unary('tanh', x); // [B, n], read by the backward only through its reshape
    const flat = g.reshape(h, [B * n, 1]);
    const loss = sumAll(g, g.matmul(flat, g.weight('w', [1, m])));
    const s = step(g, loss);
    const mine = stepMemory(s);
    assert.equal(mine.savedBytes, 4 * B * n); // h, through its view
    assert.ok(mine.peakBytes > graphCost(g, [...s.outputs]).peakActivationBytes);
  });
});

describe('training memory of SOFT-Tiny and the Table 2 backbones', () => {
  test('weights, gradients and AdamW state are 4, 4 and 8 bytes × the profile’s exact parameter count', () => {
    for (const row of ['soft', 'transformer', 'linformer_sr', 'performer', 'nystrom']) {
      const spec = paperSpec(row);
      const params = profileModel(spec, 224, 1).params;
      const e = trainingMemory(spec, { resolution: 224, batch: 2 });
      assert.equal(e.params, params, row);
      assert.equal(e.weightBytes, 4 * params);
      assert.equal(e.gradientBytes, 4 * params);
      assert.equal(e.optimizerBytes, 8 * params);
      assert.equal(e.halfWeightBytes, 0);
      assert.equal(
        e.layers.reduce((n, l) => n + l.params, 0),
        params,
      );
    }
    assert.equal(trainingMemory(tiny, { resolution: 224 }).params, 13_069_056);
  });

  test('saved activations are linear in the batch; the step’s peak is too, from the batch the fit names', () => {
    const fit = trainingFit(tiny, { resolution: 224 });
    const built = (batch: number) => {
      const g = new Graph();
      const t = trainingGraph(g, tiny, {
        labels: new Array<number>(batch).fill(0),
        resolution: 224,
        batchNormMode: 'train',
      });
      return stepMemory(trainingStep(g, t));
    };
    for (const batch of [1, 2, 5, 16]) {
      assert.equal(built(batch).savedBytes, fit.saved.fixedBytes + fit.saved.perSampleBytes * batch, `batch ${batch}`);
    }
    const from = fit.asymptote.fromBatch;
    assert.ok(from >= 2 && from < 64, `linear from ${from}`);
    for (const batch of [from, from + 7, 64])
      assert.equal(built(batch).peakBytes, fit.asymptote.fixedBytes + fit.asymptote.perSampleBytes * batch);
    // Below the crossover the peak is elsewhere (the late backward, gradients held) and above the line.
    if (from > 2) assert.ok(built(2).peakBytes > fit.asymptote.fixedBytes + fit.asymptote.perSampleBytes * 2);
  });

  test('per layer: the saved bytes add up, identical blocks save the same, stages group their layers', () => {
    const e = trainingMemory(tiny, { resolution: 224, batch: 4 });
    const sum = (rows: typeof e.layers, f: (r: (typeof e.layers)[0]) => number) => rows.reduce((n, r) => n + f(r), 0);
    assert.equal(
      sum(e.layers, (l) => l.savedBytes),
      e.savedActivations.bytes,
    );
    assert.equal(
      sum(e.stages, (l) => l.savedBytes),
      e.savedActivations.bytes,
    );
    assert.equal(
      sum(e.stages, (l) => l.perSampleBytes),
      e.savedActivations.perSampleBytes,
    );
    const layer = (name: string) => e.layers.find((l) => l.name === name)!;
    assert.equal(layer('block3.0').perSampleBytes, layer('block3.1').perSampleBytes);
    assert.equal(layer('block4.0').perSampleBytes, layer('block4.1').perSampleBytes);
    assert.deepEqual(
      e.stages.map((s) => s.name),
      ['stage1', 'stage2', 'stage3', 'stage4', 'head'],
    );
    assert.equal(stageOfLayer('pos_embed3'), 'stage3');
    assert.equal(stageOfLayer('blocks.11'), 'stage1');
    assert.equal(stageOfLayer('norm'), 'head');
    // Stage 1 (3,136 tokens) saves the most per image.
    assert.ok(e.stages[0]!.perSampleBytes > e.stages[1]!.perSampleBytes);
  });

  test('mixed precision halves the activations and adds a half-precision copy of the weights', () => {
    const fp32 = trainingMemory(tiny, { resolution: 224, batch: 8 });
    const mixed = trainingMemory(tiny, { resolution: 224, batch: 8, precision: 'mixed' });
    assert.equal(mixed.savedActivations.perSampleBytes * 2, fp32.savedActivations.perSampleBytes);
    assert.equal(mixed.weightBytes, fp32.weightBytes);
    assert.equal(mixed.gradientBytes, fp32.gradientBytes);
    assert.equal(mixed.halfWeightBytes, 2 * fp32.params);
    assert.ok(mixed.total.bytes < fp32.total.bytes);
  });

  test('largest batch on 80 GiB at 224 = floor((memory − fixed) / per sample), and the graphs at B and B+1 agree', () => {
    const memory = parseMemorySize('80GiB');
    const fit = trainingFit(tiny, { resolution: 224 });
    const b = largestBatch(fit, memory);
    const fixed = fit.residentBytes + fit.asymptote.fixedBytes;
    assert.equal(b.batch, Math.floor((memory - fixed) / fit.asymptote.perSampleBytes));
    assert.ok(b.batch >= fit.asymptote.fromBatch);
    assert.ok(builtTotal(tiny, 224, b.batch) <= memory);
    assert.ok(builtTotal(tiny, 224, b.batch + 1) > memory);
    assert.equal(b.totalBytes, builtTotal(tiny, 224, b.batch));
    assert.equal(
      trainsAtLine(b),
      `trains at batch ≤ ${b.batch.toLocaleString('en')} on 80 GiB at 224 (est., fp32 + AdamW)`,
    );
  });

  test('below the crossover the largest batch is still exact (every line of the peak is checked)', () => {
    const fit = trainingFit(tiny, { resolution: 224 });
    const batch = Math.max(2, fit.asymptote.fromBatch - 3);
    const memory = builtTotal(tiny, 224, batch) + 1;
    assert.equal(largestBatch(fit, memory).batch, batch);
    // Nothing fits under the resident bytes; exactly batch 1's total fits batch 1.
    assert.equal(largestBatch(fit, fit.residentBytes).batch, 0);
    assert.equal(largestBatch(fit, builtTotal(tiny, 224, 1)).batch, 1);
  });

  test('largest resolution at batch 64 on 80 GiB: a multiple of the stems’ stride 32 that fits, the next does not', () => {
    const memory = 80 * GiB;
    assert.equal(totalStride(tiny), 32);
    const r = largestResolution(tiny, memory, { batch: 64 });
    assert.ok(r.resolution !== null && r.resolution % 32 === 0);
    assert.ok(builtTotal(tiny, r.resolution, 64) <= memory);
    assert.ok(builtTotal(tiny, r.resolution + 32, 64) > memory);
  });

  test('Linformer’s E, F tie it to 224: other resolutions are another model and are not offered', () => {
    const r = largestResolution(paperSpec('linformer'), 80 * GiB, { batch: 64 });
    assert.equal(r.resolution, 224);
    assert.ok(r.probes.some((p) => /depend on the input size/.test(p.error ?? '')));
  });

  test('SOFT-Tiny at 224 builds its fit in well under a few seconds', () => {
    const t0 = performance.now();
    trainingFit(tiny, { resolution: 224 });
    assert.ok(performance.now() - t0 < 3000);
  });
});

describe('memory sizes', () => {
  test('binary and decimal units, a bare K/M/G/T binary', () => {
    assert.equal(parseMemorySize('80GiB'), 80 * GiB);
    assert.equal(parseMemorySize('80 GiB'), 80 * GiB);
    assert.equal(parseMemorySize('80Gi'), 80 * GiB);
    assert.equal(parseMemorySize('80GB'), 80e9);
    assert.equal(parseMemorySize('80gb'), 80e9);
    assert.equal(parseMemorySize('24G'), 24 * GiB);
    assert.equal(parseMemorySize('512MiB'), 512 * 2 ** 20);
    assert.equal(parseMemorySize('1.5TiB'), 1.5 * 2 ** 40);
    assert.equal(parseMemorySize('1000B'), 1000);
  });

  test('clear errors', () => {
    assert.throws(() => parseMemorySize('80'), /"80" has no unit: give a number and a unit, e\.g\. 80GiB/);
    assert.throws(() => parseMemorySize('80 gigs'), /unknown unit "gigs"/);
    assert.throws(() => parseMemorySize('-1GB'), /is not a memory size/);
    assert.throws(() => parseMemorySize(''), /is not a memory size/);
    assert.throws(() => parseMemorySize('0GB'), /not a positive memory size/);
  });
});
