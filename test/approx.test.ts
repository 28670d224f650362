/**
 * Approximation quality (`vitlens approx`, server/jobs/approx/): SOFT's errors on the tiny official
 * checkpoint and image against an independent float64 computation written here from the
 * definitions (docs/MATHS.md §1.3–1.5) with plain arrays — landmarks, kernels, the Newton–Raphson
 * iteration, the inverse and the full N×N products; the limits where an approximation must become
 * exact (Nyström's iteration → its pseudo-inverse, Linformer with k = N and E = F = I, every token
 * a landmark); Performer's error falling with its features; the pseudo-inverse; and the command.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { ApproxReport } from '../protocol/approx';
import { main } from '../server/cli/main';
import { nystromInverseGraph } from '../server/core/engine/attention/nystrom';
import { PERFORMER_EPS, performerFeatures } from '../server/core/engine/attention/performer';
import { newtonInverseGraph, symmetricNormaliseGraph } from '../server/core/engine/attention/pinv';
import { gaussianKernel } from '../server/core/engine/attention/soft';
import { Graph } from '../server/core/engine/graph';
import { pseudoInverse, transpose } from '../server/core/engine/linalg';
import { erf, mapWeights, ReferenceRuntime } from '../server/core/engine/lowerings/reference';
import { modelGraph, MODEL_INPUT } from '../server/core/engine/model';
import type { ModelSpec } from '../server/core/models/spec';
import { loadCheckpoint } from '../server/inputs/checkpoint/load';
import { loadImageTensor } from '../server/inputs/image';
import { prepareModel, softLandmarksAt, stageOperands } from '../server/jobs/approx/activations';
import {
  exactAttention,
  exactGaussian,
  exactSoftmax,
  LowRank,
  productErrors,
  pseudoInverseFactors,
} from '../server/jobs/approx/error';
import { linformerFactors, nystromFactors, performerFactors, softFactors } from '../server/jobs/approx/factors';
import { analyseApprox } from '../server/jobs/approx/sweep';
import { withCheckpointPosEmbedGrids } from '../server/jobs/infer/model-weights';
import { FIXTURES, specOf } from './helpers/fixtures';

const CONFIG = path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml');
const CHECKPOINT = path.join(FIXTURES, 'ref', 'tiny_soft.pth');
const IMAGE = path.join(FIXTURES, 'ref', 'tiny_image_64x64.png');
const tinyText = fs.readFileSync(CONFIG, 'utf8');
const tiny = specOf(tinyText);

// ---------------------------------------------------------------------------------------------
// Plain float64 building blocks (no engine code).

/** a [n, k] · b [k, m]. */
function mm(a: ArrayLike<number>, b: ArrayLike<number>, n: number, k: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[t * m + j]!;
      out[i * m + j] = s;
    }
  return out;
}

const tr = (a: ArrayLike<number>, n: number, m: number) => {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[j * n + i] = a[i * m + j]!;
  return out;
};

const frob = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, x) => s + x * x, 0));
const diffNorm = (a: ArrayLike<number>, b: ArrayLike<number>) => frob(Array.from(a, (x, i) => x - b[i]!));

/** exp(−Σ(a_i − b_j)²/2). */
function gauss(a: ArrayLike<number>, b: ArrayLike<number>, n: number, m: number, d: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += (a[i * d + c]! - b[j * d + c]!) ** 2;
      out[i * m + j] = Math.exp(-s / 2);
    }
  return out;
}

/** Gauss–Jordan inverse with partial pivoting. */
function inverse(a: ArrayLike<number>, m: number): Float64Array {
  const w = Float64Array.from(a);
  const inv = new Float64Array(m * m);
  for (let i = 0; i < m; i++) inv[i * m + i] = 1;
  for (let c = 0; c < m; c++) {
    let p = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(w[r * m + c]!) > Math.abs(w[p * m + c]!)) p = r;
    for (let j = 0; j < m; j++) {
      [w[p * m + j], w[c * m + j]] = [w[c * m + j]!, w[p * m + j]!];
      [inv[p * m + j], inv[c * m + j]] = [inv[c * m + j]!, inv[p * m + j]!];
    }
    const piv = w[c * m + c]!;
    for (let j = 0; j < m; j++) {
      w[c * m + j]! /= piv;
      inv[c * m + j]! /= piv;
    }
    for (let r = 0; r < m; r++) {
      if (r === c) continue;
      const f = w[r * m + c]!;
      for (let j = 0; j < m; j++) {
        w[r * m + j]! -= f * w[c * m + j]!;
        inv[r * m + j]! -= f * inv[c * m + j]!;
      }
    }
  }
  return inv;
}

/**
 * The official Newton–Raphson iteration (docs/MATHS.md §1.4) on one matrix. Variant A shifts by the
 * official float32 0.01 (torch.eye is float32), as the float64 port does.
 */
function newton(a: Float64Array, m: number, variant: 'A' | 'B', iterations: number): Float64Array {
  let s = 0;
  for (let i = 0; i < m; i++)
    s = Math.max(
      s,
      a.slice(i * m, (i + 1) * m).reduce((x, y) => x + y, 0),
    );
  const p = Float64Array.from(a);
  if (variant === 'A') for (let i = 0; i < m; i++) p[i * m + i]! += Math.fround(0.01);
  let alpha = (variant === 'A' ? 1.8 : 2) / (s * s);
  let v = p.map((x) => alpha * x);
  if (variant === 'B') {
    const norm1 = () => {
      const pv = mm(p, v, m, m, m);
      let best = 0;
      for (let j = 0; j < m; j++) {
        let col = 0;
        for (let i = 0; i < m; i++) col += Math.abs((i === j ? 1 : 0) - pv[i * m + j]!);
        best = Math.max(best, col);
      }
      return best;
    };
    for (let cnt = 0; norm1() > 1.01 && cnt < 10; cnt++) {
      alpha /= 2;
      v = p.map((x) => alpha * x);
    }
  }
  for (let k = 0; k < iterations; k++) {
    const vpv = mm(mm(v, p, m, m, m), v, m, m, m);
    v = v.map((x, i) => 2 * x - vpv[i]!);
  }
  return v;
}

/** The activation entering stage 1's first block (the model's forward, tested elsewhere against the official intermediates). */
async function stage1Input(spec: ModelSpec) {
  const ck = loadCheckpoint(CHECKPOINT);
  const s = withCheckpointPosEmbedGrids(spec, ck.tensors);
  const g = new Graph();
  const m = modelGraph(g, s, { resolution: 64 });
  const image = (await loadImageTensor(IMAGE, { size: 64, resize: 'none' })).data;
  const weights = mapWeights(ck.tensors as Map<string, { shape: readonly number[]; data: ArrayLike<number> }>);
  const [x] = new ReferenceRuntime('float64').run(g, { [MODEL_INPUT]: image }, weights, [m.taps.get('block1.0_in')!]);
  return { x: x!.data, w: (key: string) => ck.tensors.get(key)!.data as ArrayLike<number> };
}

/**
 * SOFT on stage 1 (one head, 16×16 grid, r = 8 → m = 4) from scratch: Qs, V, the landmarks (conv,
 * LayerNorm, GELU), S, K1, K2, then the errors of the full N×N products.
 */
async function softFromScratch(spec: ModelSpec, iterations: number[]) {
  const stage = spec.stages[0]!;
  const { x, w } = await stage1Input(spec);
  const [D, d, H, r] = [stage.dim, stage.headDim, 16, stage.srRatio];
  const N = H * H;
  assert.equal(stage.heads, 1);
  const p = 'block1.0.att.mha';
  const lin = (name: string) => {
    const y = mm(x, tr(w(`${p}.${name}.weight`), D, D), N, D, D);
    const b = w(`${p}.${name}.bias`);
    return y.map((v, i) => v + b[i % D]!);
  };
  const qs = lin('W_q').map((v) => v / Math.sqrt(Math.sqrt(d)));
  const v = lin('W_v');
  // Landmark conv: the queries as a d-channel H×H image, an r×r kernel with stride r, no bias.
  const lh = Math.floor(H / r);
  const m = lh * lh;
  const cw = w(`${p}.attn.Qlandmark_op.weight`);
  const conv = new Float64Array(m * d);
  for (let oy = 0; oy < lh; oy++)
    for (let ox = 0; ox < lh; ox++)
      for (let co = 0; co < d; co++) {
        let s = 0;
        for (let ci = 0; ci < d; ci++)
          for (let ky = 0; ky < r; ky++)
            for (let kx = 0; kx < r; kx++)
              s += cw[((co * d + ci) * r + ky) * r + kx]! * qs[((oy * r + ky) * H + ox * r + kx) * d + ci]!;
        conv[(oy * lh + ox) * d + co] = s;
      }
  const [gamma, beta] = [w(`${p}.attn.Qnorm_act.0.weight`), w(`${p}.attn.Qnorm_act.0.bias`)];
  const L = new Float64Array(m * d);
  for (let j = 0; j < m; j++) {
    const row = conv.slice(j * d, (j + 1) * d);
    const mu = row.reduce((s, y) => s + y, 0) / d;
    const variance = row.reduce((s, y) => s + (y - mu) ** 2, 0) / d;
    for (let c = 0; c < d; c++) {
      const y = ((row[c]! - mu) / Math.sqrt(variance + stage.landmarkNormEps)) * gamma[c]! + beta[c]!;
      L[j * d + c] = 0.5 * y * (1 + erf(y / Math.SQRT2));
    }
  }
  const S = gauss(qs, qs, N, N, d);
  const SV = mm(S, v, N, N, d);
  const K1 = gauss(qs, L, N, m, d);
  const K2 = gauss(L, L, m, m, d);
  const norm = stage.attention === 'soft_norm';
  const scale = (W: Float64Array) => {
    if (!norm) return W;
    const dd = Array.from(
      { length: m },
      (_, i) => 1 / Math.sqrt(K2.slice(i * m, (i + 1) * m).reduce((s, y) => s + y, 0)),
    );
    return W.map((y, k) => dd[Math.floor(k / m)]! * y * dd[k % m]!);
  };
  const errors = (W: Float64Array) => {
    const Shat = mm(mm(K1, W, N, m, m), tr(K1, N, m), N, m, N);
    return { mat: diffNorm(S, Shat) / frob(S), out: diffNorm(SV, mm(Shat, v, N, N, d)) / frob(SV) };
  };
  return {
    qs,
    exact: errors(scale(inverse(K2, m))),
    run: new Map(iterations.map((T) => [T, errors(scale(newton(K2, m, spec.newton.variant, T)))])),
  };
}

const close = (got: number | null, want: number, rel: number, what: string) =>
  assert.ok(got !== null && Math.abs(got - want) <= rel * Math.abs(want), `${what}: ${got} vs ${want}`);

// ---------------------------------------------------------------------------------------------

describe('approx: SOFT against an independent float64 computation (tiny checkpoint and image)', () => {
  for (const kind of ['soft', 'soft_norm'] as const) {
    test(`${kind}: e_mat and e_out, as run and exact, at every iteration count`, async () => {
      const spec = kind === 'soft' ? tiny : specOf(`${tinyText}\nattention: soft_norm\n`);
      assert.equal(spec.newton.variant, kind === 'soft' ? 'A' : 'B');
      const iterations = [1, 3, 7, 20];
      const want = await softFromScratch(spec, iterations);
      const r = await analyseApprox(spec, {
        checkpoint: CHECKPOINT,
        image: IMAGE,
        resize: 'none',
        stages: [1],
        methods: ['soft'],
        newtonIterations: iterations,
      });
      const soft = r.stages[0]!.methods[0]!;
      assert.equal(soft.method, 'soft');
      assert.equal(soft.reference, 'gaussian');
      assert.deepEqual(
        soft.points.map((p) => [p.setting.ratio, p.setting.landmarks, p.setting.iterations, p.model]),
        iterations.map((T) => [8, 4, T, T === 20]),
      );
      for (const p of soft.points) {
        const run = want.run.get(p.setting.iterations!)!;
        const h = p.heads[0]!;
        close(h.matRun, run.mat, 1e-9, `e_mat run, ${p.label}`);
        close(h.outRun, run.out, 1e-9, `e_out run, ${p.label}`);
        close(h.matExact, want.exact.mat, 1e-9, `e_mat exact, ${p.label}`);
        close(h.outExact, want.exact.out, 1e-9, `e_out exact, ${p.label}`);
        assert.deepEqual(p.mean, { matRun: h.matRun, matExact: h.matExact, outRun: h.outRun, outExact: h.outExact });
      }
      // The iteration's share of the error vanishes as it converges.
      const [first, last] = [soft.points[0]!.heads[0]!, soft.points[3]!.heads[0]!];
      assert.ok(Math.abs(first.matRun! - first.matExact!) > Math.abs(last.matRun! - last.matExact!));
    });
  }

  test('the operands are the tensors SOFT computes: Qs through the attention probe equals the from-scratch Qs', async () => {
    const want = await softFromScratch(tiny, []);
    const p = await prepareModel(tiny, { resolution: 64, checkpoint: CHECKPOINT, image: IMAGE, resize: 'none' });
    const ops = stageOperands(p, [1, 2, 3, 4]);
    const s1 = ops.get(1)!;
    assert.ok(diffNorm(s1.q, want.qs) <= 1e-12 * frob(want.qs));
    assert.equal(s1.landmarks!.m, 4);
    assert.deepEqual([...ops.keys()], [1, 2, 3, 4]);
    // Stage 4 is the softmax block with a cls token: its own q, k, v.
    assert.equal(ops.get(4)!.tokens, 2 * 2 + 1);
    assert.equal(ops.get(4)!.landmarks, null);
  });
});

describe('approx: SOFT with random weights sweeps its stride', () => {
  test("the landmarks rebuilt for the model's own stride are the model's; other strides give their own grids", async () => {
    const p = await prepareModel(tiny, { resolution: 64, checkpoint: null, image: null, seed: 5 });
    const ops = stageOperands(p, [1]).get(1)!;
    assert.deepEqual(softLandmarksAt(p, ops, 8), ops.landmarks);
    assert.equal(softLandmarksAt(p, ops, 4)!.m, 16);
    const r = await analyseApprox(tiny, { seed: 5, stages: [1], methods: ['soft'], newtonIterations: [20] });
    assert.deepEqual(
      r.stages[0]!.methods[0]!.points.map((x) => [x.setting.ratio, x.setting.landmarks, x.model]),
      [
        [8, 4, true],
        [5, 9, false],
        [4, 16, false],
        [3, 25, false],
        [2, 64, false],
      ],
    );
    assert.match(r.input.weights, /random \(seed 5/);
  });
});

describe("approx: the factors are the layers' own (factors.ts)", () => {
  test("an iterate read off one unrolled chain is the whole result of a T-step run (SOFT's Newton–Raphson, Nyström's inverse)", async () => {
    for (const spec of [tiny, specOf(`${tinyText}\nattention: soft_norm\n`)]) {
      const p = await prepareModel(spec, { resolution: 64, checkpoint: null, image: null, seed: 2 });
      const ops = stageOperands(p, [2]).get(2)!;
      const counts = [0, 1, 4, 11];
      const soft = softFactors(p, ops, 2, counts)!;
      const nys = nystromFactors(p, ops, 2, counts);
      const [H, m] = [ops.stage.heads, soft.m];
      const g = new Graph();
      const [k2, a] = [g.input('k2', [1, H, m, m]), g.input('a', [1, H, nys.m, nys.m])];
      const norm = spec.stages[1]!.attention === 'soft_norm';
      const runs = counts.flatMap((T) => {
        const v = newtonInverseGraph(g, k2, { variant: spec.newton.variant, iterations: T });
        return [norm ? symmetricNormaliseGraph(g, k2, v) : v, nystromInverseGraph(g, a, T)];
      });
      const got = new ReferenceRuntime('float64').run(g, { k2: soft.k2, a: nys.a }, mapWeights(new Map()), runs);
      counts.forEach((T, i) => {
        assert.deepEqual(soft.inverses[i], got[2 * i]!.data, `SOFT ${spec.stages[1]!.attention}, ${T} steps`);
        assert.deepEqual(nys.z[i], got[2 * i + 1]!.data, `Nyström, ${T} steps`);
      });
    }
  });

  test("on a SOFT stage, Performer's and Nyström's layers see its Qs (as q and k): their factors from scratch", async () => {
    const p = await prepareModel(tiny, { resolution: 64, checkpoint: CHECKPOINT, image: IMAGE, resize: 'none' });
    const ops = stageOperands(p, [2]).get(2)!;
    const { tokens: n, headDim: d, grid } = ops;
    const h = 1;
    const q = ops.q.subarray(h * n * d, (h + 1) * n * d);
    const relClose = (got: ArrayLike<number>, want: ArrayLike<number>, what: string) =>
      assert.ok(diffNorm(got, want) <= 1e-12 * frob(want), `${what}: ${diffNorm(got, want)} of ${frob(want)}`);
    // Performer: φ(x) = m^-½(exp(ω·x − ‖x‖²/2 − stab) + ε); stab a query's row max, the keys' overall max.
    const m = 24;
    const omega = performerFeatures(d, m, 7);
    const phi = (isQuery: boolean) => {
      const dash = mm(q, tr(omega, m, d), n, d, m);
      const all = Math.max(...dash);
      return dash.map((x, i) => {
        const row = Math.floor(i / m);
        const sq = q.slice(row * d, (row + 1) * d).reduce((s, y) => s + y * y, 0) / 2;
        const stab = isQuery ? Math.max(...dash.slice(row * m, (row + 1) * m)) : all;
        return (Math.exp(x - sq - stab) + PERFORMER_EPS) / Math.sqrt(m);
      });
    };
    const [pq, pk] = [phi(true), phi(false)];
    const ksum = Array.from({ length: m }, (_, a) => pk.filter((_, i) => i % m === a).reduce((s, y) => s + y, 0));
    const left = pq.map((x, i) => {
      const row = Math.floor(i / m);
      return x / pq.slice(row * m, (row + 1) * m).reduce((s, y, a) => s + y * ksum[a]!, 0);
    });
    const perf = performerFactors(p, ops, m, 7);
    relClose(perf.left.subarray(h * n * m, (h + 1) * n * m), left, 'D⁻¹φ(Q)');
    relClose(perf.right.subarray(h * n * m, (h + 1) * n * m), pk, 'φ(K)');
    // Nyströmformer at r = 4: K̃ the 2×2 means of 4×4 patches of Qs, F = softmax(Qs·K̃ᵀ).
    const r = 4;
    const lw = grid.w / r;
    const pooled = new Float64Array(lw * lw * d);
    for (let y = 0; y < grid.h; y++)
      for (let x = 0; x < grid.w; x++)
        for (let c = 0; c < d; c++)
          pooled[(Math.floor(y / r) * lw + Math.floor(x / r)) * d + c]! += q[(y * grid.w + x) * d + c]! / (r * r);
    const scores = mm(q, tr(pooled, lw * lw, d), n, d, lw * lw);
    const f = scores.map((x, i) => {
      const row = scores.slice(i - (i % (lw * lw)), i - (i % (lw * lw)) + lw * lw);
      const max = Math.max(...row);
      return Math.exp(x - max) / row.reduce((s, y) => s + Math.exp(y - max), 0);
    });
    const nys = nystromFactors(p, ops, r, [6]);
    relClose(nys.f.subarray(h * n * 4, (h + 1) * n * 4), f, 'F');
  });

  test("the exact attentions are the engine's ops to the bit: soft.ts's gaussianKernel (distance summed directly), softmax(q·kᵀ)", () => {
    const [n, d] = [37, 5];
    const q = Float64Array.from({ length: n * d }, (_, i) => Math.sin(i * 0.7) * 1.3);
    const k = Float64Array.from({ length: n * d }, (_, i) => Math.cos(i * 0.3) * 2.1);
    const g = new Graph();
    const [x, y] = [g.input('q', [n, d]), g.input('k', [n, d])];
    const [s, p] = new ReferenceRuntime('float64').run(g, { q, k }, mapWeights(new Map()), [
      gaussianKernel(g, x, x, 'direct'),
      g.softmax(g.matmul(x, g.transposeLast2(y))),
    ]);
    assert.deepEqual(exactGaussian(q, n, d), s!.data);
    assert.deepEqual(exactSoftmax(q, k, n, d), p!.data);
  });
});

describe('approx: limits where an approximation is exact', () => {
  test("Nyström's run error tends to its exact error as the iterations grow; every token a landmark is exact", async () => {
    const r = await analyseApprox(tiny, {
      checkpoint: CHECKPOINT,
      image: IMAGE,
      resize: 'none',
      stages: [2, 3],
      methods: ['nystrom'],
      nystromIterations: [1, 6, 30, 60],
      maxLandmarks: 16,
    });
    // Converged means: to the iteration's own float64 floor (≈ ε·cond(A), here ≤ 1e-10), from a gap of ~1e-4 after one step.
    const gap = (run: number | null, exact: number | null) => Math.abs(run! - exact!);
    for (const stage of r.stages) {
      const ny = stage.methods[0]!;
      for (const ratio of new Set(ny.points.map((p) => p.setting.ratio))) {
        const [first, , , last] = ny.points.filter((p) => p.setting.ratio === ratio);
        for (const h of last!.heads.keys()) {
          const [a, b] = [first!.heads[h]!, last!.heads[h]!];
          const what = `stage ${stage.stage} r = ${ratio} head ${h}`;
          assert.ok(gap(a.matRun, a.matExact) > 1e-7, `${what}: one step is not converged`);
          assert.ok(
            gap(b.matRun, b.matExact) <= 1e-9 + 1e-6 * b.matExact!,
            `${what}: e_mat ${b.matRun} vs ${b.matExact}`,
          );
          assert.ok(
            gap(b.outRun, b.outExact) <= 1e-9 + 1e-6 * b.outExact!,
            `${what}: e_out ${b.outRun} vs ${b.outExact}`,
          );
        }
      }
    }
    // Stage 3 (4×4 grid) at r = 1: the landmarks are the tokens, F = A = B = S, and S·S⁺·S = S.
    const whole = r.stages[1]!.methods[0]!.points.find((p) => p.setting.ratio === 1)!;
    assert.equal(whole.setting.landmarks, 16);
    assert.ok(whole.mean.matExact! < 1e-13, `${whole.mean.matExact}`);
    assert.ok(whole.mean.outExact! < 1e-13, `${whole.mean.outExact}`);
  });

  test('Linformer with k = N and E = F = I, and SOFT with every query a landmark, reproduce S', async () => {
    const p = await prepareModel(tiny, { resolution: 64, checkpoint: CHECKPOINT, image: IMAGE, resize: 'none' });
    const ops = stageOperands(p, [2]).get(2)!;
    const { tokens: n, headDim: d } = ops;
    const q = ops.q.subarray(0, n * d);
    const k = ops.k.subarray(0, n * d);
    const v = ops.v.subarray(0, n * d);
    const eye = new Float64Array(n * n);
    for (let i = 0; i < n; i++) eye[i * n + i] = 1;
    const softmax = exactAttention(exactSoftmax(q, k, n, d), v, n, d);
    // Linformer's own layer on the stage's q, k (a SOFT stage: its Qs twice), head 0.
    const factors = linformerFactors(p, ops, n, { e: eye, f: eye });
    const [left, right] = [factors.weights.subarray(0, n * n), transpose(factors.f, n, n)];
    const lin = productErrors(softmax, left, right, n);
    assert.ok(lin.mat < 1e-14 && lin.out < 1e-14, JSON.stringify(lin));
    // SOFT with L = Qs: K1 = K2 = S, so K1·K2⁺·K1ᵀ = S·S⁺·S = S (the Nyström identity with every point a landmark).
    const S = exactGaussian(q, n, d);
    const gaussian = exactAttention(S, v, n, d);
    const { p: pf, q: qf, k: kept } = pseudoInverseFactors(S, n);
    const soft = new LowRank(gaussian, S, S, n).errorsFactored(pf, qf, kept);
    assert.ok(soft.mat < 1e-13 && soft.out < 1e-13, JSON.stringify(soft));
  });
});

describe('approx: Performer, Linformer and spatial reduction', () => {
  test("Performer's error falls as its features grow (means over 4 draws), and the spread is reported", async () => {
    const r = await analyseApprox(tiny, {
      checkpoint: CHECKPOINT,
      image: IMAGE,
      resize: 'none',
      stages: [1, 2],
      methods: ['performer'],
      performerFeatures: [8, 32, 128, 512],
      performerSeeds: 4,
    });
    for (const stage of r.stages) {
      const pts = stage.methods[0]!.points;
      assert.deepEqual(
        pts.map((p) => p.setting.features),
        [8, 32, 128, 512],
      );
      for (let i = 1; i < pts.length; i++)
        assert.ok(
          pts[i]!.mean.matRun! < pts[i - 1]!.mean.matRun!,
          `stage ${stage.stage}: ${pts.map((p) => p.mean.matRun)}`,
        );
      const h = pts[0]!.heads[0]!;
      assert.deepEqual(
        pts[0]!.setting.seeds,
        [0, 1, 2, 3].map((s) => s + stage.stage - 1),
      );
      assert.ok(h.spread!.matRun![0] <= h.matRun! && h.matRun! <= h.spread!.matRun![1]);
      assert.equal(h.matExact, null);
      // §6A: 4nmd + nm.
      assert.equal(pts[1]!.macsPerHead, 4 * stage.tokens * 32 * stage.headDim + stage.tokens * 32);
    }
  });

  test('Linformer points up to N, spatial reduction as output error only, and the cls-token stage', async () => {
    const r = await analyseApprox(tiny, {
      checkpoint: CHECKPOINT,
      image: IMAGE,
      resize: 'none',
      stages: [3, 4],
      methods: ['linformer', 'softmax_sr', 'soft'],
      linformerK: [4, 8, 16, 32],
    });
    const [s3, s4] = r.stages;
    const lin = s3!.methods.find((m) => m.method === 'linformer')!;
    assert.deepEqual(
      lin.points.map((p) => p.setting.k),
      [4, 8, 16],
    );
    assert.ok(lin.notes.some((n) => n.includes('uniform(−1/√k, 1/√k)')));
    const sr = s3!.methods.find((m) => m.method === 'softmax_sr')!;
    assert.ok(sr.points.length > 0 && sr.points.every((p) => p.mean.matRun === null && p.mean.outRun >= 0));
    assert.equal(s4!.tokens, 5);
    assert.match(s4!.methods.find((m) => m.method === 'soft')!.skipped!, /Gaussian kernel of a stage's own queries/);
    assert.match(s4!.methods.find((m) => m.method === 'softmax_sr')!.skipped!, /cls token/);
    assert.ok(s4!.methods.find((m) => m.method === 'linformer')!.points.length > 0);
  });
});

describe('pseudoInverse (one-sided Jacobi SVD)', () => {
  test('the inverse of an invertible matrix, and the Penrose conditions on a singular one', () => {
    const m = 6;
    const a = Float64Array.from({ length: m * m }, (_, i) => Math.sin(i * 1.7) + (i % (m + 1) === 0 ? 3 : 0));
    assert.ok(diffNorm(pseudoInverse(a, m), inverse(a, m)) < 1e-12 * frob(inverse(a, m)));
    // Rank 2: u·vᵀ + w·zᵀ, not symmetric.
    const b = new Float64Array(m * m);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < m; j++) b[i * m + j] = Math.cos(i) * Math.sin(j + 1) + (i + 1) * Math.cos(2 * j);
    const x = pseudoInverse(b, m);
    const bxb = mm(mm(b, x, m, m, m), b, m, m, m);
    const xbx = mm(mm(x, b, m, m, m), x, m, m, m);
    assert.ok(diffNorm(bxb, b) < 1e-12 * frob(b));
    assert.ok(diffNorm(xbx, x) < 1e-12 * frob(x));
    const bx = mm(b, x, m, m, m);
    const xb = mm(x, b, m, m, m);
    assert.ok(diffNorm(bx, tr(bx, m, m)) < 1e-12 && diffNorm(xb, tr(xb, m, m)) < 1e-12);
  });
});

describe('vitlens approx', () => {
  const run = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const status = await main(
      ['approx', ...args],
      (s) => out.push(s),
      (s) => err.push(s),
    );
    return { status, stdout: out.join('\n'), stderr: err.join('\n') };
  };
  const quick = ['--iterations', '5,20', '--nystrom-iterations', '6', '--features', '16,64', '--linformer-k', '8'];

  test('prints a table per stage, and --json / --out give the whole report', async () => {
    const text = await run(CONFIG, '--stage', '1', '--stage', '2', ...quick);
    assert.equal(text.status, 0, text.stderr);
    for (const want of [
      /stage 1 \(SOFT, 16×16 grid, N = 256, 1 head, d = 16/,
      /method\s+setting\s+MACs\/head\s+e_mat run\s+e_mat exact\s+e_out run\s+e_out exact/,
      /SOFT\s+r = 8 \(m = 4\), 20 iterations \*/,
      /Nyströmformer\s+r = 4 \(4×4 = 16 landmarks\), 6 iterations/,
      /Performer\s+m = 64 features/,
      /Linformer\s+k = 8/,
    ])
      assert.match(text.stdout, want);
    assert.match(text.stdout, /weights checkpoint .*tiny_soft\.pth/);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-approx-')), 'approx.json');
    const json = await run(CONFIG, '--stage', '2', '--method', 'soft,performer', '--json', '--out', file, ...quick);
    assert.equal(json.status, 0, json.stderr);
    const r = JSON.parse(json.stdout) as ApproxReport;
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), r);
    assert.equal(r.stages.length, 1);
    assert.deepEqual(
      r.stages[0]!.methods.map((m) => m.method),
      ['soft', 'performer'],
    );
    assert.deepEqual(r.stages[0]!.headsAnalysed, [0, 1]);
    assert.equal(r.stages[0]!.methods[0]!.points[0]!.heads.length, 2);
    assert.match(r.input.checkpoint!, /tiny_soft\.pth$/);
    assert.match(r.input.image!, /tiny_image_64x64\.png$/);
  });

  test('random weights and a random image; --heads limits the heads measured', async () => {
    const r = await run(
      CONFIG,
      '--random',
      '--random-image',
      '--seed',
      '3',
      '--stage',
      '3',
      '--heads',
      '1',
      '--json',
      ...quick,
    );
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ApproxReport;
    assert.equal(report.input.checkpoint, null);
    assert.equal(report.input.image, null);
    assert.equal(report.input.seed, 3);
    assert.deepEqual(report.stages[0]!.headsAnalysed, [0]);
    // Random weights: SOFT sweeps its stride; here the 4×4 grid allows r = 2 only (m ≤ N/4).
    assert.ok(report.stages[0]!.methods[0]!.points.length >= 2);
  });

  test('bad input exits with status 2 and names the file or the key', async () => {
    const noImage = await run(CONFIG, '--image', 'no-such-image.png', ...quick);
    assert.equal(noImage.status, 2);
    assert.match(noImage.stderr, /no-such-image\.png/);
    const stage = await run(CONFIG, '--stage', '9', ...quick);
    assert.equal(stage.status, 2);
    assert.match(stage.stderr, /stage 9: .* has stages 1–4/);
    const method = await run(CONFIG, '--method', 'flash');
    assert.equal(method.status, 2);
    assert.match(method.stderr, /--method flash: expected one of soft, nystrom, performer, linformer, softmax_sr/);
    const both = await run(CONFIG, '--random', '--checkpoint', CHECKPOINT);
    assert.equal(both.status, 2);
    const small = await run(CONFIG, '--resolution', '16', ...quick);
    assert.equal(small.status, 2);
    assert.match(small.stderr, /at 16×16: SOFT attention: a 4×4 grid has no 8×8 landmark/);
  });
});
