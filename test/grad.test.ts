/**
 * `vitlens grad` as a user runs it (the bin script over the bundled CLI) and `vitlens/grad` over a
 * real LSP connection, on the tiny SOFT checkpoint and its image: the loss is the cross-entropy of
 * the logits inference gives (log-softmax computed here), each gradient norm is the directional
 * derivative of the loss along the gradient (central finite differences in float64), the input
 * gradient likewise; the JSON's shape; bad labels and shapes exit 2 naming the flag; too few
 * Newton iterations are reported against the through-iteration gradient.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { GradReport } from '../protocol/grad';
import type { InferReport } from '../protocol/infer';
import { GradRequest } from '../protocol/lsp';
import { Graph } from '../server/core/engine/graph';
import { ReferenceRuntime, type WeightSource } from '../server/core/engine/lowerings/reference';
import { MODEL_INPUT, modelGraph } from '../server/core/engine/model';
import { crossEntropy, trainingGraph } from '../server/core/engine/training';
import { main } from '../server/cli/main';
import { expectedModelTensors } from '../server/jobs/infer/model-weights';
import { loadModelInputs, modelWeights } from '../server/jobs/infer/run';
import { FIXTURES, ROOT, specOf } from './helpers/fixtures';
import { LspClient } from './helpers/lsp';

function vitlens(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vitlens.js'), ...args], {
    encoding: 'utf8',
    cwd: ROOT,
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const TINY = path.join('fixtures', 'configs', 'tiny_soft.vitlens.yaml');
const CHECKPOINT = path.join(FIXTURES, 'ref', 'tiny_soft.pth');
const IMAGE = path.join(FIXTURES, 'ref', 'tiny_image_64x64.png');
const TENSOR = path.join(FIXTURES, 'ref', 'tiny_input_64x64.bin');
const LABEL = 3;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-grad-'));

/** −log softmax(logits)[label], computed here from scratch (log-sum-exp shifted by the maximum). */
function crossEntropyOf(logits: number[], label: number): number {
  const max = Math.max(...logits);
  return max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0)) - logits[label]!;
}

let report: GradReport;
before(() => {
  const r = vitlens('grad', TINY, '--label', String(LABEL), '--json');
  assert.equal(r.status, 0, r.stderr);
  report = JSON.parse(r.stdout) as GradReport;
});

describe('vitlens grad: the loss', () => {
  test('is the cross-entropy of the logits `vitlens infer` gives, against class N', () => {
    const r = vitlens('infer', TINY, '--backend', 'reference', '--json');
    assert.equal(r.status, 0, r.stderr);
    const inferred = JSON.parse(r.stdout) as InferReport;
    const logits = inferred.items[0]!.logits;
    const expected = crossEntropyOf(logits, LABEL);
    // infer's reference runs in float32, grad's in float64.
    assert.ok(Math.abs(report.loss - expected) < 2e-5, `loss ${report.loss} vs cross-entropy ${expected}`);
    assert.ok(Math.abs(report.items[0]!.loss - expected) < 2e-5);
    assert.ok(Math.max(...report.items[0]!.logits.map((v, i) => Math.abs(v - logits[i]!))) < 2e-5);
    assert.equal(report.items[0]!.predicted.index, inferred.items[0]!.top5[0]!.index);
    assert.equal(report.items[0]!.label, LABEL);
  });

  test('text output says the loss, what it is, the prediction, the runtime and dtype, and a line per parameter', () => {
    const r = vitlens('grad', TINY, '--label', String(LABEL));
    assert.equal(r.status, 0, r.stderr);
    const printed = Number(/^loss: (\S+) \(mean over the batch of the cross-entropy/m.exec(r.stdout)![1]);
    assert.ok(Math.abs(printed - report.loss) < 1e-9 * report.loss);
    assert.match(r.stdout, /float64, single thread\) on .* \(float64\)/);
    assert.match(r.stdout, new RegExp(`label ${LABEL} \\(class ${LABEL}\\), loss [\\d.]+; predicted \\d+`));
    assert.match(r.stdout, /mode: eval \(BatchNorm running statistics\); SOFT Newton inverse differentiated analytic/);
    for (const key of ['pos_embed1', 'block1.0.att.mha.W_q.weight', 'head.bias'])
      assert.match(r.stdout, new RegExp(`^${key.replace(/\./g, '\\.')}\\s+\\S+\\s+\\d\\.\\d{3}e[-+]\\d+`, 'm'));
    assert.match(r.stdout, /^input gradient: ‖∂L\/∂x‖ \S+, max \|∂L\/∂x\| \S+; per channel/m);
  });
});

describe('vitlens grad: the gradient norms are directional derivatives (central differences, float64)', () => {
  const spec = specOf(fs.readFileSync(path.join(ROOT, TINY), 'utf8'));
  const ref = new ReferenceRuntime('float64');
  // Small: the loss curves sharply along stage 1's SOFT weights (a Newton inverse of 4 landmarks'
  // kernel matrix), where h = 1e-4 is already 1 % off; float64 rounding stays ~1e-9 relative here.
  const H = 1e-6;

  /** The loss's value with the weights `w`, the input `x`: a forward graph of its own (no backward). */
  async function lossFunction() {
    const inputs = await loadModelInputs({ model: spec, checkpoint: CHECKPOINT, images: [IMAGE] });
    const g = new Graph();
    const m = modelGraph(g, inputs.spec, { height: 64, width: 64, batch: 1 });
    const loss = crossEntropy(g, m.logits, [LABEL]);
    const weights = modelWeights(g, inputs.spec, { loaded: inputs.checkpoint!, file: CHECKPOINT }, 0, []);
    const value = (w: WeightSource, x: ArrayLike<number>) => ref.run(g, { [MODEL_INPUT]: x }, w, [loss])[0]!.data[0]!;
    return { inputs, weights, value };
  }

  /** The gradients the engine derives for `keys` and the input (the direction of each check). */
  function gradientsOf(inputs: Awaited<ReturnType<typeof loadModelInputs>>, keys: string[]) {
    const g = new Graph();
    const tg = trainingGraph(g, inputs.spec, { labels: [LABEL], inputGradient: true, height: 64, width: 64 });
    const weights = modelWeights(g, inputs.spec, { loaded: inputs.checkpoint!, file: CHECKPOINT }, 0, []);
    const wanted = keys.map((k) => tg.parameters.find((p) => p.key === k)!.grad);
    const out = ref.run(g, { [MODEL_INPUT]: inputs.input }, weights, [...wanted, tg.inputGradient!]);
    return { params: out.slice(0, keys.length).map((o) => o.data), input: out[keys.length]!.data };
  }

  const unit = (v: ArrayLike<number>) => {
    const n = Math.hypot(...Array.from(v));
    return Float64Array.from(v, (x) => x / n);
  };
  const along = (base: ArrayLike<number>, d: Float64Array, h: number) =>
    Float64Array.from(base, (v, i) => v + h * d[i]!);

  // A head, an MLP, SOFT attention weights read through the Newton inverse, a BatchNorm scale, a landmark conv, a position embedding.
  const KEYS = [
    'head.weight',
    'block4.0.mlp.fc1.weight',
    'block1.0.att.mha.W_q.weight',
    'block2.0.att.mha.attn.Qlandmark_op.weight',
    'patch_embed1.proj.1.weight',
    'pos_embed2',
  ];

  test(`${KEYS.length} parameters and the input: (L(θ+hd) − L(θ−hd))/2h = ‖∇L‖ along d = ∇L/‖∇L‖`, async (t) => {
    const { inputs, weights, value } = await lossFunction();
    const grads = gradientsOf(inputs, KEYS);
    const worst: string[] = [];
    KEYS.forEach((key, i) => {
      const d = unit(grads.params[i]!);
      const base = weights.get(key)!;
      const shifted = (h: number): WeightSource => ({
        get: (k) => (k === key ? { shape: base.shape, data: along(base.data, d, h) } : weights.get(k)),
      });
      const fd = (value(shifted(H), inputs.input) - value(shifted(-H), inputs.input)) / (2 * H);
      const printed = report.parameters.find((p) => p.key === key)!.gradNorm;
      const rel = Math.abs(fd - printed) / printed;
      worst.push(`${key}: ${printed.toExponential(6)} vs ${fd.toExponential(6)} (rel ${rel.toExponential(1)})`);
      assert.ok(rel < 1e-6, worst.at(-1));
    });
    const d = unit(grads.input);
    const fd = (value(weights, along(inputs.input, d, H)) - value(weights, along(inputs.input, d, -H))) / (2 * H);
    const rel = Math.abs(fd - report.inputGradient.norm) / report.inputGradient.norm;
    assert.ok(rel < 1e-6, `input: ${report.inputGradient.norm} vs ${fd} (rel ${rel})`);
    for (const line of [
      ...worst,
      `input: ${report.inputGradient.norm.toExponential(6)} vs ${fd.toExponential(6)} (rel ${rel.toExponential(1)})`,
    ])
      t.diagnostic(line);
  });
});

describe('vitlens grad --json', () => {
  test('every parameter in state-dict order with its norms; totals, input gradient per channel, Newton check', () => {
    const r = report;
    assert.equal(r.dtype, 'float64');
    assert.equal(r.runtime.id, 'reference');
    assert.equal(r.mode, 'eval');
    assert.equal(r.newtonBackward, 'analytic');
    assert.equal(r.numClasses, 10);
    assert.deepEqual(r.input, { ...r.input, batch: 1, height: 64, width: 64 });
    const spec = specOf(fs.readFileSync(path.join(ROOT, TINY), 'utf8'));
    const expected = expectedModelTensors(spec).filter((t) => t.role === 'parameter');
    assert.deepEqual(
      r.parameters.map((p) => p.key),
      expected.map((t) => t.key),
    );
    assert.equal(r.totals.elements, 266441, 'the fixture has 266,441 parameters');
    for (const p of r.parameters) {
      assert.ok(p.gradNorm > 0 && Number.isFinite(p.gradNorm), p.key);
      assert.ok(p.gradMaxAbs <= p.gradNorm && p.gradNorm <= p.gradMaxAbs * Math.sqrt(p.elements) * (1 + 1e-12), p.key);
      if (p.paramNorm > 0) assert.ok(Math.abs(p.ratio! - p.gradNorm / p.paramNorm) < 1e-12 * p.ratio!, p.key);
      else assert.equal(p.ratio, null);
      assert.equal(p.flag, null, p.key);
    }
    assert.equal(r.parameters.find((p) => p.key === 'block2.0.att.mha.W_q.weight')!.stage, 2);
    assert.equal(r.parameters.find((p) => p.key === 'cls_token')!.stage, 4);
    assert.equal(r.parameters.find((p) => p.key === 'head.weight')!.stage, null);
    const sorted = r.parameters.map((p) => p.gradNorm).sort((a, b) => a - b);
    assert.equal(sorted.length, 119);
    assert.equal(r.totals.medianGradNorm, sorted[59], 'the median of 119 norms is the 60th');
    assert.ok(
      Math.abs(Math.hypot(...r.parameters.map((p) => p.gradNorm)) - r.totals.gradNorm) < 1e-12 * r.totals.gradNorm,
    );
    const ig = r.inputGradient;
    assert.equal(ig.channelNorms.length, 3);
    assert.ok(Math.abs(Math.hypot(...ig.channelNorms) - ig.norm) < 1e-12 * ig.norm);
    assert.ok(ig.maxAbs > 0 && ig.maxAbs <= ig.norm);
    // 20 iterations on the tiny model's few landmarks: converged, so the analytic gradient is the derivative.
    assert.deepEqual(
      r.newton.map((n) => [n.stage, n.attention, n.iterations]),
      [
        [1, 'soft', 20],
        [2, 'soft', 20],
        [3, 'soft', 20],
      ],
    );
    for (const n of r.newton) assert.ok(n.relativeDifference < 1e-10, `stage ${n.stage}: ${n.relativeDifference}`);
    assert.deepEqual(r.warnings, []);
    assert.match(r.rule, /1e\+3 × \(exploding\).*1e-6 × \(vanishing\).*NaN\/Inf/);
  });

  test('--train-mode: BatchNorm batch statistics; the conv biases they cancel are flagged vanishing, with why', () => {
    const r = vitlens('grad', TINY, '--label', String(LABEL), '--train-mode', '--json');
    assert.equal(r.status, 0, r.stderr);
    const t = JSON.parse(r.stdout) as GradReport;
    assert.equal(t.mode, 'train');
    assert.ok(Math.abs(t.loss - report.loss) > 1e-4, 'batch statistics change the forward pass');
    const flagged = t.warnings.filter((w) => w.kind === 'vanishing').map((w) => w.key);
    assert.deepEqual(flagged, [
      'patch_embed1.proj.0.bias',
      'patch_embed1.proj.3.bias',
      'patch_embed1.proj.6.bias',
      'patch_embed2.proj.0.bias',
      'patch_embed3.proj.0.bias',
      'patch_embed4.proj.0.bias',
    ]);
    assert.match(t.warnings[0]!.message, /BatchNorm with batch statistics .* subtracts this bias/);
  });
});

describe('vitlens grad: too few Newton iterations', () => {
  test('newton_maxiter: 2: the analytic gradient is far from the through-iteration one, and a warning names the stage', () => {
    const config = path.join(scratch, 'few.vitlens.yaml');
    fs.writeFileSync(
      config,
      fs.readFileSync(path.join(ROOT, TINY), 'utf8').replace(/^(checkpoint|images):.*\n/gm, '') + 'newton_maxiter: 2\n',
    );
    const r = vitlens('grad', config, '--checkpoint', CHECKPOINT, '--image', IMAGE, '--label', String(LABEL));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /stage 1 \(soft, variant A, 2 iterations, 31 parameters\): \d\.\d+e-2/);
    assert.match(
      r.stdout,
      /^warning: stage 1: the analytic Newton gradient differs from the gradient through the 2 iterations by [\d.]+ %/m,
    );
  });
});

describe('vitlens grad: bad input exits 2 with a message naming the flag', () => {
  const cases: [string, string[], RegExp][] = [
    [
      'a class the model has not',
      ['--label', '10'],
      /--label 10: not a class of the model, which has 10 classes \(0…9\)/,
    ],
    ['a label that is not an index', ['--label', 'cat'], /--label must be a class index/],
    ['no label', [], /grad needs --label N/],
    [
      'a shape of three dimensions',
      ['--label', '1', '--input-tensor', TENSOR, '--shape', '1,3,64'],
      /--shape needs 4 dimensions B,C,H,W, got 3/,
    ],
    [
      'a shape with the wrong channels',
      ['--label', '1', '--input-tensor', TENSOR, '--shape', '1,4,64,64'],
      /--shape 1,4,64,64: the model takes 3 channels/,
    ],
    [
      'a shape the file does not hold',
      ['--label', '1', '--input-tensor', TENSOR, '--shape', '2,3,64,64'],
      /tiny_input_64x64\.bin: 49152 bytes, but shape \[2, 3, 64, 64\] of float32 needs 98304/,
    ],
    ['two labels for one image', ['--label', '1,2'], /--label: 2 labels for a batch of 1/],
    ['an unknown runtime', ['--label', '1', '--runtime', 'tpu'], /--runtime tpu: expected one of/],
  ];
  // In process (the CLI's main, as bin/vitlens.js calls it): these fail before any computation.
  for (const [what, args, message] of cases)
    test(what, async () => {
      const out: string[] = [];
      const err: string[] = [];
      const status = await main(
        ['grad', path.join(ROOT, TINY), ...args],
        (s) => void out.push(s),
        (s) => void err.push(s),
      );
      assert.equal(status, 2, out.join('\n'));
      assert.match(err.join('\n'), message);
    });
});

describe('vitlens/grad over LSP', () => {
  let client: LspClient;
  const uri = LspClient.uriOf(path.join(ROOT, TINY));
  before(async () => {
    client = await LspClient.start();
    await client.open(uri, fs.readFileSync(path.join(ROOT, TINY), 'utf8'));
  });
  after(async () => {
    await client.stop();
  });

  test("the config's checkpoint and image: the CLI's numbers, in a worker", async () => {
    const r = await client.conn.sendRequest(GradRequest, { uri, labels: [LABEL] });
    assert.equal(r.config, uri);
    assert.equal(r.checkpoint?.file, CHECKPOINT);
    assert.equal(r.loss, report.loss);
    assert.deepEqual(
      r.parameters.map((p) => [p.key, p.gradNorm]),
      report.parameters.map((p) => [p.key, p.gradNorm]),
    );
    assert.deepEqual(r.inputGradient, report.inputGradient);
  });

  test('a bad label is an error naming it, and the server answers the next request', async () => {
    await assert.rejects(client.conn.sendRequest(GradRequest, { uri, labels: [42] }), /label 42: not a class/);
    const again = await client.conn.sendRequest(GradRequest, { uri, labels: [LABEL], newtonBackward: 'unrolled' });
    assert.equal(again.newtonBackward, 'unrolled');
    assert.deepEqual(again.newton, [], 'nothing to compare when the gradient goes through the iterations');
    // Converged (20 iterations): through the iterations is the analytic gradient, to rounding.
    again.parameters.forEach((p, i) => {
      const a = report.parameters[i]!;
      assert.equal(p.key, a.key);
      assert.ok(Math.abs(p.gradNorm - a.gradNorm) <= 1e-10 * a.gradNorm, `${p.key}: ${p.gradNorm} vs ${a.gradNorm}`);
    });
  });
});
