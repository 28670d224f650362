/**
 * Attention maps come out of the attention definitions themselves (engine/attention/probe.ts).
 * Checked here against a direct float64 computation written from docs/MATHS.md, on the tiny
 * official checkpoint and the official block inputs: SOFT's implied row K1[q]·K2⁺·K1ᵀ (with the
 * oracle Newton of engine/newton.ts, not the graph's) and the stage-4 softmax row of the cls
 * token. The graph runs on the float64 reference and on onnxruntime CPU.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { OnnxSession } from '../server/runtimes/ort/session';
import { ReferenceRuntime } from '../server/core/engine/lowerings/reference';
import { Graph } from '../server/core/engine/graph';
import { MODEL_INPUT, modelGraph } from '../server/core/engine/model';
import { newtonInverse } from '../server/core/engine/newton';
import { ufoAttention } from '../server/core/engine/attention/ufo';
import type { AttentionProbe } from '../server/core/engine/attention/probe';
import { normals, randomWeights, seededRandom } from '../server/core/engine/weights';
import { loadCheckpoint } from '../server/inputs/checkpoint/load';
import { bindCheckpoint } from '../server/jobs/infer/model-weights';
import { FIXTURES, readJson, specOf } from './helpers/fixtures';

const cfg = readJson('ref/tiny_soft_config.json').constructor_kwargs;
const spec = specOf(
  `embed_dims: [${cfg.embed_dims}]\nnum_heads: [${cfg.num_heads}]\ndepths: [${cfg.depths}]\nnum_classes: ${cfg.num_classes}\nkernel_method: torch\n`,
);
const logitsRef = readJson('ref/tiny_soft_logits.json').tiny_soft['64x64'];
const floats = (file: string) => {
  const b = fs.readFileSync(path.join(FIXTURES, 'ref', file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const intermediates = floats(logitsRef.intermediates_file);
const intermediate = (name: string) => {
  const e = logitsRef.intermediates_index[name];
  return Float64Array.from(intermediates.subarray(e.offset_floats, e.offset_floats + e.numel));
};
const input = floats('tiny_input_64x64.bin');
const checkpoint = loadCheckpoint(path.join(FIXTURES, 'ref', 'tiny_soft.pth'));
const w = (key: string) => Float64Array.from(checkpoint.tensors.get(key)!.data as Float32Array);

// ── The direct computation (row-major float64, one batch item) ──────────────────────────────

/** y[n, o] = Σ_i x[n, i]·W[o, i] + b[o] (nn.Linear). */
function linear(x: Float64Array, n: number, inDim: number, key: string, outDim: number): Float64Array {
  const W = w(`${key}.weight`);
  const b = w(`${key}.bias`);
  const y = new Float64Array(n * outDim);
  for (let r = 0; r < n; r++)
    for (let o = 0; o < outDim; o++) {
      let s = b[o]!;
      for (let i = 0; i < inDim; i++) s += x[r * inDim + i]! * W[o * inDim + i]!;
      y[r * outDim + o] = s;
    }
  return y;
}

function layerNorm(x: Float64Array, n: number, d: number, key: string, eps: number): Float64Array {
  const g = w(`${key}.weight`);
  const b = w(`${key}.bias`);
  const y = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[r * d + i]! / d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[r * d + i]! - mean) ** 2 / d;
    for (let i = 0; i < d; i++) y[r * d + i] = ((x[r * d + i]! - mean) / Math.sqrt(v + eps)) * g[i]! + b[i]!;
  }
  return y;
}

/** erf by its Maclaurin series (|x| small here) or its continued fraction tail: float64-exact enough. */
function erf(x: number): number {
  if (Math.abs(x) < 3) {
    let sum = 0;
    let term = x;
    for (let n = 0; n < 80; n++) {
      sum += term / (2 * n + 1);
      term *= (-x * x) / (n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  return Math.sign(x) * (1 - Math.exp(-x * x) / (Math.abs(x) * Math.sqrt(Math.PI)));
}

const gaussian = (a: Float64Array, i: number, b: Float64Array, j: number, d: number) => {
  let s = 0;
  for (let c = 0; c < d; c++) s += (a[i * d + c]! - b[j * d + c]!) ** 2;
  return Math.exp(-s / 2);
};

/** docs/MATHS.md §1.3 for one head of stage 1 (1 head, dh 16, 16×16 grid, landmark stride 8). */
function softRowDirect(x: Float64Array, grid: number, dim: number, ratio: number, query: number): Float64Array {
  const n = grid * grid;
  const q = linear(x, n, dim, 'block1.0.att.mha.W_q', dim).map((v) => v / Math.sqrt(Math.sqrt(dim)));
  const lg = Math.floor(grid / ratio);
  const m = lg * lg;
  const conv = w('block1.0.att.mha.attn.Qlandmark_op.weight'); // [out, in, r, r]
  const raw = new Float64Array(m * dim);
  for (let ly = 0; ly < lg; ly++)
    for (let lx = 0; lx < lg; lx++)
      for (let o = 0; o < dim; o++) {
        let s = 0;
        for (let c = 0; c < dim; c++)
          for (let ky = 0; ky < ratio; ky++)
            for (let kx = 0; kx < ratio; kx++) {
              s +=
                conv[((o * dim + c) * ratio + ky) * ratio + kx]! *
                q[((ly * ratio + ky) * grid + lx * ratio + kx) * dim + c]!;
            }
        raw[(ly * lg + lx) * dim + o] = s;
      }
  const landmarks = layerNorm(raw, m, dim, 'block1.0.att.mha.attn.Qnorm_act.0', 1e-5).map(
    (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
  );
  const k2 = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) k2[i * m + j] = gaussian(landmarks, i, landmarks, j, dim);
  const inv = newtonInverse(k2, m, 1, {
    variant: spec.newton.variant,
    iterations: spec.newton.maxIter,
    dtype: 'float64',
  }).v;
  const k1q = Array.from({ length: m }, (_, j) => gaussian(q, query, landmarks, j, dim));
  const t = Array.from({ length: m }, (_, l) => k1q.reduce((s, v, j) => s + v * inv[j * m + l]!, 0));
  return Float64Array.from({ length: n }, (_, i) =>
    t.reduce((s, v, l) => s + v * gaussian(q, i, landmarks, l, dim), 0),
  );
}

/** docs/MATHS.md §2.4: the cls row of stage 4's softmax attention, per head, on LN1(x). */
function softmaxClsRowsDirect(x: Float64Array, tokens: number, dim: number, heads: number): Float64Array[] {
  const u = layerNorm(x, tokens, dim, 'block4.0.norm1', 1e-6);
  const q = linear(u, tokens, dim, 'block4.0.attn.q', dim);
  const kv = linear(u, tokens, dim, 'block4.0.attn.kv', 2 * dim);
  const dh = dim / heads;
  return Array.from({ length: heads }, (_, h) => {
    const scores = Array.from({ length: tokens }, (_, t) => {
      let s = 0;
      for (let c = 0; c < dh; c++) s += q[h * dh + c]! * kv[t * 2 * dim + h * dh + c]!;
      return s / Math.sqrt(dh);
    });
    const top = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - top));
    const z = e.reduce((a, b) => a + b, 0);
    return Float64Array.from(e.map((v) => v / z));
  });
}

const relDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return d / s;
};

describe('attention maps from the attention definitions', () => {
  const QUERY_1 = 8 * 16 + 8; // the centre of stage 1's 16×16 grid
  const g = new Graph();
  const m = modelGraph(g, spec, {
    resolution: 64,
    probes: [
      { stage: 1, block: 0, query: QUERY_1 },
      { stage: 4, block: 0, query: 0 },
    ],
  });
  const weights = bindCheckpoint(g, spec, checkpoint.tensors, 'tiny_soft.pth');
  const [soft, cls] = m.probed;

  test('each probed layer says what its numbers are and where its keys lie', () => {
    assert.deepEqual(
      m.probed.map((p) => [p.stage, p.block, p.probe.map?.shape]),
      [
        [1, 0, [1, 1, 256]],
        [4, 0, [1, 4, 5]],
      ],
    );
    assert.deepEqual(soft!.probe.keys, { h: 16, w: 16, cls: false });
    assert.deepEqual(cls!.probe.keys, { h: 2, w: 2, cls: true });
    assert.match(soft!.probe.meaning!, /K1·K2⁺·K1ᵀ/);
    assert.match(cls!.probe.meaning!, /sums to 1/);
  });

  const direct = {
    soft: softRowDirect(intermediate('block1.0_in'), 16, 16, 8, QUERY_1),
    cls: softmaxClsRowsDirect(intermediate('block4.0_in'), 5, 64, 4),
  };

  test('float64 reference: SOFT row and softmax cls rows equal the direct computation', () => {
    const [softMap, clsMap] = new ReferenceRuntime('float64').run(g, { [MODEL_INPUT]: input }, weights, [
      soft!.probe.map!,
      cls!.probe.map!,
    ]);
    // The graph starts from the image; the direct computation from the official float32 block
    // input, so they agree to the float32 precision of that input, not to float64.
    const e1 = relDiff(softMap!.data, direct.soft);
    assert.ok(e1 < 2e-5, `SOFT map differs by ${e1} relative`);
    for (let h = 0; h < 4; h++) {
      const row = clsMap!.data.subarray(h * 5, (h + 1) * 5);
      assert.ok(Math.abs(Array.from(row).reduce((a, b) => a + b, 0) - 1) < 1e-12, 'a softmax row sums to 1');
      assert.ok(relDiff(row, direct.cls[h]!) < 2e-5, `head ${h}: ${relDiff(row, direct.cls[h]!)}`);
    }
  });

  test('onnxruntime CPU gives the same maps as the reference', async () => {
    const ref = new ReferenceRuntime('float64').run(g, { [MODEL_INPUT]: input }, weights, [
      soft!.probe.map!,
      cls!.probe.map!,
    ]);
    const session = await OnnxSession.create(g, [soft!.probe.map!, cls!.probe.map!], weights, { ep: 'cpu' });
    try {
      const out = await session.run({ [MODEL_INPUT]: input });
      for (let i = 0; i < 2; i++)
        assert.ok(relDiff(out[i]!.data, ref[i]!.data) < 1e-5, `output ${i}: ${relDiff(out[i]!.data, ref[i]!.data)}`);
    } finally {
      await session.release();
    }
  });

  test('UFO: the implied token weights reproduce the layer exactly (fc_o(Σⱼ wⱼ·vⱼ) = output row)', () => {
    const [B, N, D, h] = [1, 24, 16, 2];
    const d = D / h;
    const ug = new Graph();
    const x = ug.input('x', [B, N, D]);
    const probe: AttentionProbe = { query: 7 };
    const out = ufoAttention(ug, x, 'attn', { batch: B, tokens: N, dim: D, heads: h }, probe);
    const weights = randomWeights(ug, 3);
    const xs = normals(B * N * D, seededRandom(5));
    const [y, map] = new ReferenceRuntime('float64').run(ug, { x: xs }, weights, [out, probe.map!]);
    // v = x·W_vᵀ + b and fc_o, straight from the weights the graph used.
    const W = (key: string) => weights.get(key)!.data;
    const vProj = new Float64Array(N * D);
    for (let n = 0; n < N; n++)
      for (let o = 0; o < D; o++) {
        let acc = W('attn.fc_v.bias')[o]!;
        for (let i = 0; i < D; i++) acc += xs[n * D + i]! * W('attn.fc_v.weight')[o * D + i]!;
        vProj[n * D + o] = acc;
      }
    const mixed = new Float64Array(D); // head-major concat of Σⱼ w_hj·v_hj
    for (let hh = 0; hh < h; hh++)
      for (let c = 0; c < d; c++) {
        let acc = 0;
        for (let j = 0; j < N; j++) acc += map!.data[hh * N + j]! * vProj[j * D + hh * d + c]!;
        mixed[hh * d + c] = acc;
      }
    const row = Float64Array.from(
      { length: D },
      (_, o) => W('attn.fc_o.bias')[o]! + mixed.reduce((s, v, i) => s + v * W('attn.fc_o.weight')[o * D + i]!, 0),
    );
    const e = relDiff(row, y!.data.subarray(7 * D, 8 * D));
    assert.ok(e < 1e-12, `implied weights reproduce the output to ${e}`);
    assert.match(probe.meaning!, /UFO implied token weights/);
  });
});
