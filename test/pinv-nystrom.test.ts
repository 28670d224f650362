/**
 * The pseudo-inverse analysis of Nyströmformer stages (issue 16): the model's own A = softmax(Q̃K̃ᵀ)
 * against an independent float64 derivation from the weights and tokens, the per-iteration
 * measures against a plain-array iteration written here, the third-order residual recursion and
 * the predicted curve, the float32 path against the model's float32 graph, and the CLI and the
 * language server on configs that mix SOFT and Nyström stages.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PinvRequest } from '../protocol/lsp';
import type { PinvReport } from '../protocol/results';
import { nystromInverseGraph } from '../server/core/engine/attention/nystrom';
import { attentionPrefix } from '../server/core/engine/blocks';
import { Graph } from '../server/core/engine/graph';
import { symmetricEigenvalues } from '../server/core/engine/linalg';
import { ReferenceRuntime, type WeightSource } from '../server/core/engine/lowerings/reference';
import { nystromInverse } from '../server/core/engine/nystrom-inverse';
import { normals, seededRandom } from '../server/core/engine/weights';
import { stageGrids } from '../server/core/models/build';
import type { ModelSpec } from '../server/core/models/spec';
import { analyseNystromMatrices, analysePinv, nystromMatrices } from '../server/jobs/pinv';
import { ROOT, specOf } from './helpers/fixtures';
import { LspClient } from './helpers/lsp';

type M = number[][];

// ── plain float64 linear algebra, written here so the checks share no code with the analysis ──

const zeros = (n: number): M => Array.from({ length: n }, () => new Array<number>(n).fill(0));
const eye = (n: number, c = 1): M => zeros(n).map((row, i) => row.map((_, j) => (i === j ? c : 0)));
const mul = (a: M, b: M): M => a.map((row) => b[0]!.map((_, j) => row.reduce((s, x, k) => s + x * b[k]![j]!, 0)));
const add = (a: M, b: M, sb = 1): M => a.map((row, i) => row.map((x, j) => x + sb * b[i]![j]!));
const scale = (a: M, c: number): M => a.map((row) => row.map((x) => c * x));
const transpose = (a: M): M => a[0]!.map((_, j) => a.map((row) => row[j]!));
const fro = (a: M): number => Math.sqrt(a.flat().reduce((s, x) => s + x * x, 0));

/** Gauss–Jordan with partial pivoting. */
function inverse(a: M): M {
  const n = a.length;
  const w = a.map((row, i) => [...row, ...eye(n)[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(w[r]![c]!) > Math.abs(w[p]![c]!)) p = r;
    [w[c], w[p]] = [w[p]!, w[c]!];
    const pivot = w[c]![c]!;
    w[c] = w[c]!.map((x) => x / pivot);
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = w[r]![c]!;
      w[r] = w[r]!.map((x, j) => x - f * w[c]![j]!);
    }
  }
  return w.map((row) => row.slice(n));
}

/** Nyströmformer's iteration as docs/MATHS.md §6.1 writes it: Z₀ = Aᵀ/c₀, Z ← ¼Z(13I − AZ(15I − AZ(7I − AZ))). */
function iterate(a: M, c: number, steps: number): M[] {
  const n = a.length;
  const zs = [scale(transpose(a), c)];
  for (let k = 0; k < steps; k++) {
    const z = zs[zs.length - 1]!;
    const az = mul(a, z);
    const inner = mul(az, add(eye(n, 7), az, -1));
    const middle = mul(az, add(eye(n, 15), inner, -1));
    zs.push(mul(scale(z, 0.25), add(eye(n, 13), middle, -1)));
  }
  return zs;
}

/** ‖R‖₂ of a symmetric R (up to rounding), from its eigenvalues. */
const norm2Symmetric = (r: M): number => Math.max(...Array.from(symmetricEigenvalues(r.flat(), r.length), Math.abs));

// ── the model: soft_tiny with every efficient stage on Nyströmformer, at 128 (m = 16 everywhere) ──

const NYSTROM = specOf('model: soft_tiny\nattention: nystrom\n');
const RESOLUTION = 128;
const SEED = 3;

/**
 * Weights with trained-like spread (std 0.2, biases too) for the q and kv projections, from a
 * generator of this test: random init (std 0.02) gives near-uniform A whose condition number
 * (~1e5–1e8) would make the float64 inverses of two implementations differ by more than 1e-10.
 */
function projectionWeights(model: ModelSpec): WeightSource {
  const rand = seededRandom(12345);
  const map = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const stage of model.stages) {
    const p = attentionPrefix(stage, 0);
    const D = stage.dim;
    for (const [key, shape] of [
      [`${p}.q.weight`, [D, D]],
      [`${p}.q.bias`, [D]],
      [`${p}.kv.weight`, [2 * D, D]],
      [`${p}.kv.bias`, [2 * D]],
    ] as [string, number[]][])
      map.set(key, {
        shape,
        data: normals(
          shape.reduce((a, b) => a * b, 1),
          rand,
          0.2,
        ),
      });
  }
  return { get: (key) => map.get(key) };
}
const WEIGHTS = projectionWeights(NYSTROM);

/** A of every head of one stage, in float64 from the weights and tokens (docs/MATHS.md §6A). */
function independentA(model: ModelSpec, stageIndex: number): M[] {
  const stage = model.stages[stageIndex - 1]!;
  const grid = stageGrids(model, RESOLUTION)[stageIndex - 1]!;
  const { dim: D, heads, srRatio: r } = stage;
  const dh = D / heads;
  const N = grid * grid;
  const x = normals(N * D, seededRandom(SEED + stage.index)); // the tokens the analysis feeds, [N, D]
  const p = attentionPrefix(stage, 0);
  const project = (key: string, out: number): M => {
    const w = WEIGHTS.get(`${key}.weight`)!.data;
    const b = WEIGHTS.get(`${key}.bias`)!.data;
    return Array.from({ length: N }, (_, t) =>
      Array.from({ length: out }, (_, o) => {
        let s = b[o]!;
        for (let i = 0; i < D; i++) s += x[t * D + i]! * w[o * D + i]!;
        return s;
      }),
    );
  };
  const q = project(`${p}.q`, D);
  const kv = project(`${p}.kv`, 2 * D);
  const lw = Math.floor(grid / r);
  const m = lw * lw;
  const s = dh ** -0.25;
  return Array.from({ length: heads }, (_, h) => {
    const pool = (rows: M, offset: number): M =>
      Array.from({ length: m }, (_, j) => {
        const [ly, lx] = [Math.floor(j / lw), j % lw];
        return Array.from({ length: dh }, (_, c) => {
          let sum = 0;
          for (let y = ly * r; y < ly * r + r; y++)
            for (let xx = lx * r; xx < lx * r + r; xx++) sum += rows[y * grid + xx]![offset + h * dh + c]!;
          return (s * sum) / (r * r);
        });
      });
    const logits = mul(pool(q, 0), transpose(pool(kv, 0)));
    return logits.map((row) => {
      const top = Math.max(...row);
      const e = row.map((v) => Math.exp(v - top));
      const total = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / total);
    });
  });
}

/** The analysis's own A of a stage (what it iterates), one m×m per head. */
function analysedA(model: ModelSpec, stageIndex: number): M[] {
  const stage = model.stages[stageIndex - 1]!;
  const grid = stageGrids(model, RESOLUTION)[stageIndex - 1]!;
  const { a, m } = nystromMatrices(model, stage, grid, WEIGHTS, SEED);
  return Array.from({ length: stage.heads }, (_, h) =>
    Array.from({ length: m }, (_, i) => Array.from(a.subarray(h * m * m + i * m, h * m * m + (i + 1) * m))),
  );
}

/** Z₀'s coefficient: 1/(max column abs-sum · max row abs-sum) over every head (§6A). */
function coefficient(as: M[]): number {
  let col = 0;
  let row = 0;
  for (const a of as) {
    for (const r of a)
      row = Math.max(
        row,
        r.reduce((s, x) => s + Math.abs(x), 0),
      );
    for (const r of transpose(a))
      col = Math.max(
        col,
        r.reduce((s, x) => s + Math.abs(x), 0),
      );
  }
  return 1 / (col * row);
}

const close = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol * Math.max(1, Math.abs(want)), `${what}: ${got} vs ${want}`);

describe('pinv: Nyströmformer stages', () => {
  const ITER = 30;
  let f64: PinvReport;
  before(() => {
    f64 = analysePinv(NYSTROM, {
      resolution: RESOLUTION,
      weights: WEIGHTS,
      seed: SEED,
      dtype: 'float64',
      iterations: ITER,
    });
  });

  test("A is the layer's softmax(Q̃K̃ᵀ) of the pooled, d^-¼-scaled projections (float32 vs float64 derivation)", () => {
    for (const s of [1, 2, 3]) {
      const want = independentA(NYSTROM, s);
      const got = analysedA(NYSTROM, s);
      assert.equal(got.length, want.length);
      let d = 0;
      got.forEach((a, h) =>
        a.forEach((row, i) => row.forEach((v, j) => (d = Math.max(d, Math.abs(v - want[h]![i]![j]!))))),
      );
      // float32 projections over D ≤ 320 inputs and a softmax: a few ulps of entries ≤ 1.
      assert.ok(d < 2e-6, `stage ${s}: max |A − A_f64| = ${d}`);
    }
  });

  test('every stage and head: e1, e2, e3 of each iteration equal a plain float64 iteration to 1e-10', () => {
    assert.deepEqual(
      f64.stages.map((s) => [s.stage, s.method?.kind, s.landmarks, s.heads.length]),
      [
        [1, 'nystrom', 16, 2],
        [2, 'nystrom', 16, 4],
        [3, 'nystrom', 16, 10],
      ],
    );
    for (const stage of f64.stages) {
      assert.deepEqual(stage.method, {
        kind: 'nystrom',
        label: 'Nyströmformer third-order (6 iterations)',
        setting: 'nystrom_iterations',
        configured: 6,
        traced: ITER,
      });
      const as = analysedA(NYSTROM, stage.stage);
      const c = coefficient(as);
      stage.heads.forEach((hd, h) => {
        const a = as[h]!;
        const inv = inverse(a);
        close(hd.alpha, c, 1e-15, `stage ${stage.stage} c`);
        assert.equal(hd.backoffHalvings, null);
        const zs = iterate(a, c, ITER);
        assert.equal(hd.iterations.length, ITER + 1);
        hd.iterations.forEach((it, k) => {
          const z = zs[k]!;
          const where = `stage ${stage.stage} head ${h} k=${k}`;
          assert.equal(it.k, k);
          close(it.residual, fro(add(eye(a.length), mul(a, z), -1)), 1e-10, `${where} e1`);
          close(it.penrose, fro(add(mul(mul(a, z), a), a, -1)) / fro(a), 1e-10, `${where} e2`);
          close(it.exactError!, fro(add(z, inv, -1)) / fro(inv), 1e-10, `${where} e3`);
        });
        // The thresholds are read off the same trace.
        const first = (t: number) => hd.iterations.find((it) => it.residual <= t)?.k ?? null;
        assert.equal(hd.reaches['1e-3']!.residual, first(1e-3));
        assert.equal(hd.reaches['1e-6']!.residual, first(1e-6));
        // Condition number σ_max/σ_min from the eigenvalues of AAᵀ (fine at these condition numbers).
        const gram = symmetricEigenvalues(mul(a, transpose(a)).flat(), a.length);
        close(
          hd.conditionNumber,
          Math.sqrt(gram[a.length - 1]! / gram[0]!),
          1e-6,
          `stage ${stage.stage} head ${h} cond`,
        );
        assert.ok(
          hd.conditionNumber < 1e5,
          `stage ${stage.stage} head ${h}: cond ${hd.conditionNumber} keeps the 1e-10 comparison meaningful`,
        );
      });
    }
  });

  test('the residual recursion R_{k+1} = (3R_k³ + R_k⁴)/4 holds, and the predicted curve is ‖R_k‖₂ for a non-normal A', () => {
    const stage = f64.stages[1]!;
    const as = analysedA(NYSTROM, stage.stage);
    const c = coefficient(as);
    for (const h of [0, 3]) {
      const a = as[h]!;
      // A softmax matrix is not normal: AAᵀ ≠ AᵀA. The prediction does not need it to be.
      assert.ok(fro(add(mul(a, transpose(a)), mul(transpose(a), a), -1)) > 1e-3 * fro(a) ** 2, 'A is not normal');
      const n = a.length;
      const rs = iterate(a, c, ITER).map((z) => add(eye(n), mul(a, z), -1));
      for (let k = 0; k + 1 < rs.length; k++) {
        const r = rs[k]!;
        const r3 = mul(mul(r, r), r);
        const want = scale(add(scale(r3, 3), mul(r3, r)), 0.25);
        const d = Math.max(
          ...add(rs[k + 1]!, want, -1)
            .flat()
            .map(Math.abs),
        );
        assert.ok(d < 1e-12, `head ${h} step ${k}: |R' − (3R³ + R⁴)/4| = ${d}`);
      }
      // ‖R_k‖₂ in exact arithmetic is f^k(‖R₀‖₂) with f(r) = (3r³ + r⁴)/4, R₀ = I − c·AAᵀ symmetric.
      let rho = norm2Symmetric(rs[0]!);
      const hd = stage.heads[h]!;
      hd.iterations.forEach((it, k) => {
        if (rho > 1e-9) {
          close(it.predicted, rho, 1e-6 * rho, `head ${h} k=${k} predicted vs f^k(‖R₀‖₂)`);
          const measured = norm2Symmetric(rs[k]!);
          assert.ok(
            Math.abs(it.predicted - measured) <= 1e-6 * measured,
            `head ${h} k=${k}: ${it.predicted} vs ‖R_k‖₂ ${measured}`,
          );
          // ‖R‖₂ ≤ ‖R‖_F ≤ √m‖R‖₂.
          assert.ok(
            it.predicted <= it.residual * (1 + 1e-9) && it.residual <= Math.sqrt(n) * it.predicted * (1 + 1e-9),
          );
        }
        rho = (3 * rho ** 3 + rho ** 4) / 4;
      });
      // The verdict counts from the same prediction: the first step with √m·‖R_k‖₂ ≤ 1e-6·√m.
      const predicted = hd.iterations.find((it) => it.predicted <= 1e-6)?.k;
      assert.equal(hd.predictedIterations, predicted);
      assert.equal(hd.converged, true);
      assert.match(hd.verdict, /^converged at iteration \d+ of 30$/);
    }
  });

  test('6 iterations (the default): not converged, and the verdict says how many the slowest mode needs', () => {
    const r = analysePinv(NYSTROM, { resolution: RESOLUTION, weights: WEIGHTS, seed: SEED, dtype: 'float64' });
    const hd = r.stages[1]!.heads[0]!;
    assert.equal(hd.iterations.length, 7);
    const full = f64.stages[1]!.heads[0]!;
    // The first 7 steps are those of the longer trace.
    assert.deepEqual(hd.iterations, full.iterations.slice(0, 7));
    // Even condition numbers of a few hundred leave c·σ_min² ≈ 1e-4: ≈ 11 steps (docs/MATHS.md §6.1).
    assert.equal(hd.converged, false);
    assert.ok(full.predictedIterations! > 6);
    assert.equal(hd.predictedIterations, full.predictedIterations);
    assert.equal(
      hd.verdict,
      `not converged after 6 iterations: residual ${hd.iterations[6]!.residual.toExponential(1)}; the slowest mode needs ≈ ${full.predictedIterations} iterations (predicted)`,
    );
    // One iteration in the report: the summary reads as it always has, counted against 6.
    assert.match(r.summary, /^not converged in 16 of 16 stage-heads: residual [\d.]+ after 6 \(stage 1 head 0, /);
  });

  test("float32: the iteration rounds as the model's float32 graph does; the measures stay float64", () => {
    const stage = NYSTROM.stages[1]!;
    const grid = stageGrids(NYSTROM, RESOLUTION)[1]!;
    const { a, m } = nystromMatrices(NYSTROM, stage, grid, WEIGHTS, SEED);
    const g = new Graph();
    const input = g.input('a', [1, stage.heads, m, m]);
    const z = nystromInverseGraph(g, input, 6);
    const [graph] = new ReferenceRuntime('float32').run(g, { a }, { get: () => undefined }, [z]);
    const f32 = nystromInverse(a, m, stage.heads, { iterations: 6, dtype: 'float32' }).z;
    const f64z = nystromInverse(a, m, stage.heads, { iterations: 6 }).z;
    const rel = (x: ArrayLike<number>, y: ArrayLike<number>) => {
      let d = 0;
      let s = 0;
      for (let i = 0; i < x.length; i++) {
        d = Math.max(d, Math.abs(x[i]! - y[i]!));
        s = Math.max(s, Math.abs(y[i]!));
      }
      return d / s;
    };
    assert.ok(
      f32.every((v) => Math.fround(v) === v),
      'float32 values',
    );
    // Both float32 runs sit within float32 rounding noise of each other (their sums run in different
    // orders), and rounding happened at every step, not once at the end: float64 lies as far away.
    const toGraph = rel(f32, graph!.data);
    assert.ok(toGraph < 1e-5, `float32 path vs float32 graph: ${toGraph}`);
    assert.ok(rel(f32, f64z) > 1e-8 && rel(f32, f64z) < 1e-5, `float32 path vs float64: ${rel(f32, f64z)}`);

    const r = analysePinv(NYSTROM, { resolution: RESOLUTION, weights: WEIGHTS, seed: SEED, iterations: ITER });
    assert.equal(r.arithmetic, 'float32');
    const h32 = r.stages[1]!.heads[0]!;
    const h64 = f64.stages[1]!.heads[0]!;
    close(h32.alpha, h64.alpha, 1e-6, 'c in float32');
    assert.equal(Math.fround(h32.alpha), h32.alpha);
    h32.iterations.forEach((it, k) => {
      const want = h64.iterations[k]!;
      if (want.residual > 1e-2) close(it.residual, want.residual, 1e-3, `k=${k} e1 float32 vs float64`);
    });
    // float32 rounding leaves a floor far above float64's.
    assert.ok(h32.iterations[ITER]!.residual > 100 * h64.iterations[ITER]!.residual);
  });

  test('a numerically singular A (random init, near-uniform softmax rows) says so in finite numbers', () => {
    const r = analysePinv(NYSTROM, { resolution: 224 });
    for (const s of r.stages)
      for (const hd of s.heads) {
        assert.ok(Number.isFinite(hd.conditionNumber) && hd.conditionNumber > 1e3, `cond ${hd.conditionNumber}`);
        assert.ok(hd.eigenvalueRange.every(Number.isFinite));
        assert.equal(hd.converged, false);
        assert.match(
          hd.verdict,
          /^not converged after 6 iterations: residual .*; (A is singular|the slowest mode needs)/,
        );
      }
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(r)));
  });

  test('analyseNystromMatrices on a batch: one shared coefficient (§6A)', () => {
    const as = analysedA(NYSTROM, 2);
    const flat = Float64Array.from(as.flatMap((a) => a.flat()));
    const reports = analyseNystromMatrices(flat, 16, as.length, 2, 'float64');
    assert.equal(new Set(reports.map((x) => x.alpha)).size, 1);
    close(reports[0]!.alpha, coefficient(as), 1e-15, 'c');
  });
});

// ── the CLI and the language server on a config that mixes the two iterations ──

function vitlens(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vitlens.js'), ...args], {
    encoding: 'utf8',
    cwd: ROOT,
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
    maxBuffer: 64 << 20,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const MIXED = 'model: soft_tiny\nattention: [soft, nystrom, soft, softmax]\n';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-pinv-nystrom-'));
const write = (name: string, text: string) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};

after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('vitlens pinv on SOFT and Nyström stages', () => {
  test('--json: each stage names its iteration; the report is the analysis', () => {
    const f = write('mixed.yaml', MIXED);
    const r = vitlens('pinv', f, '--resolution', '64', '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as PinvReport;
    assert.deepEqual(
      out.stages.map((s) => [s.stage, s.attention, s.method?.kind, s.method?.label, s.heads[0]?.iterations.length]),
      [
        [1, 'soft', 'newton', 'Newton–Raphson (SOFT, variant A, 20 iterations)', 21],
        [2, 'nystrom', 'nystrom', 'Nyströmformer third-order (6 iterations)', 7],
        [3, 'soft', 'newton', 'Newton–Raphson (SOFT, variant A, 20 iterations)', 21],
      ],
    );
    assert.equal(out.iterations, 20);
    assert.deepEqual(out, JSON.parse(JSON.stringify(analysePinv(specOf(MIXED), { resolution: 64 }))));
    assert.match(out.summary, /^SOFT's Newton–Raphson: .*; Nyströmformer's iteration: /);
  });

  test('text: the header names both iterations and each stage its own', () => {
    const f = write('mixed-text.yaml', MIXED);
    const r = vitlens('pinv', f, '--resolution', '64');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(
      lines[0]!,
      /^soft_tiny @ 64: Newton variant A \(.*\), 20 iterations; Nyströmformer third-order, 6 iterations; both in float32; weights random/,
    );
    assert.ok(lines.includes('stage 1 (soft): Newton–Raphson (SOFT, variant A, 20 iterations)'));
    assert.ok(lines.includes('stage 2 (nystrom): Nyströmformer third-order (6 iterations)'));
    assert.ok(lines.includes('stage 3 (soft): Newton–Raphson (SOFT, variant A, 20 iterations)'));
    assert.ok(lines.some((l) => /^stage 2 head 3 \(m = 4, cond [\d.e+]+\): .*; residual ≤ 1e-3 at/.test(l)));
    assert.match(lines.at(-1)!, /^SOFT's Newton–Raphson: .*; Nyströmformer's iteration: /);
  });

  test('nystrom_iterations and --iterations: the marker keeps the configured count, the trace follows the request', () => {
    const f = write('mixed-4.yaml', `${MIXED}nystrom_iterations: 4\n`);
    const r = vitlens('pinv', f, '--resolution', '64', '--iterations', '9', '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as PinvReport;
    const [soft, nys] = [out.stages[0]!, out.stages[1]!];
    assert.deepEqual(nys.method, {
      kind: 'nystrom',
      label: 'Nyströmformer third-order (4 iterations)',
      setting: 'nystrom_iterations',
      configured: 4,
      traced: 9,
    });
    assert.deepEqual([soft.method?.configured, soft.method?.traced], [20, 9]);
    assert.equal(nys.heads[0]!.iterations.length, 10);
  });

  test('--matrices --nystrom: any matrix through the third-order iteration', () => {
    const a = [
      [0.6, 0.3, 0.1],
      [0.2, 0.5, 0.3],
      [0.1, 0.2, 0.7],
    ];
    const f = write('matrices.json', JSON.stringify({ cases: { three: { A: a } } }));
    const r = vitlens('pinv', '--matrices', f, '--nystrom', '--float64', '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.iteration, 'nystrom');
    const it = out.matrices[0].iterations as { residual: number }[];
    assert.equal(it.length, 7);
    iterate(a, coefficient([a]), 6).forEach((z, k) =>
      close(it[k]!.residual, fro(add(eye(3), mul(a, z), -1)), 1e-12, `k=${k}`),
    );
    const text = vitlens('pinv', '--matrices', f, '--nystrom');
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /‖I − A·Z‖_F/);
    assert.equal(vitlens('pinv', '--matrices', f, '--nystrom', '--variant', 'B').status, 2);
  });
});

describe('vitlens/pinv over LSP for a mixed config', () => {
  let client: LspClient;
  before(async () => {
    client = await LspClient.start();
  });
  after(async () => {
    await client.stop();
  });

  test('the report names each stage’s iteration; a Nyström-only config gets the CodeLens', async () => {
    const file = write('lsp-mixed.yaml', MIXED);
    const uri = LspClient.uriOf(file);
    await client.open(uri, MIXED);
    const r = await client.conn.sendRequest(PinvRequest, { uri, resolution: 64 });
    assert.deepEqual(
      r.stages.map((s) => [s.stage, s.method?.kind, s.method?.setting, s.method?.configured]),
      [
        [1, 'newton', 'newton_maxiter', 20],
        [2, 'nystrom', 'nystrom_iterations', 6],
        [3, 'newton', 'newton_maxiter', 20],
      ],
    );
    const only = 'model: soft_tiny\nattention: nystrom\n';
    const onlyUri = LspClient.uriOf(write('lsp-nystrom.yaml', only));
    await client.open(onlyUri, only);
    const lenses = (await client.codeLens(onlyUri))!.map((l) => l.command!.title);
    assert.ok(lenses.includes('Pseudo-inverse convergence'), lenses.join(', '));
  });
});
