/**
 * The backward graphs of engine/autodiff.ts on every runtime found here, and against an
 * independent differentiator.
 *
 * 1. Lowered to ORT CPU, TF.js cpu and the user's PyTorch (CPU, float32): the gradients of
 *    loss = Σ⟨out, c⟩ with respect to every input and weight, for every op case, every attention
 *    and block on a small stage (SOFT with its default Newton gradient, the analytic rule), and the
 *    training step of the tiny fixture model (tiny_soft.pth, the 64×64 input), each within a float32
 *    tolerance of the float64 reference, relative to max |reference| of each gradient.
 * 2. Against torch.autograd: the forward program alone, run by vitlens_torch.py with autograd on
 *    (its `grad` request), differentiated by torch's own derivative formulas in float64; our
 *    backward graph lowered to PyTorch in float64 and run there, and on the float64 reference,
 *    equals it to ≤ 1e-9 relative. SOFT is built with newtonBackward 'unrolled' so both
 *    differentiate the same function (the analytic rule is not the derivative before convergence,
 *    which the check sees).
 *
 * Without a Python that has torch the PyTorch tests are skipped with the reason, unless
 * VITLENS_TORCH_REQUIRED=1 (CI) makes that a failure.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { DeviceReport } from '../protocol/devices';
import { gradients } from '../server/core/engine/autodiff';
import { attentionLayer, block, layerContext } from '../server/core/engine/blocks';
import { Graph, type Tensor } from '../server/core/engine/graph';
import { mapWeights, ReferenceRuntime, type WeightSource } from '../server/core/engine/lowerings/reference';
import { lowerToTorch } from '../server/core/engine/lowerings/torch';
import type { BatchNormMode } from '../server/core/engine/blocks';
import { trainingGraph } from '../server/core/engine/training';
import { ATTENTION_KINDS, type NewtonBackward } from '../server/core/models/spec';
import { numel } from '../server/core/shape';
import { loadCheckpoint } from '../server/inputs/checkpoint/load';
import { openRunner } from '../server/runtimes/open-runner';
import { OnnxSession } from '../server/runtimes/ort/session';
import { probeDevices } from '../server/runtimes/probe';
import type { Runner } from '../server/runtimes/runner';
import { TfjsExecutor } from '../server/runtimes/tfjs/executor';
import { shutdownTfjs } from '../server/runtimes/tfjs/load';
import { float64Of } from '../server/runtimes/child/frames';
import { openTorchAutograd, weightNodes, type TorchAutograd } from '../server/runtimes/torch/autograd';
import { startTorchProcess } from '../server/runtimes/torch/process';
import { FIXTURES, ROOT, specOf } from './helpers/fixtures';
import { cases, maxAbs, values } from './helpers/op-cases';
import { innerProductLoss, randomWeights, smallSpec } from './helpers/gradient-cases';

const REQUIRED = process.env.VITLENS_TORCH_REQUIRED === '1';

// Dawn keeps node alive while its instance exists.
after(() => shutdownTfjs());

/** One probe for the whole file (importing torch takes seconds), started at once. */
const probing: Promise<DeviceReport> = probeDevices({ webgpu: false, nvidia: false });
/**
 * The probe's report, awaited through a promise made where it is awaited: node:test files the tests
 * a suite declares after an `await` under the suite the awaited promise was made in, and the probe's
 * own promise was made at the top level.
 */
async function probed(): Promise<DeviceReport> {
  return await probing;
}

// ---------------------------------------------------------------------------------------------
// What is differentiated.

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

/**
 * A scalar loss of a graph and what it is differentiated with respect to: each entry of `wrt` is
 * one input, or every node of one state_dict key (its gradient is the sum over them).
 */
interface Differentiable {
  name: string;
  graph: Graph;
  loss: Tensor;
  wrt: { name: string; tensors: Tensor[] }[];
  inputs: Record<string, Float32Array>;
  weights: WeightSource;
  /** Our backward graph: one gradient per `wrt` entry, appended to `graph` (set by withGradients). */
  grads: Tensor[];
}

/** Every input, and every weight key (all its nodes), of `g`. */
function allLeaves(g: Graph): Differentiable['wrt'] {
  const keys = [...new Set(g.weights.map((w) => w.key))];
  return [
    ...g.inputs.map(({ name, tensor }) => ({ name, tensors: [tensor] })),
    ...keys.map((key) => ({ name: key, tensors: weightNodes(g, key) })),
  ];
}

/** Appends our backward graph: the gradient of `loss` for each `wrt` entry. */
function withGradients(d: Omit<Differentiable, 'grads'>): Differentiable {
  const flat = d.wrt.flatMap((w) => w.tensors);
  const all = gradients(d.graph, d.loss, flat);
  let i = 0;
  const grads = d.wrt.map((w) => {
    let sum = all[i++]!;
    for (let k = 1; k < w.tensors.length; k++) sum = d.graph.addT(sum, all[i++]!);
    return sum;
  });
  return { ...d, grads };
}

function opCase(k: number): Differentiable {
  const c = cases()[k]!;
  return withGradients({
    name: c.name,
    graph: c.graph,
    loss: innerProductLoss(c.graph, c.outputs, 1000 + k),
    wrt: allLeaves(c.graph),
    inputs: c.inputs,
    weights: mapWeights(c.weights),
  });
}

/** Stage 1 of the small spec (4×4 grid, batch 2): one attention layer or one whole block. */
function layerCase(attention: string, level: 'attention' | 'block', newtonBackward?: NewtonBackward): Differentiable {
  const spec = smallSpec(attention);
  const stage = spec.stages[0]!;
  const c = { ...layerContext(stage, 4, 2), ...(newtonBackward ? { newtonBackward } : {}) };
  const g = new Graph();
  const x = g.input('x', [2, c.tokens, stage.dim]);
  const y = level === 'block' ? block(g, x, stage, 0, spec, c) : attentionLayer(g, x, 'block1.0.attn', stage, spec, c);
  return withGradients({
    name: `${attention} ${level}`,
    graph: g,
    loss: innerProductLoss(g, [y], 77),
    wrt: allLeaves(g),
    inputs: { x: values(numel(x.shape), 5, -1, 1) },
    weights: mapWeights(randomWeights(g, 3)),
  });
}

const tiny = {
  spec: specOf(fs.readFileSync(path.join(ROOT, 'fixtures', 'configs', 'tiny_soft.vitlens.yaml'), 'utf8')),
  checkpoint: loadCheckpoint(path.join(FIXTURES, 'ref', 'tiny_soft.pth')),
  image: (() => {
    const bin = fs.readFileSync(path.join(FIXTURES, 'ref', 'tiny_input_64x64.bin'));
    return new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  })(),
};

/** The image mirrored left to right: a second, different image of the same statistics. */
function mirrored(image: Float32Array, side: number): Float32Array {
  const out = new Float32Array(image.length);
  for (let row = 0; row < image.length / side; row++)
    for (let col = 0; col < side; col++) out[row * side + col] = image[row * side + side - 1 - col]!;
  return out;
}

/**
 * The tiny fixture model's training step (cross-entropy on `labels`): gradients for every
 * parameter (state_dict key) and the image. Batch 1 is the fixture input; batch 2 adds its mirror.
 */
function modelCase(labels: number[], o: { newtonBackward?: NewtonBackward; batchNormMode?: BatchNormMode } = {}) {
  const g = new Graph();
  const t = trainingGraph(g, tiny.spec, { labels, inputGradient: true, resolution: 64, ...o });
  const image = labels.length === 1 ? tiny.image : Float32Array.from([...tiny.image, ...mirrored(tiny.image, 64)]);
  const d: Differentiable = {
    name: `tiny_soft training step, batch ${labels.length}, BatchNorm ${o.batchNormMode ?? 'eval'}, Newton ${o.newtonBackward ?? tiny.spec.newton.backward}`,
    graph: g,
    loss: t.loss,
    wrt: [
      ...t.parameters.map((p) => ({ name: p.key, tensors: weightNodes(g, p.key) })),
      { name: 'image', tensors: [t.model.input] },
    ],
    inputs: { image },
    weights: { get: (key) => tiny.checkpoint.tensors.get(key) as never },
    grads: [...t.parameters.map((p) => p.grad), t.inputGradient!],
  };
  return d;
}

/** Built once: the reference's run of the model's backward graph is the slowest step of the file. */
const model = (() => {
  let analytic: Differentiable | undefined;
  return { analytic: () => (analytic ??= modelCase([3])) };
})();

// ---------------------------------------------------------------------------------------------
// Comparison.

interface Values {
  shape: readonly number[];
  data: ArrayLike<number>;
}

/**
 * The largest |got − want| / max |want| over the gradient tensors, with the tensor it is at. A
 * gradient that is mathematically zero (a conv bias before a batch-statistics BatchNorm) has only
 * rounding in it, so `floor` (a fraction of the largest gradient of all) bounds the denominator.
 */
function worstRelative(d: Differentiable, got: Values[], want: Values[], floor = 0): { rel: number; at: string } {
  assert.equal(got.length, want.length);
  const overall = Math.max(...want.map((w) => maxAbs(w.data)));
  let worst = { rel: 0, at: '' };
  want.forEach((w, i) => {
    const o = got[i]!;
    const name = d.wrt[i]!.name;
    assert.deepEqual([...o.shape], [...w.shape], `${d.name}: gradient of ${name}: shape`);
    let diff = 0;
    for (let j = 0; j < w.data.length; j++) diff = Math.max(diff, Math.abs(o.data[j]! - w.data[j]!));
    assert.ok(Number.isFinite(diff), `${d.name}: gradient of ${name} is not finite`);
    const rel = diff / Math.max(maxAbs(w.data), floor * overall, Number.MIN_VALUE);
    if (rel > worst.rel) worst = { rel, at: name };
  });
  return worst;
}

const reference = new ReferenceRuntime('float64');
const referenceGradients = new WeakMap<Differentiable, Values[]>();
function referenceOf(d: Differentiable): Values[] {
  let r = referenceGradients.get(d);
  if (!r) referenceGradients.set(d, (r = reference.run(d.graph, d.inputs, d.weights, d.grads)));
  return r;
}

/** The worst relative error measured per runtime and kind of case, reported at the end. */
const measured = new Map<string, number>();
function record(t: TestContext, key: string, w: { rel: number; at: string }): void {
  measured.set(key, Math.max(measured.get(key) ?? 0, w.rel));
  t.diagnostic(`worst ${w.rel.toExponential(2)}${w.at ? ` (at ${w.at})` : ''}`);
}

// ---------------------------------------------------------------------------------------------
// 1. Every runtime against the float64 reference.

/** Float32 tolerances, relative to max |reference| of each gradient (measured worst in the report). */
const TOL = { op: 5e-6, layer: 2e-5, model: 5e-5 };

type Run = (d: Differentiable) => Promise<Values[]>;

const runtimes: { id: string; run: () => Promise<Run | string>; close?: () => Promise<void> }[] = (() => {
  let torch: Runner | undefined;
  return [
    {
      id: 'ort-cpu',
      run: async () => async (d) => {
        const s = await OnnxSession.create(d.graph, d.grads, d.weights, { ep: 'cpu' });
        try {
          return await s.run(d.inputs);
        } finally {
          await s.release();
        }
      },
    },
    {
      id: 'tfjs-cpu',
      run: async () => async (d) => {
        const ex = await TfjsExecutor.create(d.graph, d.grads, d.weights, { backend: 'cpu' });
        try {
          return await ex.run(d.inputs);
        } finally {
          ex.dispose();
        }
      },
    },
    {
      id: 'torch-cpu',
      run: async () => {
        const report = await probed();
        if (!report.pytorch.available && !REQUIRED) return `no Python with torch here: ${report.pytorch.reason}`;
        torch ??= await openRunner('torch-cpu', report);
        const runner = torch;
        return async (d) => {
          const p = await runner.prepare(d.graph, d.grads, d.weights);
          try {
            return await p.run(d.inputs);
          } finally {
            await p.release();
          }
        };
      },
      close: async () => {
        await torch?.close();
      },
    },
  ];
})();

for (const rt of runtimes) {
  describe(`backward graphs on ${rt.id} against the float64 reference`, async () => {
    const run = await rt.run();
    const skip = typeof run === 'string' ? run : false;
    after(async () => {
      await rt.close?.();
    });
    const check = async (t: TestContext, d: Differentiable, kind: keyof typeof TOL) => {
      const got = await (run as Run)(d);
      const w = worstRelative(d, got, referenceOf(d));
      record(t, `${rt.id} ${kind}`, w);
      assert.ok(w.rel <= TOL[kind], `${d.name} on ${rt.id}: ${w.rel.toExponential(2)} at ${w.at} (tol ${TOL[kind]})`);
    };
    cases().forEach((c, k) => test(`op case: ${c.name}`, { skip }, (t) => check(t, opCase(k), 'op')));
    for (const attention of ATTENTION_KINDS)
      for (const level of ['attention', 'block'] as const)
        test(`${attention} ${level}: d/dx and d/dW`, { skip }, (t) => check(t, layerCase(attention, level), 'layer'));
    test('the tiny fixture model’s training step: every parameter and the image', { skip }, (t) =>
      check(t, model.analytic(), 'model'),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Our backward graphs against torch.autograd on the forward program, in float64.

describe('our backward graphs against torch.autograd (float64)', async () => {
  const report = await probed();
  const skip = report.pytorch.available
    ? false
    : REQUIRED
      ? false
      : `no Python with torch here: ${report.pytorch.reason}`;
  let torch: TorchAutograd;
  before(() => {
    if (!skip) torch = openTorchAutograd(report.pytorch);
  });
  after(async () => {
    await torch?.close();
  });

  const TIGHT = 1e-9;

  /** torch.autograd's gradients against ours run by torch in float64, and ours on the float64 reference. */
  async function check(t: TestContext, d: Differentiable, floor = 0): Promise<void> {
    const autograd = await torch.grad({
      graph: d.graph,
      output: d.loss,
      wrt: d.wrt.map((w) => w.tensors),
      weights: d.weights,
      inputs: d.inputs,
    });
    const ours = await torch.run({ graph: d.graph, outputs: d.grads, weights: d.weights, inputs: d.inputs });
    assert.ok(
      ours.every((o) => o.data instanceof Float64Array) && autograd.every((o) => o.data instanceof Float64Array),
    );
    const onTorch = worstRelative(d, ours, autograd, floor);
    const onReference = worstRelative(d, referenceOf(d), autograd, floor);
    const which = floor ? ` (a gradient under ${floor.toExponential(0)} of the largest measured against that)` : '';
    record(t, `torch.autograd vs ours on torch float64${which}`, onTorch);
    record(t, `torch.autograd vs ours on the reference float64${which}`, onReference);

    assert.ok(onTorch.rel <= TIGHT, `${d.name}: ours on torch ${onTorch.rel.toExponential(2)} at ${onTorch.at}`);
    assert.ok(
      onReference.rel <= TIGHT,
      `${d.name}: ours on the reference ${onReference.rel.toExponential(2)} at ${onReference.at}`,
    );
  }

  cases().forEach((c, k) => test(`op case: ${c.name}`, { skip }, (t) => check(t, opCase(k))));
  for (const attention of ATTENTION_KINDS)
    for (const level of ['attention', 'block'] as const)
      test(`${attention} ${level} (Newton unrolled): d/dx and d/dW`, { skip }, (t) =>
        check(t, layerCase(attention, level, 'unrolled')),
      );

  test('the tiny fixture model’s training step (batch 1, BatchNorm eval, Newton unrolled)', { skip }, (t) =>
    check(t, modelCase([3], { newtonBackward: 'unrolled' })),
  );

  test(
    'the tiny fixture model’s training step (batch 2, BatchNorm on batch statistics, Newton unrolled)',
    { skip },
    (t) =>
      // The patch embeddings' conv biases come right before such a BatchNorm: their gradient is zero
      // but for rounding (|grad| ≤ 3e-17 in both), so errors there are measured against the largest gradient.
      check(t, modelCase([3, 7], { newtonBackward: 'unrolled', batchNormMode: 'train' }), 1e-6),
  );

  test(
    'the check has teeth: the analytic Newton gradient is not the derivative at 4 iterations',
    { skip },
    async (t) => {
      const d = layerCase('soft', 'attention', 'analytic');
      const autograd = await torch.grad({
        graph: d.graph,
        output: d.loss,
        wrt: d.wrt.map((w) => w.tensors),
        weights: d.weights,
        inputs: d.inputs,
      });
      const w = worstRelative(d, referenceOf(d), autograd);
      assert.ok(w.rel > 1e-3, `analytic vs autograd: ${w.rel.toExponential(2)} at ${w.at}`);
      t.diagnostic(`analytic vs autograd: ${w.rel.toExponential(2)} at ${w.at}`);
    },
  );

  test('grad refuses what it cannot differentiate', { skip }, async () => {
    const g = new Graph();
    const x = g.input('x', [2, 2]);
    const y = g.unary('exp', x);
    const loss = g.reduce('sum', g.reshape(y, [1, 4]), -1);
    const base = { graph: g, weights: mapWeights(new Map()), inputs: { x: [1, 2, 3, 4] } };
    await assert.rejects(torch.grad({ ...base, output: y, wrt: [x] }), /output has shape \[2,2\], not one value/);
    await assert.rejects(torch.grad({ ...base, output: loss, wrt: [y] }), /tensor 1 is a unary node/);
    const [dx] = await torch.grad({ ...base, output: loss, wrt: [x] });
    [1, 2, 3, 4].forEach((v, i) => assert.ok(Math.abs(dx!.data[i]! - Math.exp(v)) <= 1e-15 * Math.exp(v)));

    // The Python side checks the same for callers of the request itself.
    const proc = startTorchProcess('torch', report.pytorch.python!.executable, 1);
    try {
      const { program, buffers } = lowerToTorch(g, [loss, y], base.weights, { dtype: 'float64' });
      const handle = (await proc.request({ cmd: 'prepare', device: 'cpu', program }, buffers)).header.handle;
      const grad = (output: number, wrt: number[][]) =>
        proc.request({ cmd: 'grad', handle, inputs: [{ name: 'x' }], output, wrt }, [Float64Array.of(1, 2, 3, 4)]);
      await assert.rejects(grad(2, [[x.id]]), /grad: tensor 2 is not an output of the program/);
      await assert.rejects(grad(y.id, [[x.id]]), /grad: output 1 has 4 values, not one/);
      await assert.rejects(grad(loss.id, [[y.id]]), /grad: tensor 1 is not an input, weight or constant/);
      await assert.rejects(grad(loss.id, [[]]), /grad: an empty group/);
      const answer = await grad(loss.id, [[x.id, x.id]]);
      assert.deepEqual(answer.header.grads, [{ shape: [2, 2] }]);
      assert.ok(Math.abs(float64Of(answer.blobs[0]!)[0]! - 2 * Math.E) < 1e-15, 'a group sums its tensors');
    } finally {
      await proc.close();
    }
  });
});

describe('summary', () => {
  test('worst relative error measured per runtime and kind of case', (t) => {
    for (const [key, rel] of [...measured].sort()) t.diagnostic(`${key}: ${rel.toExponential(2)}`);
  });
});
