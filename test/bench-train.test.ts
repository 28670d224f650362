/**
 * `vitlens bench --train`: every attention and block of a tiny config as a training step on ORT
 * CPU, the TypeScript reference and TF.js's CPU backend (and the user's PyTorch where this machine
 * has one), each step's every output — the layer output, d/dx and each parameter gradient — equal to
 * the float64 reference; the forward/backward MACs split equal to what graphCost gives on a training
 * graph built here independently; AdamW on the op set against a scalar transcription of
 * torch.optim.AdamW's update (and torch's own, where torch is here). The CLI runs from source, so
 * no bundle build is needed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { BenchCase, BenchReport } from '../protocol/results';
import { gradients } from '../server/core/engine/autodiff';
import { attentionLayer, attentionPrefix, block, type LayerContext } from '../server/core/engine/blocks';
import { graphCost } from '../server/core/engine/cost';
import { Graph } from '../server/core/engine/graph';
import { mapWeights, ReferenceRuntime } from '../server/core/engine/lowerings/reference';
import {
  adamw,
  adamwScalars,
  adamwStateKeys,
  ADAMW_DEFAULTS,
  timmWeightDecay,
  type AdamWOptions,
} from '../server/core/engine/optimizer';
import { ATTENTION_KINDS, type AttentionKind, type ModelSpec } from '../server/core/models/spec';
import { numel } from '../server/core/shape';
import { UsageError } from '../server/cli/args';
import { bench } from '../server/cli/commands/bench';
import { openRunner } from '../server/runtimes/open-runner';
import { probeDevices } from '../server/runtimes/probe';
import { ROOT, specOf } from './helpers/fixtures';
import { values } from './helpers/op-cases';

const TINY = [
  'embed_dims: [8, 12, 16, 16]',
  'num_heads: [2, 2, 2, 2]',
  'depths: [1, 1, 1, 1]',
  'mlp_ratios: [2, 2, 2, 2]',
  'sr_ratios: [2, 2, 1, 1]',
  'attention: [soft, soft, softmax, softmax]',
  'performer_features: 6',
  'nystrom_iterations: 6',
  'linformer_k: 4',
  'num_classes: 5',
  'newton_maxiter: 4',
  '',
].join('\n');
const tinySpec: ModelSpec = specOf(TINY);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-bench-train-'));
const tinyConfig = path.join(dir, 'SOFT_train_tiny.yaml');
fs.writeFileSync(tinyConfig, TINY);
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The CLI from source (tsx), so the test needs no bundle. */
function vitlens(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server', 'cli', 'main.ts'), ...args], {
    encoding: 'utf8',
    cwd: ROOT,
    env: { ...process.env, XDG_RUNTIME_DIR: os.tmpdir(), VITLENS_NO_WEBGPU: '1' },
    maxBuffer: 64 << 20,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function benchJson(...args: string[]): BenchReport {
  const r = vitlens('bench', tinyConfig, '--train', '--json', '--quiet', '--no-limits', ...args);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as BenchReport;
}

/** Debian's torch lives beside /usr/bin/python3; a pyenv python3 first on PATH may not have it. */
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/**
 * The case's training step built here from the engine's parts, not through the harness: forward,
 * then gradients from a cotangent input with respect to x and every weight node, and graphCost of
 * the forward output against the whole step.
 */
function independentMacs(attention: AttentionKind, level: 'attention' | 'block', grid: number) {
  const stage = { ...tinySpec.stages[0]!, attention };
  const c: LayerContext = {
    batch: 1,
    gridH: grid,
    gridW: grid,
    tokens: grid * grid,
    distance: 'expanded',
    maxScoreElements: Infinity,
  };
  const g = new Graph();
  const x = g.input('x', [1, c.tokens, stage.dim]);
  const y =
    level === 'block'
      ? block(g, x, stage, 0, tinySpec, c)
      : attentionLayer(g, x, attentionPrefix(stage, 0), stage, tinySpec, c);
  const forward = graphCost(g, [y]).macs;
  const weights = g.weights.filter((w) => !/running_(mean|var)$/.test(w.key)).map((w) => w.tensor);
  const grads = gradients(g, y, [x, ...weights], { seed: g.input('cotangent', y.shape) });
  const step = graphCost(g, [y, ...grads]).macs;
  return { forward, backward: step - forward, keys: new Set(g.weights.map((w) => w.key)).size };
}

describe('vitlens bench --train', () => {
  test('every attention and block of a tiny config on ORT CPU, the reference, TF.js CPU (and PyTorch): each step equal to the float64 reference', () => {
    const out = benchJson(
      '--stage',
      '1',
      '--resolution',
      '32',
      '--no-scaling',
      '--budget-ms',
      '10',
      '--attention',
      'all',
      '--backend',
      'ort-cpu,reference,tfjs-cpu,torch-cpu',
      '--python',
      PYTHON,
    );
    assert.equal(out.mode, 'train');
    assert.deepEqual(out.training && { ...out.training, optimizerSettings: null }, {
      cotangentSeed: 2,
      optimizer: null,
      optimizerSettings: null,
      newtonBackward: 'analytic',
    });
    assert.ok(out.notes.some((n) => n.startsWith('Training steps: every case is one graph')));
    const measured = out.runtimes.map((r) => r.id);
    for (const must of ['ort-cpu', 'reference'] as const)
      assert.ok(measured.includes(must), `${must} missing: ${JSON.stringify(out.unavailable)}`);
    // TF.js is a dependency: always here. PyTorch only where the machine has it.
    assert.ok(measured.includes('tfjs-cpu'), JSON.stringify(out.unavailable));
    for (const u of out.unavailable) assert.equal(u.id, 'torch-cpu', `${u.id}: ${u.reason}`);

    const grid = 8; // 32 px / 4 (stage 1's stride)
    const macs = new Map(
      ATTENTION_KINDS.flatMap((a) =>
        (['attention', 'block'] as const).map((l) => [`${a}/${l}`, independentMacs(a, l, grid)] as const),
      ),
    );
    for (const runtime of measured) {
      for (const attention of ATTENTION_KINDS) {
        for (const level of ['attention', 'block'] as const) {
          const c = out.cases.find(
            (x) => x.runtime === runtime && x.attention === attention && x.level === level,
          ) as BenchCase;
          const what = `${runtime} ${attention} ${level}`;
          assert.ok(c, `${what}: no case`);
          assert.equal(c.status, 'ok', `${what}: ${c.message}`);
          assert.equal(c.mode, 'train');
          assert.match(c.id, /\/train$/);
          const t = c.training!;
          assert.ok(c.timingMs!.n >= 3 && c.timingMs!.p10 <= c.timingMs!.median);
          // Every output checked on its own: the layer's output, d/dx and one gradient per parameter.
          const m = macs.get(`${attention}/${level}`)!;
          assert.equal(t.parameters, m.keys, what);
          assert.equal(t.outputs, 2 + t.parameters, what);
          assert.equal(t.outputErrors?.length, t.outputs, what);
          assert.deepEqual(
            t.outputErrors!.slice(0, 2).map((e) => e.name),
            ['out', 'd/dx'],
          );
          const tol = runtime === 'reference' ? 1e-5 : 1e-4;
          for (const e of t.outputErrors!) assert.ok(e.relError < tol, `${what}: ${e.name} rel. error ${e.relError}`);
          assert.equal(c.relErrorVsReference, Math.max(...t.outputErrors!.map((e) => e.relError)));
          // The MACs split is graphCost's: forward up to the output, backward the rest of the step.
          assert.equal(t.forwardMacs, m.forward, `${what}: forward MACs`);
          assert.equal(t.backwardMacs, m.backward, `${what}: backward MACs`);
          assert.equal(c.macs, m.forward + m.backward);
          assert.equal(t.backwardOverForward, m.backward / m.forward);
          assert.equal(t.newtonBackward, attention === 'soft' || attention === 'soft_norm' ? 'analytic' : null);
          assert.equal(t.optimizer, null);
          // The step's analytic peak holds more than the forward pass's.
          assert.ok(c.memory[0]!.bytes > t.forwardPeakBytes, `${what}: step peak ${c.memory[0]!.bytes}`);
        }
      }
    }
    // Every matmul and patchify conv of these has both operands differentiated: exactly twice the forward.
    const ort = (a: string, l: string) =>
      out.cases.find((c) => c.runtime === 'ort-cpu' && c.attention === a && c.level === l)!.training!;
    for (const a of ['softmax', 'softmax_sr', 'ufo', 'linformer'])
      for (const l of ['attention', 'block']) assert.equal(ort(a, l).backwardOverForward, 2, `${a} ${l}`);
    // Nyströmformer's skip conv: its dX flips the k×k kernel with exchange-matrix products (a few MACs over 2×).
    assert.ok(Math.abs(ort('nystrom', 'attention').backwardOverForward - 2) < 0.01);
    // Performer's random features are constants (dX only); SOFT's analytic inverse skips the iterations.
    assert.ok(ort('performer', 'attention').backwardOverForward < 2);
    assert.ok(ort('soft', 'attention').backwardOverForward < 2);
  });

  test('--optimizer adamw --newton-backward unrolled: updated parameters and state checked too; SOFT differentiated through its iterations', () => {
    const out = benchJson(
      '--optimizer',
      'adamw',
      '--newton-backward',
      'unrolled',
      '--seed',
      '5',
      '--stage',
      '1',
      '--resolution',
      '64',
      '--no-scaling',
      '--budget-ms',
      '10',
      '--attention',
      'soft,ufo',
      '--level',
      'block',
      '--backend',
      'ort-cpu',
    );
    assert.equal(out.training?.optimizer, 'adamw');
    assert.equal(out.training?.newtonBackward, 'unrolled');
    assert.equal(out.training?.cotangentSeed, 5);
    assert.match(out.training?.optimizerSettings ?? '', /^lr 0\.001, betas \(0\.9, 0\.999\), eps 1e-8/);
    for (const c of out.cases) {
      assert.equal(c.status, 'ok', `${c.id}: ${c.message}`);
      const t = c.training!;
      assert.equal(t.optimizer, 'adamw');
      // out, d/dx, then per parameter: its gradient, p', exp_avg', exp_avg_sq'.
      assert.equal(t.outputs, 2 + 4 * t.parameters);
      const updated = t.outputErrors!.filter((e) => e.name.endsWith(' (updated)'));
      assert.equal(updated.length, t.parameters);
      for (const e of t.outputErrors!) {
        // Adam normalises each element by its own gradient's size, so an update carries the relative
        // float32 error of its own gradient element (large where that element is a cancelling sum).
        const tol = e.name.startsWith('d/d') || e.name === 'out' ? 1e-4 : 1e-3;
        assert.ok(e.relError < tol, `${c.id}: ${e.name} rel. error ${e.relError}`);
      }
      // An optimizer adds no MACs: the split is the gradients-only one.
      assert.equal(t.forwardMacs + t.backwardMacs, c.macs);
    }
    const soft = out.cases.find((c) => c.attention === 'soft')!.training!;
    assert.equal(soft.newtonBackward, 'unrolled');
    // Through the iterations every Newton matmul is differentiated too: at least twice the forward.
    assert.ok(soft.backwardOverForward >= 1.95, `unrolled SOFT block ${soft.backwardOverForward}`);
  });

  test('the scaling sweep times training steps: memory exponents ≈ 1 for SOFT and UFO, ≈ 2 for softmax', () => {
    const out = benchJson(
      '--stage',
      '1',
      '--resolution',
      '64',
      '--level',
      'attention',
      '--budget-ms',
      '10',
      '--attention',
      'soft,ufo,softmax',
      '--backend',
      'ort-cpu',
      '--scaling-tokens',
      '196,784,3136',
    );
    const fit = (a: string) => out.scaling.find((s) => s.attention === a)!;
    for (const a of ['soft', 'ufo', 'softmax']) {
      assert.ok(fit(a), `no fit for ${a}`);
      assert.deepEqual(fit(a).tokens, [196, 784, 3136]);
      assert.ok(Number.isFinite(fit(a).timeExponent));
    }
    assert.ok(fit('soft').memoryExponent <= 1.15, `SOFT ${fit('soft').memoryExponent}`);
    assert.ok(fit('ufo').memoryExponent <= 1.15, `UFO ${fit('ufo').memoryExponent}`);
    assert.ok(Math.abs(fit('softmax').memoryExponent - 2) < 0.1, `softmax ${fit('softmax').memoryExponent}`);
    assert.equal(fit('soft').landmarks, 49);
    for (const c of out.cases.filter((x) => x.group === 'scaling')) {
      assert.equal(c.mode, 'train');
      assert.equal(c.status, 'ok', `${c.id}: ${c.message}`);
    }
  });

  test('training options without --train, or an unknown optimizer, are usage errors (nothing probed or run)', async () => {
    const run = async (...args: string[]) =>
      bench.run(
        [tinyConfig, ...args],
        () => {},
        () => {},
      );
    await assert.rejects(
      run('--optimizer', 'adamw'),
      (e: unknown) => e instanceof UsageError && /options of --train/.test(e.message),
    );
    await assert.rejects(
      run('--train', '--optimizer', 'sgd'),
      (e: unknown) => e instanceof UsageError && /--optimizer sgd: expected adamw/.test(e.message),
    );
    await assert.rejects(
      run('--train', '--newton-backward', 'magic'),
      (e: unknown) =>
        e instanceof UsageError && /--newton-backward magic: expected analytic or unrolled/.test(e.message),
    );
  });
});

/**
 * torch.optim.AdamW's single-tensor update (torch 1.13 `_single_tensor_adamw`), element by element
 * in float64: decay, moments, bias corrections from the step, then the step.
 */
function adamwScalar(
  p: number,
  g: number,
  m: number,
  v: number,
  t: number,
  wd: number,
  o: AdamWOptions,
): { p: number; m: number; v: number } {
  let param = p * (1 - o.lr * wd);
  const expAvg = m * o.beta1 + g * (1 - o.beta1);
  const expAvgSq = v * o.beta2 + g * g * (1 - o.beta2);
  const biasCorrection1 = 1 - o.beta1 ** t;
  const biasCorrection2 = 1 - o.beta2 ** t;
  const stepSize = o.lr / biasCorrection1;
  const denom = Math.sqrt(expAvgSq) / Math.sqrt(biasCorrection2) + o.eps;
  param -= (stepSize * expAvg) / denom;
  return { p: param, m: expAvg, v: expAvgSq };
}

describe('AdamW on the op set', () => {
  const params = [
    { key: 'blocks.0.fc.weight', shape: [6, 5] },
    { key: 'blocks.0.fc.bias', shape: [6] },
    { key: 'blocks.0.norm.weight', shape: [5] },
    { key: 'blocks.0.attn.gamma', shape: [1, 2, 1, 1] },
  ];

  /** An AdamW graph over `params`: parameters and state as weights, gradients as inputs. */
  function adamwGraph(o: Partial<AdamWOptions>, seed: number) {
    const g = new Graph();
    const weights = new Map<string, { shape: number[]; data: Float64Array }>();
    const inputs: Record<string, Float64Array> = {};
    const list = params.map(({ key, shape }, i) => {
      const n = numel(shape);
      const param = g.weight(key, shape);
      const grad = g.input(`grad.${key}`, shape);
      weights.set(key, { shape, data: Float64Array.from(values(n, seed + 10 * i, -0.5, 0.5)) });
      inputs[`grad.${key}`] = Float64Array.from(values(n, seed + 10 * i + 1, -2, 2));
      const s = adamwStateKeys(key);
      weights.set(s.expAvg, { shape, data: Float64Array.from(values(n, seed + 10 * i + 2, -0.1, 0.1)) });
      // The second moment is a mean of squares: positive, some elements far below the gradient's square.
      const v = values(n, seed + 10 * i + 3, 0, 1).map((u) => (u * u * u) / 10);
      weights.set(s.expAvgSq, { shape, data: Float64Array.from(v) });
      return { key, param, grad };
    });
    const { updates } = adamw(g, list, o);
    return { g, weights, inputs, updates };
  }

  for (const { t, o } of [
    { t: 1, o: {} },
    { t: 10, o: {} },
    { t: 1000, o: { lr: 3e-4, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 } },
  ] as { t: number; o: Partial<AdamWOptions> }[]) {
    test(`step ${t}${Object.keys(o).length ? ', other hyper-parameters' : ''}: the graph's p', m', v' equal the scalar transcription`, () => {
      const { g, weights, inputs, updates } = adamwGraph(o, 100 + t);
      const full: AdamWOptions = { ...ADAMW_DEFAULTS, ...o };
      const feeds = { ...inputs, ...adamwScalars(t, o, (v) => Float64Array.of(v)) };
      const outs = new ReferenceRuntime('float64').run(
        g,
        feeds,
        mapWeights(weights),
        updates.flatMap((u) => [u.param, u.expAvg, u.expAvgSq]),
      );
      updates.forEach((u, i) => {
        const { key, shape } = params[i]!;
        const wd = typeof full.weightDecay === 'number' ? full.weightDecay : full.weightDecay(key, shape);
        assert.equal(u.weightDecay, wd);
        const p = weights.get(key)!.data;
        const m = weights.get(adamwStateKeys(key).expAvg)!.data;
        const v = weights.get(adamwStateKeys(key).expAvgSq)!.data;
        const grad = inputs[`grad.${key}`]!;
        for (let j = 0; j < p.length; j++) {
          const want = adamwScalar(p[j]!, grad[j]!, m[j]!, v[j]!, t, wd, full);
          const got = { p: outs[3 * i]!.data[j]!, m: outs[3 * i + 1]!.data[j]!, v: outs[3 * i + 2]!.data[j]! };
          for (const k of ['p', 'm', 'v'] as const)
            assert.ok(
              Math.abs(got[k] - want[k]) <= 1e-12 * Math.max(1e-3, Math.abs(want[k])),
              `${key}[${j}] ${k}: graph ${got[k]} vs scalar ${want[k]}`,
            );
        }
      });
    });
  }

  test("timm's weight decay: none on biases and 1-D parameters, the rest decayed", () => {
    const wd = timmWeightDecay(0.05);
    assert.deepEqual(
      params.map((p) => wd(p.key, p.shape)),
      [0.05, 0, 0, 0.05],
    );
  });

  test('on ORT CPU in float32: within float32 rounding of the float64 graph', async () => {
    const { g, weights, inputs, updates } = adamwGraph({}, 7);
    const outputs = updates.flatMap((u) => [u.param, u.expAvg, u.expAvgSq]);
    const feeds32 = Object.fromEntries(
      Object.entries({ ...inputs, ...adamwScalars(10) }).map(([k, v]) => [k, Float32Array.from(v)]),
    );
    const ref = new ReferenceRuntime('float64').run(g, feeds32, mapWeights(weights), outputs);
    const report = await probeDevices({ webgpu: false, nvidia: false, pytorch: false });
    const runner = await openRunner('ort-cpu', report);
    try {
      const prepared = await runner.prepare(g, outputs, mapWeights(weights));
      const got = await prepared.run(feeds32);
      await prepared.release();
      got.forEach((o, i) => {
        let diff = 0;
        let scale = 0;
        ref[i]!.data.forEach((r, j) => {
          diff = Math.max(diff, Math.abs(o.data[j]! - r));
          scale = Math.max(scale, Math.abs(r));
        });
        assert.ok(diff <= 1e-5 * scale, `output ${i}: ${diff / scale}`);
      });
    } finally {
      await runner.close();
    }
  });

  test("torch.optim.AdamW's own step, where this machine has torch: the same p', m', v'", (t) => {
    const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      t.skip(`no torch in ${PYTHON}`);
      return;
    }
    const step = 10;
    const { g, weights, inputs, updates } = adamwGraph({}, 11);
    const outs = new ReferenceRuntime('float64').run(
      g,
      { ...inputs, ...adamwScalars(step, {}, (v) => Float64Array.of(v)) },
      mapWeights(weights),
      updates.flatMap((u) => [u.param, u.expAvg, u.expAvgSq]),
    );
    const wd = ADAMW_DEFAULTS.weightDecay as (key: string, shape: readonly number[]) => number;
    // One parameter group per weight decay, as timm builds them; the state as if t − 1 steps were taken.
    const spec = params.map(({ key, shape }) => ({
      shape,
      wd: wd(key, shape),
      p: [...weights.get(key)!.data],
      g: [...inputs[`grad.${key}`]!],
      m: [...weights.get(adamwStateKeys(key).expAvg)!.data],
      v: [...weights.get(adamwStateKeys(key).expAvgSq)!.data],
    }));
    const script = `
import json, sys, torch
spec = json.load(sys.stdin)
out = []
for s in spec:
    p = torch.nn.Parameter(torch.tensor(s["p"], dtype=torch.float64).reshape(s["shape"]))
    p.grad = torch.tensor(s["g"], dtype=torch.float64).reshape(s["shape"])
    opt = torch.optim.AdamW([p], lr=${ADAMW_DEFAULTS.lr}, betas=(${ADAMW_DEFAULTS.beta1}, ${ADAMW_DEFAULTS.beta2}), eps=${ADAMW_DEFAULTS.eps}, weight_decay=s["wd"])
    st = opt.state[p]
    st["step"] = torch.tensor(${step - 1}.0)
    st["exp_avg"] = torch.tensor(s["m"], dtype=torch.float64).reshape(s["shape"])
    st["exp_avg_sq"] = torch.tensor(s["v"], dtype=torch.float64).reshape(s["shape"])
    opt.step()
    out.append([p.detach().reshape(-1).tolist(), st["exp_avg"].reshape(-1).tolist(), st["exp_avg_sq"].reshape(-1).tolist()])
print(json.dumps(out))
`;
    const r = spawnSync(PYTHON, ['-c', script], { input: JSON.stringify(spec), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const torch = JSON.parse(r.stdout) as number[][][];
    torch.forEach((three, i) =>
      three.forEach((want, k) =>
        want.forEach((w, j) => {
          const got = outs[3 * i + k]!.data[j]!;
          assert.ok(
            Math.abs(got - w) <= 1e-12 * Math.max(1e-3, Math.abs(w)),
            `${params[i]!.key} [${k}][${j}]: ${got} vs torch ${w}`,
          );
        }),
      ),
    );
  });
});
