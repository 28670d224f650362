/**
 * The ONNX lowering run on onnxruntime-node (CPU and WebGPU EPs) against the float64
 * reference runtime, op by op, plus UFO attention against the official outputs (ufo.json).
 * WebGPU runs on whatever Vulkan driver is present (lavapipe on the dev machines); set
 * VITLENS_NO_WEBGPU=1 to skip those tests where there is no Vulkan at all.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { onnx } from 'onnx-proto';
import { ufoAttention } from '../server/core/engine/attention/ufo';
import { DEFAULT_MAX_STORAGE_BUFFER_BINDING_SIZE, lowerGraph } from '../server/core/engine/lowerings/onnx';
import {
  readOrtProfile,
  replayTensorLiveness,
  summarizeOrtProfile,
  type TraceEvent,
  type OrtProfileSummary,
} from '../server/runtimes/ort/profile';
import { OnnxSession, serializedWebGpuRun, type OnnxOutput } from '../server/runtimes/ort/session';
import {
  ReferenceRuntime,
  mapWeights,
  type RefTensor,
  type WeightSource,
} from '../server/core/engine/lowerings/reference';
import { Graph, type Tensor } from '../server/core/engine/graph';
import { numel } from '../server/core/shape';
import { readJson } from './helpers/fixtures';

const EPS = ['cpu', 'webgpu'] as const;
type Ep = (typeof EPS)[number];
const NO_WEBGPU = process.env.VITLENS_NO_WEBGPU === '1';
const skipFor = (ep: Ep) =>
  ep === 'webgpu' && NO_WEBGPU ? 'VITLENS_NO_WEBGPU=1: no Vulkan adapter for the WebGPU EP' : false;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-onnx-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

/** Deterministic values in [lo, hi), already float32 so the float64 reference sees the very inputs ORT sees. */
function values(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  });
}

interface Diff {
  maxAbs: number;
  /** Relative error over elements with |expected| ≥ 1e-3 (smaller ones are judged by maxAbs). */
  maxRel: number;
}

/** Asserts |got − want| ≤ atol + rtol·|want| everywhere and returns the max abs / rel diff. */
function compare(got: OnnxOutput, want: RefTensor, tol: { atol: number; rtol: number }, what: string): Diff {
  assert.deepEqual(got.shape, [...want.shape], `${what}: shape`);
  assert.equal(got.data.length, want.data.length, `${what}: length`);
  const d: Diff = { maxAbs: 0, maxRel: 0 };
  for (let i = 0; i < want.data.length; i++) {
    const w = want.data[i]!;
    const e = Math.abs(got.data[i]! - w);
    assert.ok(
      e <= tol.atol + tol.rtol * Math.abs(w),
      `${what}[${i}]: got ${got.data[i]}, want ${w} (|diff| ${e}, tol ${tol.atol} + ${tol.rtol}·|want|)`,
    );
    d.maxAbs = Math.max(d.maxAbs, e);
    if (Math.abs(w) >= 1e-3) d.maxRel = Math.max(d.maxRel, e / Math.abs(w));
  }
  return d;
}

/** Max diffs per case and EP, printed at the end so a run documents the measured agreement. */
const measured: Record<string, Partial<Record<Ep, Diff>>> = {};
after(() => {
  const cell = (ep: Ep, d: Diff | undefined) =>
    d ? `${ep}: abs ${d.maxAbs.toExponential(1)} rel ${d.maxRel.toExponential(1)}` : `${ep}: –`;
  const rows = Object.entries(measured).map(
    ([k, v]) => `${k.padEnd(28)} ${EPS.map((ep) => cell(ep, v[ep])).join('   ')}`,
  );
  console.log(`max diff vs float64 reference:\n${rows.join('\n')}`);
});

// One graph holds every op case (each its own inputs and output), so each EP compiles and
// runs once: WebGPU shader compilation on lavapipe costs ~0.1–1 s per session.
interface Case {
  name: string;
  out: Tensor;
  tol?: { atol: number; rtol: number };
}
const TIGHT = { atol: 1e-6, rtol: 1e-6 };
const g = new Graph();
const feeds: Record<string, Float32Array> = {};
const weightMap = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>();
let seed = 1;
function input(name: string, shape: number[], lo = -1, hi = 1): Tensor {
  feeds[name] = values(numel(shape), seed++, lo, hi);
  return g.input(name, shape);
}
function weight(key: string, shape: number[], lo = -1, hi = 1): Tensor {
  weightMap.set(key, { shape, data: Array.from(values(numel(shape), seed++, lo, hi)) });
  return g.weight(key, shape);
}
const weights: WeightSource = mapWeights(weightMap);
const cases: Case[] = [];

{
  const a = input('bin_a', [2, 3, 4]);
  const b = input('bin_b', [3, 1]);
  const c = input('bin_c', [4], 0.5, 2);
  cases.push({ name: 'add (broadcast)', out: g.addT(a, b) });
  cases.push({ name: 'sub (broadcast)', out: g.sub(b, a) });
  cases.push({ name: 'mul (broadcast)', out: g.mul(a, c) });
  cases.push({ name: 'div (broadcast)', out: g.div(a, c) });
  cases.push({ name: 'greater (float mask)', out: g.binary('greater', a, b) });
  // Ties must give 0 (strictly greater), which random inputs would never exercise.
  const ties = g.input('bin_ties', [2, 3]);
  feeds.bin_ties = Float32Array.of(-1, 0, 1, 0.5, 2, -0.5);
  cases.push({ name: 'greater (ties → 0)', out: g.binary('greater', ties, g.constant([0, 0, 1], [3], 'thr')) });
  // A constant operand: the same values reach ORT as an initializer (exact in float32).
  cases.push({ name: 'constant operand', out: g.mul(a, g.constant([0.5, -2, 0.25, 4], [4], 'k')) });
}
{
  const x = input('un_x', [3, 5], -3, 3);
  const pos = input('un_pos', [3, 5], 0.1, 4);
  for (const fn of ['exp', 'erf', 'tanh', 'neg', 'square', 'abs', 'relu'] as const)
    cases.push({ name: `unary ${fn}`, out: g.unary(fn, x) });
  cases.push({ name: 'unary sqrt', out: g.unary('sqrt', pos) });
  cases.push({ name: 'unary reciprocal', out: g.unary('reciprocal', pos) });
  cases.push({ name: 'scale', out: g.scale(x, 0.3) });
}
{
  cases.push({
    name: 'matmul (batch broadcast)',
    out: g.matmul(input('mm_a', [2, 1, 3, 5]), input('mm_b', [4, 5, 6])),
  });
  cases.push({ name: 'matmul 2-D × 3-D', out: g.matmul(input('mm_c', [3, 5]), input('mm_d', [2, 5, 4])) });
}
{
  const x = input('red_x', [2, 5, 3], -2, 2);
  cases.push({ name: 'reduce sum (axis 1)', out: g.reduce('sum', x, 1) });
  cases.push({ name: 'reduce max (axis -1)', out: g.reduce('max', x, -1) });
  cases.push({ name: 'reduce sumSquares (axis 0)', out: g.reduce('sumSquares', x, 0) });
  cases.push({ name: 'transpose [2,0,3,1]', out: g.transpose(input('tr_x', [2, 3, 4, 5]), [2, 0, 3, 1]) });
  cases.push({ name: 'reshape', out: g.reshape(x, [5, 6]) });
  cases.push({ name: 'slice (axis 1)', out: g.slice(x, 1, 1, 4) });
  cases.push({ name: 'concat (axis 1)', out: g.concat([x, g.slice(x, 1, 0, 2), input('cat_y', [2, 1, 3])], 1) });
}
{
  // Offset by 40 so a softmax that skips the max subtraction would overflow nothing but still lose digits.
  cases.push({ name: 'softmax', out: g.softmax(input('sm_x', [3, 7], 36, 44)) });
  const x = input('ln_x', [2, 5, 8], -2, 3);
  cases.push({ name: 'layerNorm', out: g.layerNorm(x, weight('ln.weight', [8]), weight('ln.bias', [8]), 1e-5) });
  cases.push({
    name: 'layerNorm (weight [1,1,8])',
    out: g.layerNorm(x, weight('ln2.weight', [1, 1, 8]), weight('ln2.bias', [1, 8]), 1e-6),
  });
}
const geluX = input('gelu_x', [4, 16], -5, 5);
const geluCases: Case[] = [
  { name: 'gelu erf', out: g.gelu(geluX, 'erf') },
  { name: 'gelu tanh', out: g.gelu(geluX, 'tanh') },
];
cases.push(...geluCases);
{
  const x = input('conv_x', [2, 4, 7, 6]);
  // Products summed over Cin·kh·kw terms in float32: a few ulps of the output.
  const convTol = { atol: 2e-6, rtol: 2e-6 };
  cases.push({
    name: 'conv2d 3×2 s[2,1] p[1,0]',
    out: g.conv2d(x, weight('conv.w', [5, 4, 3, 2]), weight('conv.b', [5]), { stride: [2, 1], pad: [1, 0] }),
    tol: convTol,
  });
  cases.push({
    name: 'conv2d depthwise 3×3 p1',
    out: g.conv2d(x, weight('dw.w', [4, 1, 3, 3]), null, { pad: 1, groups: 4 }),
    tol: convTol,
  });
  cases.push({
    name: 'conv2d groups=2',
    out: g.conv2d(x, weight('gc.w', [6, 2, 2, 2]), weight('gc.b', [6]), { groups: 2 }),
    tol: convTol,
  });
  // 7×6 input, 4×4 stride 4: the remainder rows and columns are dropped (quirk Q10).
  cases.push({
    name: 'conv2d patch 4×4 s4',
    out: g.conv2d(x, weight('pe.w', [3, 4, 4, 4]), weight('pe.b', [3]), { stride: 4 }),
    tol: convTol,
  });
}

const reference = new ReferenceRuntime('float64').run(
  g,
  feeds,
  weights,
  cases.map((c) => c.out),
);

describe('ONNX lowering', () => {
  test('prunes dead nodes, names nodes n<id>_<op>, emits opset 20 with weights as initializers', () => {
    const { bytes, inputNames, outputNames } = lowerGraph(g, [geluCases[1]!.out, cases[0]!.out], weights);
    const model = onnx.ModelProto.decode(bytes);
    assert.deepEqual(
      model.opsetImport.map((o) => [o.domain, Number(o.version)]),
      [['', 20]],
    );
    assert.deepEqual(inputNames.sort(), ['bin_a', 'bin_b', 'gelu_x']);
    assert.deepEqual(outputNames, [`n${geluCases[1]!.out.id}_gelu`, `n${cases[0]!.out.id}_add`]);
    assert.deepEqual((model.graph?.node ?? []).map((n) => n.opType).sort(), ['Add', 'Gelu']);
    assert.equal(model.graph?.initializer?.length ?? 0, 0);
    const withWeights = onnx.ModelProto.decode(
      lowerGraph(g, [cases.find((c) => c.name === 'layerNorm')!.out], weights).bytes,
    );
    assert.deepEqual((withWeights.graph?.initializer ?? []).map((t) => t.name).sort(), ['ln.bias', 'ln.weight']);
  });

  test('rejects opsets without axes-as-input reductions', () => {
    assert.throws(() => lowerGraph(g, [cases[0]!.out], weights, { opset: 17 }), /opset ≥ 18/);
  });
});

/** Builds every case's output on one session per EP, with profiling on (the profile is checked too). */
function opSuite(ep: Ep): void {
  describe(`ORT ${ep} EP vs the float64 reference, per op`, { skip: skipFor(ep) }, () => {
    let got: OnnxOutput[] = [];
    let composedGelu: OnnxOutput[] = [];
    let profile: OrtProfileSummary | undefined;
    before(async () => {
      const s = await OnnxSession.create(
        g,
        cases.map((c) => c.out),
        weights,
        { ep, profile: path.join(TMP, `ops_${ep}`) },
      );
      got = await s.run(feeds);
      const file = await s.release();
      assert.ok(file, 'ORT wrote no profile file');
      profile = readOrtProfile(file);
      // Removed at once so an interrupted run leaves less behind than the after() hook would catch.
      fs.rmSync(file);
      // Opset 18 has no Gelu: the lowering composes it from Erf/Tanh; pruning keeps only the GELU nodes.
      const s18 = await OnnxSession.create(
        g,
        geluCases.map((c) => c.out),
        weights,
        { ep, opset: 18 },
      );
      composedGelu = await s18.run(feeds);
      await s18.release();
    });

    cases.forEach((c, i) => {
      test(c.name, () => {
        (measured[c.name] ??= {})[ep] = compare(got[i]!, reference[i]!, c.tol ?? TIGHT, `${ep} ${c.name}`);
      });
    });
    geluCases.forEach((c, i) => {
      test(`${c.name} composed (opset 18)`, () => {
        const want = reference[cases.indexOf(c)]!;
        (measured[`${c.name} (opset 18)`] ??= {})[ep] = compare(
          composedGelu[i]!,
          want,
          TIGHT,
          `${ep} ${c.name} opset 18`,
        );
      });
    });

    test('profile: per-op kernel times, placement and memory/GPU time', () => {
      assert.ok(profile);
      for (const op of ['Conv', 'Softmax', 'LayerNormalization', 'Gelu'])
        assert.ok(
          (profile.kernelTimeUs[op] ?? 0) > 0,
          `no kernel time for ${op}: ${JSON.stringify(profile.kernelTimeUs)}`,
        );
      if (ep === 'cpu') {
        assert.deepEqual(Object.keys(profile.kernelsByProvider), ['CPUExecutionProvider']);
        assert.ok((profile.cpuArenaPeakBytes ?? 0) > 0);
        assert.equal(profile.gpuTimeUs, undefined);
      } else {
        assert.ok(
          (profile.kernelsByProvider.WebGpuExecutionProvider ?? 0) > 0,
          JSON.stringify(profile.kernelsByProvider),
        );
        assert.ok((profile.gpuTimeUs ?? 0) > 0);
        assert.ok((profile.gpuTimeUsByOp?.Conv ?? 0) > 0, JSON.stringify(profile.gpuTimeUsByOp));
      }
      console.log(`${ep} placement: ${JSON.stringify(profile.kernelsByProvider)}`);
    });
  });
}
for (const ep of EPS) opSuite(ep);

describe('conv2d against hand-computed values (catches a transposed kernel or swapped stride/pad)', () => {
  // x = 1…9 as 3×3; w0 = [[1,2],[3,4]] is not symmetric, w1 picks the right neighbour.
  const hg = new Graph();
  const x = hg.input('x', [1, 1, 3, 3]);
  const w = hg.constant([1, 2, 3, 4, 0, 1, 0, 0], [2, 1, 2, 2], 'w');
  const y = hg.conv2d(x, w, hg.constant([0.5, -1], [2], 'b'));
  const z = hg.conv2d(x, hg.slice(w, 0, 0, 1), null, { stride: [2, 1], pad: [1, 0] });
  const X = Float32Array.from({ length: 9 }, (_, i) => i + 1);
  const want = { y: [37.5, 47.5, 67.5, 77.5, 1, 2, 4, 5], z: [11, 18, 67, 77] };
  for (const ep of EPS) {
    test(ep, { skip: skipFor(ep) }, async () => {
      const s = await OnnxSession.create(hg, [y, z], mapWeights(new Map()), { ep });
      const [oy, oz] = await s.run({ x: X });
      await s.release();
      assert.deepEqual(oy!.shape, [1, 2, 2, 2]);
      assert.deepEqual(Array.from(oy!.data), want.y);
      assert.deepEqual(oz!.shape, [1, 1, 2, 2]);
      assert.deepEqual(Array.from(oz!.data), want.z);
    });
  }
});

describe('outputs that are inputs, weights or repeated', () => {
  for (const ep of EPS) {
    test(ep, { skip: skipFor(ep) }, async () => {
      const og = new Graph();
      const x = og.input('x', [2, 3]);
      const w = og.weight('w', [3]);
      const y = og.addT(x, w);
      const s = await OnnxSession.create(
        og,
        [y, x, w, y],
        mapWeights(new Map([['w', { shape: [3], data: [1, 2, 3] }]])),
        { ep },
      );
      const out = await s.run({ x: Float32Array.of(0, 1, 2, 3, 4, 5), unused: Float32Array.of(9) });
      await s.release();
      assert.deepEqual(
        out.map((o) => [o.shape, Array.from(o.data)]),
        [
          [
            [2, 3],
            [1, 3, 5, 4, 6, 8],
          ],
          [
            [2, 3],
            [0, 1, 2, 3, 4, 5],
          ],
          [[3], [1, 2, 3]],
          [
            [2, 3],
            [1, 3, 5, 4, 6, 8],
          ],
        ],
      );
    });
  }
});

describe('UFO attention vs the official outputs (ufo.json)', () => {
  const ref = readJson('ref/ufo.json');
  const flat = (v: unknown): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number]);
  const { d_model: D, h } = ref.config;
  const [B, N] = ref.config.input_shape as [number, number];
  // Untiled, and in tiles of at least 16 tokens (16, 17, 16) as the CPU runner lowers large inputs.
  const x = Float32Array.from(flat(ref.input));
  for (const [ep, tokenTile] of EPS.flatMap(
    (e) =>
      [
        [e, undefined],
        [e, 16],
      ] as const,
  )) {
    const ug = new Graph();
    const y = ufoAttention(ug, ug.input('x', [B, N, D]), 'attn', {
      batch: B,
      tokens: N,
      dim: D,
      heads: h,
      ...(tokenTile ? { tokenTile } : {}),
    });
    for (const name of Object.keys(ref.cases)) {
      test(`${ep} ${name}${tokenTile ? ` in tiles of ${tokenTile} tokens` : ''}`, { skip: skipFor(ep) }, async () => {
        const c = ref.cases[name];
        const w = new Map(
          Object.entries<unknown>(c.weights).map(([k, v]) => [
            `attn.${k}`,
            { shape: c.weight_shapes[k] as number[], data: flat(v) },
          ]),
        );
        const s = await OnnxSession.create(ug, [y], mapWeights(w), { ep });
        const [out] = await s.run({ x });
        await s.release();
        const expected = flat(c.output_float32);
        // Same bound as test/ufo.test.ts: 4× the official float32-vs-float64 gap.
        const tol = 4 * Math.max(c.max_abs_diff_float32_vs_float64, 1e-7);
        const d = compare(
          out!,
          { shape: [B, N, D], data: Float64Array.from(expected) },
          { atol: tol, rtol: 0 },
          `${ep} UFO ${name}`,
        );
        (measured[`UFO ${name}${tokenTile ? ' tiled' : ''}`] ??= {})[ep] = d;
      });
    }
  }
});

describe('WebGPU oversize guard', () => {
  test(`refuses a tensor above the default ${DEFAULT_MAX_STORAGE_BUFFER_BINDING_SIZE} bytes before touching the GPU`, async () => {
    const bg = new Graph();
    const x = bg.input('scores', [1, 6144, 6144]);
    await assert.rejects(
      OnnxSession.create(bg, [bg.softmax(x)], mapWeights(new Map()), { ep: 'webgpu' }),
      (e: Error) => {
        assert.equal(
          e.message,
          'n0_input "scores" output [1,6144,6144] is 150994944 bytes: onnxruntime WebGPU computes wrong results for tensors above ' +
            'maxStorageBufferBindingSize (134217728 bytes); tile the work',
        );
        return true;
      },
    );
  });

  test('names the first intermediate over a given limit', async () => {
    const bg = new Graph();
    const q = bg.input('q', [1, 64, 8]); // 2 KiB
    const scores = bg.matmul(q, bg.transpose(q, [0, 2, 1])); // 16 KiB
    await assert.rejects(
      OnnxSession.create(bg, [bg.softmax(scores)], mapWeights(new Map()), {
        ep: 'webgpu',
        maxStorageBufferBindingSize: 8192,
      }),
      /^Error: n2_matmul output \[1,64,64\] is 16384 bytes: onnxruntime WebGPU computes wrong results for tensors above maxStorageBufferBindingSize \(8192 bytes\); tile the work$/,
    );
  });
});

test('summarizeOrtProfile sums kernel time per op, counts placement, takes the CPU arena peak and GPU time', () => {
  const s = summarizeOrtProfile([
    { cat: 'Session', name: 'model_run', dur: 999 },
    {
      cat: 'Node',
      name: 'n3_matmul_kernel_time',
      dur: 10,
      args: { op_name: 'MatMul', provider: 'CPUExecutionProvider', mem_in_use_peak: '4096' },
    },
    { cat: 'Node', name: 'n3_matmul_fence_before', dur: 1, args: { op_name: 'MatMul' } },
    {
      cat: 'Node',
      name: 'n5_matmul_kernel_time',
      dur: 5,
      args: { op_name: 'MatMul', provider: 'CPUExecutionProvider', mem_in_use_peak: '1024' },
    },
    {
      cat: 'Node',
      name: 'n6_softmax_kernel_time',
      dur: 7,
      args: { op_name: 'Softmax', provider: 'WebGpuExecutionProvider', mem_in_use_peak: '0' },
    },
    { cat: 'Api', name: 'n6_softmax&Softmax&Softmax', dur: 300 },
    { cat: 'Api', name: 'n7_conv2d&Conv&Transpose', dur: 20 },
    { cat: 'Api', name: 'n7_conv2d&Conv&GroupedConv', dur: 80 },
  ]);
  assert.deepEqual(s, {
    kernelTimeUs: { MatMul: 15, Softmax: 7 },
    kernelsByProvider: { CPUExecutionProvider: 2, WebGpuExecutionProvider: 1 },
    cpuArenaPeakBytes: 4096,
    gpuTimeUs: 400,
    gpuTimeUsByOp: { Softmax: 300, Conv: 100 },
  });
  assert.deepEqual(summarizeOrtProfile([]), { kernelTimeUs: {}, kernelsByProvider: {} });
});

describe('replayTensorLiveness: tensor bytes live at once, from a profile and the graph ORT ran', () => {
  // x [2,3] → n1_exp → n2_reshape [6] (a view) → n3_neg → n4_add(neg, view): 24 B per tensor.
  const lg = new Graph();
  const lx = lg.input('x', [2, 3]);
  const view = lg.reshape(lg.unary('exp', lx), [6]);
  const sum = lg.addT(lg.unary('neg', view), view);
  const model = lowerGraph(lg, [sum], mapWeights(new Map())).bytes;
  const GPU = 'WebGpuExecutionProvider';
  const kernel = (name: string, ts: number, inputs: number[][], output: number[], provider = GPU): TraceEvent => ({
    cat: 'Node',
    name: `${name}_kernel_time`,
    ts,
    dur: 1,
    args: { provider, input_type_shape: inputs.map((s) => ({ float: s })), output_type_shape: [{ float: output }] },
  });
  const run = (t0: number): TraceEvent[] => [
    { cat: 'Session', name: 'model_run', ts: t0, dur: 100 },
    kernel('n1_exp', t0 + 1, [[2, 3]], [2, 3]),
    kernel('n2_reshape', t0 + 2, [[2, 3], [1]], [6]),
    kernel('n3_neg', t0 + 3, [[6]], [6]),
    kernel('n4_add', t0 + 4, [[6], [6]], [6]),
  ];

  test('by hand: x and exp at the first kernel; exp (kept by its view), neg and the output at the last', () => {
    // step 0 exp: x + exp = 48; step 1 reshape: exp = 24 (x is dead, the view adds nothing);
    // step 2 neg: exp + neg = 48; step 3 add: exp + neg + sum = 72. Four tensors of 24 B in all.
    assert.deepEqual(replayTensorLiveness(run(0), model, GPU), {
      peakBytes: 72,
      peakNode: `n${sum.id}_add`,
      totalBytes: 96,
      largestBytes: 24,
      nodes: 4,
    });
  });

  test('only the last run counts; kernels of another provider are left out; an unknown node gives no figure', () => {
    assert.deepEqual(
      replayTensorLiveness([...run(0), ...run(1000)], model, GPU),
      replayTensorLiveness(run(0), model, GPU),
    );
    const neg = run(0).map((e) =>
      e.name === 'n3_neg_kernel_time' ? kernel('n3_neg', 3, [[6]], [6], 'CPUExecutionProvider') : e,
    );
    // neg in host memory: step 3 add holds exp + sum = 48; exp peaks with x at 48 first.
    assert.equal(replayTensorLiveness(neg, model, GPU)?.peakBytes, 48);
    assert.equal(replayTensorLiveness([...run(0), kernel('MemcpyToHost', 5, [[6]], [6])], model, GPU), null);
  });
});

describe('ORT WebGPU runs never overlap (onnxruntime issue 32561)', () => {
  test('runs started together execute one after another, and a failed run does not block the next', async () => {
    let active = 0;
    let most = 0;
    const order: string[] = [];
    const fake =
      (name: string, ms: number, fail = false) =>
      async () => {
        active++;
        most = Math.max(most, active);
        order.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`end ${name}`);
        active--;
        if (fail) throw new Error(`${name} failed`);
        return name;
      };
    const runs = [
      serializedWebGpuRun(fake('a', 30)),
      serializedWebGpuRun(fake('b', 5, true)),
      serializedWebGpuRun(fake('c', 1)),
    ];
    const settled = await Promise.allSettled(runs);
    assert.equal(most, 1);
    assert.deepEqual(order, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
  });
});
