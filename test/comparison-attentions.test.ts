/**
 * The SOFT paper's comparison attentions — Performer FAVOR+, Nyströmformer (2-D landmarks), Linformer —
 * each defined once on the op set: the float64 reference run of each graph against an independent
 * float64 transcription of the reference code's formulas written here with plain arrays (no engine
 * code), the properties of Performer's random features and of Nyströmformer's inverse iteration, the
 * probe rows, the cost walks against the MACs of the graphs, and every runtime (ORT CPU, TF.js cpu,
 * the user's PyTorch) against the float64 reference.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ModelSpec, StageSpec } from '../server/core/models/spec';
import { graphCost } from '../server/core/engine/cost';
import { Graph, type Tensor } from '../server/core/engine/graph';
import { invert, matmul64 } from '../server/core/engine/linalg';
import { mapWeights, ReferenceRuntime } from '../server/core/engine/lowerings/reference';
import { linformerAttention } from '../server/core/engine/attention/linformer';
import { nystromAttention, nystromInverseGraph, type NystromConv } from '../server/core/engine/attention/nystrom';
import { nystromInverse, nystromStep } from '../server/core/engine/nystrom-inverse';
import {
  defaultPerformerFeatures,
  PERFORMER_EPS,
  performerAttention,
  performerFeatures,
} from '../server/core/engine/attention/performer';
import type { AttentionProbe } from '../server/core/engine/attention/probe';
import { linformerAttentionWalk, nystromAttentionWalk, performerAttentionWalk } from '../server/core/profile/attention';
import { Recorder } from '../server/core/profile/recorder';
import { numel } from '../server/core/shape';
import { OnnxSession } from '../server/runtimes/ort/session';
import { TfjsExecutor } from '../server/runtimes/tfjs/executor';
import { shutdownTfjs } from '../server/runtimes/tfjs/load';
import { openRunner } from '../server/runtimes/open-runner';
import { probeDevices } from '../server/runtimes/probe';
import type { Runner } from '../server/runtimes/runner';
import { probePyTorch } from '../server/runtimes/torch/python';
import { maxAbs, values } from './helpers/op-cases';

after(() => shutdownTfjs());

// ---------------------------------------------------------------------------------------------
// Plain float64 building blocks (no engine code).

type W = Map<string, { shape: number[]; data: Float32Array }>;

/** Deterministic weights for every weight of a graph: linears small, so scores stay moderate. */
function weightsFor(g: Graph, seed: number, spread = 0.5): W {
  const w: W = new Map();
  g.weights.forEach(({ key, tensor }, i) => {
    if (w.has(key)) return;
    const s = key.endsWith('.bias') ? 0.1 : key.endsWith('.conv.weight') ? 0.3 : spread;
    w.set(key, { shape: [...tensor.shape], data: values(numel(tensor.shape), seed * 1000 + i + 1, -s, s) });
  });
  return w;
}

/** x [rows, inF] · Wᵀ + b → [rows, outF]. */
function linear(x: ArrayLike<number>, rows: number, inF: number, outF: number, w: W, prefix: string): Float64Array {
  const wt = w.get(`${prefix}.weight`)!.data;
  const b = w.get(`${prefix}.bias`)!.data;
  const out = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outF; o++) {
      let s = b[o]!;
      for (let i = 0; i < inF; i++) s += x[r * inF + i]! * wt[o * inF + i]!;
      out[r * outF + o] = s;
    }
  return out;
}

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

function transpose(a: ArrayLike<number>, n: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[j * n + i] = a[i * m + j]!;
  return out;
}

function softmaxRows(a: Float64Array, n: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    let mx = -Infinity;
    for (let j = 0; j < m; j++) mx = Math.max(mx, a[i * m + j]!);
    let s = 0;
    for (let j = 0; j < m; j++) s += out[i * m + j] = Math.exp(a[i * m + j]! - mx);
    for (let j = 0; j < m; j++) out[i * m + j]! /= s;
  }
  return out;
}

/** Head `hd` of batch `b` from t [B, N, width]: columns offset + hd·dh … + dh − 1, as [N, dh]. */
function head(t: Float64Array, b: number, N: number, width: number, offset: number, hd: number, dh: number) {
  const out = new Float64Array(N * dh);
  for (let n = 0; n < N; n++)
    for (let e = 0; e < dh; e++) out[n * dh + e] = t[(b * N + n) * width + offset + hd * dh + e]!;
  return out;
}

interface Projected {
  q: Float64Array[][];
  k: Float64Array[][];
  v: Float64Array[][];
}

/** q = W_q·x, [k; v] = W_kv·x, split into heads ([b][head] → [N, dh]). */
function project(x: Float32Array, B: number, N: number, D: number, h: number, w: W, prefix: string): Projected {
  const dh = D / h;
  const q = linear(x, B * N, D, D, w, `${prefix}.q`);
  const kv = linear(x, B * N, D, 2 * D, w, `${prefix}.kv`);
  const split = (t: Float64Array, width: number, offset: number) =>
    Array.from({ length: B }, (_, b) => Array.from({ length: h }, (_, hd) => head(t, b, N, width, offset, hd, dh)));
  return { q: split(q, D, 0), k: split(kv, 2 * D, 0), v: split(kv, 2 * D, D) };
}

/** Heads [b][head] → [B, N, D] → W_proj. */
function combine(outs: Float64Array[][], B: number, N: number, D: number, h: number, w: W, prefix: string) {
  const dh = D / h;
  const merged = new Float64Array(B * N * D);
  for (let b = 0; b < B; b++)
    for (let hd = 0; hd < h; hd++)
      for (let n = 0; n < N; n++)
        for (let e = 0; e < dh; e++) merged[(b * N + n) * D + hd * dh + e] = outs[b]![hd]![n * dh + e]!;
  return linear(merged, B * N, D, D, w, `${prefix}.proj`);
}

/** softmax(QKᵀ/√d)·V for one head. */
function exactAttention(q: Float64Array, k: Float64Array, v: Float64Array, N: number, M: number, dh: number) {
  const s = mm(q, transpose(k, M, dh), N, dh, M).map((x) => x / Math.sqrt(dh));
  return mm(softmaxRows(s, N, M), v, N, M, dh);
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length);
  let d = 0;
  for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i]! - want[i]!));
  return d / Math.max(maxAbs(want), 1e-300);
}

function runRef(g: Graph, outputs: Tensor[], x: Float32Array, w: W) {
  return new ReferenceRuntime('float64').run(g, { x }, mapWeights(w), outputs).map((t) => t.data);
}

// ---------------------------------------------------------------------------------------------
// Performer: lucidrains `softmax_kernel` + `linear_attention`, written out.

function performerFeatureMap(x: Float64Array, N: number, dh: number, omega: Float64Array, m: number, isQuery: boolean) {
  const c = dh ** -0.25;
  const dash = new Float64Array(N * m);
  const diag = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let e = 0; e < dh; e++) s += x[n * dh + e]! ** 2;
    diag[n] = (s / 2) * c * c;
    for (let j = 0; j < m; j++) {
      let t = 0;
      for (let e = 0; e < dh; e++) t += c * x[n * dh + e]! * omega[j * dh + e]!;
      dash[n * m + j] = t;
    }
  }
  let all = -Infinity;
  for (const t of dash) all = Math.max(all, t);
  const out = new Float64Array(N * m);
  for (let n = 0; n < N; n++) {
    let row = -Infinity;
    for (let j = 0; j < m; j++) row = Math.max(row, dash[n * m + j]!);
    const stab = isQuery ? row : all;
    for (let j = 0; j < m; j++)
      out[n * m + j] = m ** -0.5 * (Math.exp(dash[n * m + j]! - diag[n]! - stab) + PERFORMER_EPS);
  }
  return out;
}

/** Per head: φ(Q), φ(K), D⁻¹ and the output D⁻¹·φ(Q)·(φ(K)ᵀV). */
function performerHead(q: Float64Array, k: Float64Array, v: Float64Array, N: number, dh: number, omega: Float64Array) {
  const m = omega.length / dh;
  const pq = performerFeatureMap(q, N, dh, omega, m, true);
  const pk = performerFeatureMap(k, N, dh, omega, m, false);
  const kSum = new Float64Array(m);
  for (let n = 0; n < N; n++) for (let j = 0; j < m; j++) kSum[j]! += pk[n * m + j]!;
  const dInv = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let j = 0; j < m; j++) s += pq[n * m + j]! * kSum[j]!;
    dInv[n] = 1 / s;
  }
  const context = mm(transpose(pk, N, m), v, m, N, dh);
  const out = mm(pq, context, N, m, dh);
  for (let n = 0; n < N; n++) for (let e = 0; e < dh; e++) out[n * dh + e]! *= dInv[n]!;
  return { pq, pk, dInv, out };
}

function performerCase(B: number, N: number, D: number, h: number, m: number, seed: number, probeQuery?: number) {
  const g = new Graph();
  const x = g.input('x', [B, N, D]);
  const probe: AttentionProbe | undefined = probeQuery === undefined ? undefined : { query: probeQuery };
  const y = performerAttention(g, x, 'attn', { batch: B, tokens: N, dim: D, heads: h, features: m, seed }, probe);
  return { g, y, probe, outputs: probe ? [y, probe.map!] : [y] };
}

describe('Performer FAVOR+', () => {
  test('ω: orthogonal rows within each block, chi-distributed row norms, fixed by the seed', () => {
    const d = 16;
    const m = 4096;
    const omega = performerFeatures(d, m, 11);
    assert.equal(omega.length, m * d);
    const dot = (i: number, j: number) => {
      let s = 0;
      for (let e = 0; e < d; e++) s += omega[i * d + e]! * omega[j * d + e]!;
      return s;
    };
    // Rows of one block: pairwise orthogonal (to rounding, relative to their norms).
    let worst = 0;
    for (let b = 0; b < 4; b++) {
      for (let i = b * d; i < (b + 1) * d; i++)
        for (let j = i + 1; j < (b + 1) * d; j++)
          worst = Math.max(worst, Math.abs(dot(i, j)) / Math.sqrt(dot(i, i) * dot(j, j)));
    }
    assert.ok(worst < 1e-12, `largest |cos| inside a block ${worst}`);
    // Rows of different blocks are independent directions: not orthogonal in general.
    assert.ok(Math.abs(dot(0, d)) / Math.sqrt(dot(0, 0) * dot(d, d)) > 1e-6);
    // Row norms: χ with d degrees of freedom (the norm of a d-dim Gaussian vector).
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < m; i++) {
      const n2 = dot(i, i);
      sum += Math.sqrt(n2);
      sumSq += n2;
    }
    // E[χ_d] = √2·Γ((d+1)/2)/Γ(d/2); for d = 16: 3.93803 (Γ(8.5) = 14034.407…, Γ(8) = 5040).
    const chiMean = (Math.SQRT2 * 14034.407293483413) / 5040;
    assert.ok(Math.abs(sum / m - chiMean) / chiMean < 0.02, `mean norm ${sum / m} vs χ mean ${chiMean}`);
    // E[χ²] = d; the mean of 4096 draws has std √(2d/4096) ≈ 0.09, so 5 % is a loose bound.
    assert.ok(Math.abs(sumSq / m - d) / d < 0.05, `mean squared norm ${sumSq / m} vs ${d}`);
    // m = 20, d = 8: two whole blocks (the same directions as m = 16 draws: the blocks come first
    // from the generator, the row norms after) and a third cut to its first 4 rows, still orthogonal.
    const cut = performerFeatures(8, 20, 3);
    const whole = performerFeatures(8, 16, 3);
    assert.equal(cut.length, 160);
    const unit = (a: Float64Array, i: number) => {
      const row = a.subarray(i * 8, (i + 1) * 8);
      const n = Math.hypot(...row);
      return Array.from(row, (c) => c / n);
    };
    for (let i = 0; i < 16; i++) unit(cut, i).forEach((c, j) => assert.ok(Math.abs(c - unit(whole, i)[j]!) < 1e-12));
    for (let i = 16; i < 20; i++)
      for (let j = i + 1; j < 20; j++)
        assert.ok(Math.abs(unit(cut, i).reduce((s, c, e) => s + c * unit(cut, j)[e]!, 0)) < 1e-12);
    assert.deepEqual(performerFeatures(d, 40, 11), performerFeatures(d, 40, 11));
    assert.notDeepEqual(performerFeatures(d, 40, 11), performerFeatures(d, 40, 12));
    assert.equal(defaultPerformerFeatures(32), 110);
    assert.equal(defaultPerformerFeatures(64), 266);
  });

  test('the graph, run in float64, matches lucidrains’ formulas written out (1e-10 relative)', () => {
    for (const [B, N, D, h, m] of [
      [2, 16, 16, 2, 20],
      [1, 36, 16, 4, 7],
    ] as const) {
      const { g, y } = performerCase(B, N, D, h, m, 5);
      const w = weightsFor(g, 1);
      const x = values(B * N * D, 77, -1, 1);
      const [got] = runRef(g, [y], x, w);
      const p = project(x, B, N, D, h, w, 'attn');
      const omega = performerFeatures(D / h, m, 5);
      const outs = p.q.map((qs, b) =>
        qs.map((q, hd) => performerHead(q, p.k[b]![hd]!, p.v[b]![hd]!, N, D / h, omega).out),
      );
      const e = relErr(got!, combine(outs, B, N, D, h, w, 'attn'));
      assert.ok(e <= 1e-10, `B=${B} N=${N} h=${h} m=${m}: relative error ${e}`);
      // ω is a graph constant, not a weight: the state_dict is q, kv and proj only.
      assert.deepEqual([...new Set(g.weights.map((x) => x.key))].sort(), [
        'attn.kv.bias',
        'attn.kv.weight',
        'attn.proj.bias',
        'attn.proj.weight',
        'attn.q.bias',
        'attn.q.weight',
      ]);
    }
  });

  test('the probe row sums to 1 and is the row of D⁻¹·φ(Q)·φ(K)ᵀ', () => {
    const [B, N, D, h, m, i] = [2, 16, 16, 2, 24, 5];
    const { g, y, probe } = performerCase(B, N, D, h, m, 9, i);
    const w = weightsFor(g, 2);
    const x = values(B * N * D, 78, -1, 1);
    const [, map] = runRef(g, [y, probe!.map!], x, w);
    assert.deepEqual(probe!.map!.shape, [B, h, N]);
    assert.match(probe!.meaning!, /sums to 1/);
    const p = project(x, B, N, D, h, w, 'attn');
    const omega = performerFeatures(D / h, m, 9);
    for (let b = 0; b < B; b++)
      for (let hd = 0; hd < h; hd++) {
        const r = performerHead(p.q[b]![hd]!, p.k[b]![hd]!, p.v[b]![hd]!, N, D / h, omega);
        const want = new Float64Array(N);
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let f = 0; f < m; f++) s += r.pq[i * m + f]! * r.pk[j * m + f]!;
          want[j] = s * r.dInv[i]!;
        }
        const got = map!.subarray((b * h + hd) * N, (b * h + hd + 1) * N);
        assert.ok(relErr(got, want) <= 1e-12);
        assert.ok(Math.abs(Array.from(got).reduce((a, c) => a + c, 0) - 1) < 1e-12);
        assert.ok(got.every((c) => c > 0));
      }
  });

  test('with more random features the output approaches exact softmax attention', () => {
    const [B, N, D, h] = [1, 16, 16, 2];
    const x = values(B * N * D, 79, -1, 1);
    const errors = [16, 256, 4096].map((m) => {
      const { g, y } = performerCase(B, N, D, h, m, 21);
      // Small q/k weights: moderate scores, where the positive random features have low variance.
      const w = weightsFor(g, 3, 0.3);
      const [got] = runRef(g, [y], x, w);
      const p = project(x, B, N, D, h, w, 'attn');
      const outs = p.q.map((qs, b) => qs.map((q, hd) => exactAttention(q, p.k[b]![hd]!, p.v[b]![hd]!, N, N, D / h)));
      return relErr(got!, combine(outs, B, N, D, h, w, 'attn'));
    });
    assert.ok(errors[0]! > errors[1]! && errors[1]! > errors[2]!, `errors ${errors.map((e) => e.toExponential(2))}`);
    // The estimator's error falls about as m^-½ (0.31, 0.048, 0.028 here; 0.006 at m = 65536).
    assert.ok(errors[2]! < errors[0]! / 5 && errors[2]! < 0.05, `m = 4096: relative error ${errors[2]}`);
  });
});

// ---------------------------------------------------------------------------------------------
// Nyströmformer: `iterative_inv` (reorganised init) and the three softmax kernels, written out.

/** r×r average pooling of x [H·W, d] → [m, d], remainder rows/columns dropped. */
function pool(x: Float64Array, H: number, W: number, r: number, dh: number): Float64Array {
  const lh = Math.floor(H / r);
  const lw = Math.floor(W / r);
  const out = new Float64Array(lh * lw * dh);
  for (let y = 0; y < lh; y++)
    for (let xx = 0; xx < lw; xx++)
      for (let e = 0; e < dh; e++) {
        let s = 0;
        for (let a = 0; a < r; a++) for (let c = 0; c < r; c++) s += x[((y * r + a) * W + xx * r + c) * dh + e]!;
        out[(y * lw + xx) * dh + e] = s / (r * r);
      }
  return out;
}

/** The reorganised code's `iterative_inv` over a batch of m×m matrices (coefficient global). */
function iterativeInv(mats: Float64Array[], m: number, iterations: number): Float64Array[] {
  let maxCol = 0;
  let maxRow = 0;
  for (const a of mats)
    for (let i = 0; i < m; i++) {
      let row = 0;
      let col = 0;
      for (let j = 0; j < m; j++) {
        row += Math.abs(a[i * m + j]!);
        col += Math.abs(a[j * m + i]!);
      }
      maxRow = Math.max(maxRow, row);
      maxCol = Math.max(maxCol, col);
    }
  const cI = (c: number, t: Float64Array) => t.map((x, idx) => (idx % (m + 1) === 0 ? c : 0) - x);
  return mats.map((a) => {
    let z: Float64Array = transpose(a, m, m).map((x) => x / (maxCol * maxRow));
    for (let it = 0; it < iterations; it++) {
      const az = mm(a, z, m, m, m);
      const t = mm(az, cI(15, mm(az, cI(7, az), m, m, m)), m, m, m);
      z = mm(
        z.map((x) => 0.25 * x),
        cI(13, t),
        m,
        m,
        m,
      );
    }
    return z;
  });
}

interface NysParts {
  f: Float64Array;
  z: Float64Array;
  b: Float64Array;
  out: Float64Array;
}

/** Every (batch, head) of the Nyström core (without conv) in float64, Z coupled across the batch. */
function nystromHeads(p: Projected, H: number, W: number, dh: number, r: number, iterations: number): NysParts[][] {
  const N = H * W;
  const m = Math.floor(H / r) * Math.floor(W / r);
  const c = dh ** -0.25;
  const parts = p.q.map((qs, b) =>
    qs.map((q0, hd) => {
      const q = q0.map((x) => x * c);
      const k = p.k[b]![hd]!.map((x) => x * c);
      const ql = pool(q, H, W, r, dh);
      const kl = pool(k, H, W, r, dh);
      return {
        f: softmaxRows(mm(q, transpose(kl, m, dh), N, dh, m), N, m),
        a: softmaxRows(mm(ql, transpose(kl, m, dh), m, dh, m), m, m),
        b: softmaxRows(mm(ql, transpose(k, N, dh), m, dh, N), m, N),
        v: p.v[b]![hd]!,
      };
    }),
  );
  const zs = iterativeInv(
    parts.flat().map((x) => x.a),
    m,
    iterations,
  );
  return parts.map((row, b) =>
    row.map((x, hd) => {
      const z = zs[b * row.length + hd]!;
      return { f: x.f, z, b: x.b, out: mm(mm(x.f, z, N, m, m), mm(x.b, x.v, m, N, dh), N, m, dh) };
    }),
  );
}

/** The conv skip on one head's V [N, dh], zero padded, cross-correlation as torch. */
function convSkip(v: Float64Array, H: number, W: number, dh: number, conv: NystromConv, w: Float32Array, hd: number) {
  const out = new Float64Array(H * W * dh);
  if (conv.kind === 'none') return out;
  const k = conv.kernel;
  const half = Math.floor(k / 2);
  const N = H * W;
  for (let n = 0; n < N; n++)
    for (let e = 0; e < dh; e++) {
      let s = 0;
      if (conv.kind === 'sequence') {
        for (let t = 0; t < k; t++) {
          const src = n + t - half;
          if (src >= 0 && src < N) s += w[hd * k + t]! * v[src * dh + e]!;
        }
      } else {
        const y = Math.floor(n / W);
        const x = n % W;
        for (let a = 0; a < k; a++)
          for (let c = 0; c < k; c++) {
            const yy = y + a - half;
            const xx = x + c - half;
            if (yy >= 0 && yy < H && xx >= 0 && xx < W) s += w[(hd * k + a) * k + c]! * v[(yy * W + xx) * dh + e]!;
          }
      }
      out[n * dh + e] = s;
    }
  return out;
}

function nystromCase(
  B: number,
  H: number,
  W: number,
  D: number,
  h: number,
  r: number,
  conv: NystromConv,
  probeQuery?: number,
) {
  const g = new Graph();
  const x = g.input('x', [B, H * W, D]);
  const probe: AttentionProbe | undefined = probeQuery === undefined ? undefined : { query: probeQuery };
  const shape = { batch: B, gridH: H, gridW: W, dim: D, heads: h, ratio: r, iterations: 6, conv };
  const y = nystromAttention(g, x, 'attn', shape, probe);
  return { g, y, probe, outputs: probe ? [y, probe.map!] : [y] };
}

describe('Nyströmformer', () => {
  /** A softmax matrix with a heavy diagonal: well conditioned. */
  const wellConditioned = (m: number, seed: number) => {
    const s = Float64Array.from(values(m * m, seed, -0.5, 0.5));
    for (let i = 0; i < m; i++) s[i * m + i]! += 3;
    return softmaxRows(s, m, m);
  };

  test('6 iterations invert a well-conditioned softmax matrix; the residual falls each step', () => {
    const m = 9;
    const a = wellConditioned(m, 5);
    const { z, trace } = nystromInverse(a, m, 1, { iterations: 6, trace: true });
    const exact = invert(a, m)!;
    assert.ok(relErr(z, exact) < 1e-6, `Z vs inverse: ${relErr(z, exact)}`);
    const e1 = trace![0]!.map((t) => t.e1);
    for (let k = 1; k < e1.length; k++)
      assert.ok(e1[k]! < e1[k - 1]! || e1[k]! < 1e-13, `residual ${e1.map((e) => e.toExponential(1))}`);
    assert.ok(trace![0]![6]!.e3 < 1e-6 && trace![0]![6]!.e2 < 1e-10);
  });

  test('one step maps R = I − AZ to (3R³ + R⁴)/4', () => {
    const m = 7;
    const a = wellConditioned(m, 6);
    const z0 = nystromInverse(a, m, 1, { iterations: 0 }).z;
    const residual = (z: Float64Array) => {
      const r = matmul64(a, z, m).map((x) => -x);
      for (let i = 0; i < m; i++) r[i * m + i]! += 1;
      return r;
    };
    let z = z0;
    for (let k = 0; k < 2; k++) {
      const r = residual(z);
      const r2 = matmul64(r, r, m);
      const r3 = matmul64(r2, r, m);
      const r4 = matmul64(r3, r, m);
      const predicted = r3.map((x, i) => (3 * x + r4[i]!) / 4);
      z = nystromStep(a, z, m);
      const got = residual(z);
      // Absolute, relative to ‖R‖³ (the size of the terms): rounding of I − AZ is ~1e-16.
      let d = 0;
      for (let i = 0; i < m * m; i++) d = Math.max(d, Math.abs(got[i]! - predicted[i]!));
      assert.ok(d < 1e-13, `step ${k}: |R' − (3R³ + R⁴)/4| = ${d}`);
    }
  });

  test('the graph iteration equals the float64 version, with one coefficient for the whole batch', () => {
    const m = 6;
    const batch = [
      wellConditioned(m, 7),
      softmaxRows(Float64Array.from(values(m * m, 8, -2, 2)), m, m),
      wellConditioned(m, 9),
    ];
    const flat = new Float64Array(batch.length * m * m);
    batch.forEach((a, i) => flat.set(a, i * m * m));
    const g = new Graph();
    const a = g.input('a', [1, 3, m, m]);
    const z = nystromInverseGraph(g, a, 6);
    const [got] = new ReferenceRuntime('float64').run(g, { a: flat }, mapWeights(new Map()), [z]);
    const plain = nystromInverse(flat, m, 3, { iterations: 6 });
    assert.ok(relErr(got!.data, plain.z) < 1e-12);
    const independent = iterativeInv(batch, m, 6);
    independent.forEach((zi, i) => assert.ok(relErr(plain.z.subarray(i * m * m, (i + 1) * m * m), zi) < 1e-12));
    // The batch couples: matrix 0 alone gets a different Z₀ coefficient and a different Z.
    const alone = nystromInverse(batch[0]!, m, 1, { iterations: 2 }).z;
    const coupled = nystromInverse(flat, m, 3, { iterations: 2 }).z.subarray(0, m * m);
    assert.ok(relErr(alone, coupled) > 1e-6);
  });

  for (const [label, H, W, r, conv] of [
    ['6×6 grid, r = 2, 3×3 grid conv', 6, 6, 2, { kind: 'grid', kernel: 3 }],
    ['5×7 grid (remainders dropped), r = 2, (5, 1) sequence conv', 5, 7, 2, { kind: 'sequence', kernel: 5 }],
    ['4×4 grid, r = 2, no conv', 4, 4, 2, { kind: 'none' }],
  ] as const) {
    test(`the graph, run in float64, matches the reference formulas written out: ${label}`, () => {
      const [B, D, h] = [2, 16, 2];
      const dh = D / h;
      const { g, y } = nystromCase(B, H, W, D, h, r, conv);
      const w = weightsFor(g, 4);
      const x = values(B * H * W * D, 80, -1, 1);
      const [got] = runRef(g, [y], x, w);
      const p = project(x, B, H * W, D, h, w, 'attn');
      const heads = nystromHeads(p, H, W, dh, r, 6);
      const convW = conv.kind === 'none' ? new Float32Array() : w.get('attn.conv.weight')!.data;
      const outs = heads.map((row, b) =>
        row.map((x0, hd) => {
          const skip = convSkip(p.v[b]![hd]!, H, W, dh, conv, convW, hd);
          return x0.out.map((v, i) => v + skip[i]!);
        }),
      );
      const e = relErr(got!, combine(outs, B, H * W, D, h, w, 'attn'));
      assert.ok(e <= 1e-10, `relative error ${e}`);
      if (conv.kind !== 'none')
        assert.deepEqual(
          g.weights.find((t) => t.key === 'attn.conv.weight')!.tensor.shape,
          conv.kind === 'grid' ? [h, 1, conv.kernel, conv.kernel] : [h, 1, conv.kernel, 1],
        );
    });
  }

  test('the probe row is softmax(qᵢK̃ᵀ)·Z·softmax(Q̃Kᵀ); a cls token and an even kernel are refused', () => {
    const [B, H, W, D, h, r, i] = [2, 4, 6, 16, 2, 2, 7];
    const { g, y, probe } = nystromCase(B, H, W, D, h, r, { kind: 'grid', kernel: 3 }, i);
    const w = weightsFor(g, 5);
    const x = values(B * H * W * D, 81, -1, 1);
    const [, map] = runRef(g, [y, probe!.map!], x, w);
    assert.deepEqual(probe!.keys, { h: H, w: W, cls: false });
    const heads = nystromHeads(project(x, B, H * W, D, h, w, 'attn'), H, W, D / h, r, 6);
    const m = 6;
    heads.forEach((row, b) =>
      row.forEach((p, hd) => {
        const want = mm(mm(p.f.subarray(i * m, (i + 1) * m), p.z, 1, m, m), p.b, 1, m, H * W);
        assert.ok(relErr(map!.subarray((b * h + hd) * H * W, (b * h + hd + 1) * H * W), want) <= 1e-10);
      }),
    );
    const cls = new Graph();
    assert.throws(
      () =>
        nystromAttention(cls, cls.input('x', [1, 17, 16]), 'attn', {
          batch: 1,
          gridH: 4,
          gridW: 4,
          dim: 16,
          heads: 2,
          ratio: 2,
          iterations: 6,
          conv: { kind: 'none' },
        }),
      /cls token/,
    );
    assert.throws(() => nystromCase(1, 4, 4, 16, 2, 2, { kind: 'sequence', kernel: 4 }), /odd/);
  });
});

// ---------------------------------------------------------------------------------------------
// Linformer: lucidrains `LinformerSelfAttention`, written out.

function linformerCase(B: number, N: number, D: number, h: number, k: number, probeQuery?: number) {
  const g = new Graph();
  const x = g.input('x', [B, N, D]);
  const probe: AttentionProbe | undefined = probeQuery === undefined ? undefined : { query: probeQuery };
  const y = linformerAttention(g, x, 'attn', { batch: B, tokens: N, dim: D, heads: h, k }, probe);
  return { g, y, probe, outputs: probe ? [y, probe.map!] : [y] };
}

/** Per head: P = softmax(Q(EK)ᵀ/√d) [N, k] and the output P·(FV). */
function linformerHeads(x: Float32Array, B: number, N: number, D: number, h: number, k: number, w: W) {
  const dh = D / h;
  const q = linear(x, B * N, D, D, w, 'attn.q');
  const kv = linear(x, B * N, D, 2 * D, w, 'attn.kv');
  const e = w.get('attn.E')!.data;
  const f = w.get('attn.F')!.data;
  return Array.from({ length: B }, (_, b) => {
    const keys = new Float64Array(N * D);
    const vals = new Float64Array(N * D);
    for (let n = 0; n < N; n++)
      for (let c = 0; c < D; c++) {
        keys[n * D + c] = kv[(b * N + n) * 2 * D + c]!;
        vals[n * D + c] = kv[(b * N + n) * 2 * D + D + c]!;
      }
    const ek = mm(e, keys, k, N, D);
    const fv = mm(f, vals, k, N, D);
    return Array.from({ length: h }, (_, hd) => {
      const qh = head(q, b, N, D, 0, hd, dh);
      const kh = head(ek, 0, k, D, 0, hd, dh);
      const vh = head(fv, 0, k, D, 0, hd, dh);
      const s = mm(qh, transpose(kh, k, dh), N, dh, k).map((t) => t / Math.sqrt(dh));
      const pm = softmaxRows(s, N, k);
      return {
        p: pm,
        out: mm(pm, vh, N, k, dh),
        q: qh,
        keys: head(kv, b, N, 2 * D, 0, hd, dh),
        v: head(kv, b, N, 2 * D, D, hd, dh),
      };
    });
  });
}

describe('Linformer', () => {
  test('the graph, run in float64, matches lucidrains’ formulas written out (1e-10 relative)', () => {
    const [B, N, D, h, k] = [2, 16, 16, 2, 5];
    const { g, y } = linformerCase(B, N, D, h, k);
    const w = weightsFor(g, 6);
    const x = values(B * N * D, 82, -1, 1);
    const [got] = runRef(g, [y], x, w);
    const heads = linformerHeads(x, B, N, D, h, k, w);
    const e = relErr(
      got!,
      combine(
        heads.map((r) => r.map((t) => t.out)),
        B,
        N,
        D,
        h,
        w,
        'attn',
      ),
    );
    assert.ok(e <= 1e-10, `relative error ${e}`);
    assert.deepEqual(g.weights.find((t) => t.key === 'attn.E')!.tensor.shape, [k, N]);
  });

  test('with k = n and E = F = I it is exact softmax attention', () => {
    const [B, N, D, h] = [2, 16, 16, 2];
    const { g, y } = linformerCase(B, N, D, h, N);
    const w = weightsFor(g, 7);
    const eye = new Float32Array(N * N);
    for (let i = 0; i < N; i++) eye[i * N + i] = 1;
    w.set('attn.E', { shape: [N, N], data: eye });
    w.set('attn.F', { shape: [N, N], data: eye });
    const x = values(B * N * D, 83, -1, 1);
    const [got] = runRef(g, [y], x, w);
    const p = project(x, B, N, D, h, w, 'attn');
    const outs = p.q.map((qs, b) => qs.map((q, hd) => exactAttention(q, p.k[b]![hd]!, p.v[b]![hd]!, N, N, D / h)));
    assert.ok(relErr(got!, combine(outs, B, N, D, h, w, 'attn')) <= 1e-12);
  });

  test('the probe row is softmax(qᵢ(EK)ᵀ/√d)·F, and it weights V exactly as the output does', () => {
    const [B, N, D, h, k, i] = [2, 16, 16, 2, 6, 3];
    const { g, y, probe } = linformerCase(B, N, D, h, k, i);
    const w = weightsFor(g, 8);
    const x = values(B * N * D, 84, -1, 1);
    const [, map] = runRef(g, [y, probe!.map!], x, w);
    const f = w.get('attn.F')!.data;
    linformerHeads(x, B, N, D, h, k, w).forEach((row, b) =>
      row.forEach((t, hd) => {
        const want = mm(t.p.subarray(i * k, (i + 1) * k), f, 1, k, N);
        const got = map!.subarray((b * h + hd) * N, (b * h + hd + 1) * N);
        assert.ok(relErr(got, want) <= 1e-12);
        // row·V is the head's output for query i.
        assert.ok(relErr(mm(got, t.v, 1, N, D / h), t.out.subarray((i * D) / h, ((i + 1) * D) / h)) <= 1e-12);
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The cost walks against the graphs' own MAC counts, and their state_dicts against the graphs' weights.

describe('cost walks', () => {
  const stage = (D: number, h: number) => ({ dim: D, heads: h, headDim: D / h }) as StageSpec;
  const model = {} as ModelSpec;
  const check = (name: string, g: Graph, y: Tensor, walk: (r: Recorder) => void) => {
    const r = new Recorder();
    walk(r);
    const walkMacs = r.ops.reduce((s, o) => s + o.macs, 0);
    assert.equal(walkMacs, graphCost(g, [y]).macs, `${name}: walk MACs vs the graph's`);
    const graphWeights = new Map(g.weights.map((t) => [t.key, [...t.tensor.shape]]));
    assert.deepEqual(new Map(r.tensors.map((t) => [t.key, t.shape])), graphWeights, `${name}: state_dict`);
    return r;
  };

  test('Performer: 4Nmd + Nm MACs per head on top of the projections', () => {
    for (const [B, N, D, h, m] of [
      [2, 49, 64, 2, 40],
      [1, 197, 96, 3, 110],
    ] as const) {
      const { g, y } = performerCase(B, N, D, h, m, 1);
      const shape = { batch: B, gridH: 0, gridW: 0, tokens: N };
      const r = check('performer', g, y, (rec) =>
        performerAttentionWalk(rec, 'attn', stage(D, h), model, shape, { features: m }),
      );
      const dh = D / h;
      const core = r.ops.filter((o) => o.category?.startsWith('matmul_performer')).reduce((s, o) => s + o.macs, 0);
      assert.equal(core, B * h * (4 * N * m * dh + N * m));
    }
  });

  test('Nyström: 4Nmd + Nm² + m²d + 4m³ per iteration, plus the conv skip', () => {
    for (const [B, H, W, D, h, r0, conv] of [
      [2, 8, 8, 32, 2, 2, { kind: 'grid', kernel: 3 }],
      [1, 7, 9, 32, 4, 3, { kind: 'sequence', kernel: 5 }],
      [1, 6, 6, 16, 2, 3, { kind: 'none' }],
    ] as const) {
      const g = new Graph();
      const shape = { batch: B, gridH: H, gridW: W, dim: D, heads: h, ratio: r0, iterations: 6, conv };
      const y = nystromAttention(g, g.input('x', [B, H * W, D]), 'attn', shape);
      const s = { batch: B, gridH: H, gridW: W, tokens: H * W };
      const r = check('nystrom', g, y, (rec) =>
        nystromAttentionWalk(rec, 'attn', stage(D, h), model, s, { ratio: r0, iterations: 6, conv }),
      );
      const [N, dh, m] = [H * W, D / h, Math.floor(H / r0) * Math.floor(W / r0)];
      const sum = (cat: string) => r.ops.filter((o) => o.category === cat).reduce((t, o) => t + o.macs, 0);
      assert.equal(sum('matmul_nystrom_attn'), B * h * (4 * N * m * dh + N * m * m + m * m * dh));
      assert.equal(sum('matmul_nystrom_inverse'), B * h * 24 * m ** 3);
      assert.equal(sum('conv2d_local_dwconv'), conv.kind === 'none' ? 0 : B * N * D * (conv.kind === 'grid' ? 9 : 5));
    }
  });

  test('Linformer: 4Nkd MACs per head (E·K and F·V included) on top of the projections', () => {
    const [B, N, D, h, k] = [2, 50, 64, 4, 12];
    const { g, y } = linformerCase(B, N, D, h, k);
    const shape = { batch: B, gridH: 7, gridW: 7, tokens: N };
    const r = check('linformer', g, y, (rec) => linformerAttentionWalk(rec, 'attn', stage(D, h), model, shape, { k }));
    const core = r.ops
      .filter((o) => o.category === 'matmul_linformer_attn' || o.category === 'linear_linformer_proj')
      .reduce((s, o) => s + o.macs, 0);
    assert.equal(core, B * h * 4 * N * k * (D / h));
  });
});

// ---------------------------------------------------------------------------------------------
// Every runtime against the float64 reference: ORT CPU, TF.js cpu, PyTorch.

interface RuntimeCase {
  name: string;
  g: Graph;
  outputs: Tensor[];
  x: Float32Array;
  w: W;
}

function runtimeCases(): RuntimeCase[] {
  const list: RuntimeCase[] = [];
  const add = (name: string, c: { g: Graph; outputs: Tensor[] }, seed: number) => {
    const [B, N, D] = c.g.inputs[0]!.tensor.shape as [number, number, number];
    list.push({
      name,
      g: c.g,
      outputs: c.outputs,
      x: values(B * N * D, 90 + seed, -1, 1),
      w: weightsFor(c.g, 10 + seed),
    });
  };
  add('Performer (m = 20, probe)', performerCase(2, 16, 16, 2, 20, 3, 4), 1);
  add('Nyström 6×6, grid conv (probe)', nystromCase(2, 6, 6, 16, 2, 2, { kind: 'grid', kernel: 3 }, 5), 2);
  add('Nyström 5×7, sequence conv', nystromCase(2, 5, 7, 16, 2, 2, { kind: 'sequence', kernel: 5 }), 3);
  add('Linformer (k = 6, probe)', linformerCase(2, 16, 16, 2, 6, 2), 4);
  return list;
}

// Measured ≤ 7e-7 on all three here (float32 rounding); 1e-4 leaves room for other CPUs’ kernels and thread counts.
const TOL = 1e-4;

function compareToReference(c: RuntimeCase, got: { shape: number[]; data: ArrayLike<number> }[]): void {
  const ref = new ReferenceRuntime('float64').run(c.g, { x: c.x }, mapWeights(c.w), c.outputs);
  assert.equal(got.length, ref.length);
  ref.forEach((r, i) => {
    assert.deepEqual(got[i]!.shape, [...r.shape], `${c.name}: output ${i} shape`);
    const e = relErr(got[i]!.data, r.data);
    assert.ok(e <= TOL, `${c.name}: output ${i} relative error ${e}`);
  });
}

describe('every runtime runs the three attentions (float32, within 1e-4 of the float64 reference)', async () => {
  const cases = runtimeCases();
  for (const c of cases) {
    test(`ORT CPU: ${c.name}`, async () => {
      const s = await OnnxSession.create(c.g, c.outputs, mapWeights(c.w), { ep: 'cpu' });
      try {
        compareToReference(c, await s.run({ x: c.x }));
      } finally {
        await s.release();
      }
    });
    test(`TF.js cpu: ${c.name}`, async () => {
      const ex = await TfjsExecutor.create(c.g, c.outputs, mapWeights(c.w), { backend: 'cpu' });
      try {
        compareToReference(c, await ex.run({ x: c.x }));
      } finally {
        ex.dispose();
      }
    });
  }

  const info = await probePyTorch();
  const required = process.env.VITLENS_TORCH_REQUIRED === '1';
  const skip = info.available || required ? false : `no Python with torch here: ${info.reason}`;
  let runner: Runner | undefined;
  before(async () => {
    if (skip) return;
    runner = await openRunner('torch-cpu', await probeDevices({ webgpu: false, nvidia: false }));
  });
  after(async () => {
    await runner?.close();
  });
  for (const c of cases) {
    test(`PyTorch CPU: ${c.name}`, { skip }, async () => {
      const prepared = await runner!.prepare(c.g, c.outputs, mapWeights(c.w));
      try {
        compareToReference(c, await prepared.run({ x: c.x }));
      } finally {
        await prepared.release();
      }
    });
  }
});
