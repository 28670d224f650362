/**
 * The engine's attention and block definitions on the reference runtime, against the
 * official code: the Newton graph against the float64 oracle replaying newton.json, and
 * every block of the tiny SOFT model (real tiny_soft.pth weights) against the official
 * per-block intermediates for the 64×64 input.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { newtonInverseGraph, symmetricNormaliseGraph } from '../server/core/engine/attention/pinv';
import { gaussianKernel } from '../server/core/engine/attention/soft';
import { ReferenceRuntime, type WeightSource } from '../server/core/engine/lowerings/reference';
import { block, layerContext } from '../server/core/engine/blocks';
import { Graph } from '../server/core/engine/graph';
import { newtonInverse, symmetricNormalise } from '../server/core/engine/newton';
import { loadCheckpoint } from '../server/inputs/checkpoint/load';
import { FIXTURES, readJson, specOf } from './helpers/fixtures';

const newtonRef = readJson('ref/newton.json');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function newtonCases(): { name: string; m: number; a: Float64Array }[] {
  const out: { name: string; m: number; a: Float64Array }[] = [];
  for (const [name, c] of Object.entries<any>(newtonRef.cases))
    out.push({ name, m: c.A.length, a: Float64Array.from(c.A.flat()) });
  return out;
}

describe('Newton–Raphson inverse as a graph', () => {
  const cases = newtonCases();
  test('newton.json provides matrices', () => assert.ok(cases.length >= 6, `found ${cases.length} matrices`));
  for (const variant of ['A', 'B'] as const) {
    test(`variant ${variant}: the graph equals the float64 oracle on every newton.json matrix (batched)`, () => {
      for (const { name, m, a } of cases) {
        // Two copies of the matrix, the second scaled, so variant B's global alpha and back-off see a batch.
        const batch = new Float64Array(2 * m * m);
        batch.set(a);
        for (let i = 0; i < m * m; i++) batch[m * m + i] = 0.5 * a[i]!;
        const g = new Graph();
        const x = g.input('a', [2, m, m]);
        const inv = newtonInverseGraph(g, x, { variant, iterations: 20 });
        const norm = symmetricNormaliseGraph(g, x, inv);
        const [v, vn] = new ReferenceRuntime('float64').run(g, { a: batch }, { get: () => undefined }, [inv, norm]);
        const oracle = newtonInverse(batch, m, 2, { variant, iterations: 20, dtype: 'float64' });
        const scale = Math.max(...Array.from(oracle.v, Math.abs));
        assert.ok(
          maxAbsDiff(v!.data, oracle.v) <= 1e-9 * scale,
          `${name}: |graph − oracle| ${maxAbsDiff(v!.data, oracle.v)} (max |V| ${scale})`,
        );
        const normOracle = symmetricNormalise(oracle.v, batch, m, 2);
        assert.ok(maxAbsDiff(vn!.data, normOracle) <= 1e-9 * scale, `${name}: SOFT-Norm scaling differs`);
      }
    });
  }
  test('variant B halves alpha when the first step would diverge, as the official loop does', () => {
    // A matrix whose max row sum badly underestimates nothing: all-ones 8×8 plus identity makes
    // ‖I − αP²‖₁ > 1.01 at alpha = 2/s²; the oracle records the halvings.
    const m = 8;
    const a = new Float64Array(m * m).fill(1);
    for (let i = 0; i < m; i++) a[i * m + i] = 2;
    const oracle = newtonInverse(a, m, 1, { variant: 'B', iterations: 3, dtype: 'float64' });
    const g = new Graph();
    const x = g.input('a', [1, m, m]);
    const [v] = new ReferenceRuntime('float64').run(g, { a }, { get: () => undefined }, [
      newtonInverseGraph(g, x, { variant: 'B', iterations: 3 }),
    ]);
    assert.ok(oracle.backoff!.halvings >= 1, `expected a back-off, got ${oracle.backoff!.halvings}`);
    assert.ok(maxAbsDiff(v!.data, oracle.v) < 1e-12);
  });
});

describe('Gaussian kernel: expanded and direct distances agree', () => {
  test('‖a‖² + ‖b‖² − 2a·b equals Σ(a − b)² through exp(−·/2)', () => {
    const g = new Graph();
    const a = g.input('a', [2, 5, 3]);
    const b = g.input('b', [2, 4, 3]);
    const k1 = gaussianKernel(g, a, b, 'expanded');
    const k2 = gaussianKernel(g, a, b, 'direct');
    const av = Array.from({ length: 30 }, (_, i) => Math.sin(i * 1.3));
    const bv = Array.from({ length: 24 }, (_, i) => Math.cos(i * 0.7));
    const [e, d] = new ReferenceRuntime('float64').run(g, { a: av, b: bv }, { get: () => undefined }, [k1, k2]);
    assert.deepEqual(e!.shape, [2, 5, 4]);
    // Independent check of one entry: batch 1, row 2, column 3.
    let dist = 0;
    for (let c = 0; c < 3; c++) dist += (av[(5 + 2) * 3 + c]! - bv[(4 + 3) * 3 + c]!) ** 2;
    assert.ok(Math.abs(d!.data[20 + 2 * 4 + 3]! - Math.exp(-dist / 2)) < 1e-15);
    assert.ok(maxAbsDiff(e!.data, d!.data) < 1e-14);
  });
});

describe('tiny SOFT model blocks vs the official intermediates (64×64 input, tiny_soft.pth)', () => {
  const cfg = readJson('ref/tiny_soft_config.json').constructor_kwargs;
  const logits = readJson('ref/tiny_soft_logits.json').tiny_soft['64x64'];
  const index: Record<string, { shape: number[]; offset_floats: number; numel: number }> = logits.intermediates_index;
  const bin = fs.readFileSync(path.join(FIXTURES, 'ref', logits.intermediates_file));
  const all = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  const tensor = (name: string) => {
    const e = index[name];
    assert.ok(e, `intermediate ${name} is in the index`);
    return all.subarray(e.offset_floats, e.offset_floats + e.numel);
  };
  const spec = specOf(
    `embed_dims: [${cfg.embed_dims}]\nnum_heads: [${cfg.num_heads}]\ndepths: [${cfg.depths}]\nnum_classes: ${cfg.num_classes}\nkernel_method: torch\n`,
  );
  const ck = loadCheckpoint(path.join(FIXTURES, 'ref', 'tiny_soft.pth'));
  const weights: WeightSource = { get: (key) => ck.tensors.get(key) as any };
  const grids = [16, 8, 4, 2];

  for (const stage of spec.stages) {
    for (let i = 0; i < stage.depth; i++) {
      const name = `block${stage.index}.${i}`;
      test(`${name} (${stage.attention}, ${stage.layout}) matches the official output`, () => {
        const input = i === 0 ? tensor(`block${stage.index}.0_in`) : tensor(`block${stage.index}.${i - 1}_out`);
        const expected = tensor(`${name}_out`);
        const c = layerContext(stage, grids[stage.index - 1]!, 1);
        const g = new Graph();
        const x = g.input('x', [1, c.tokens, stage.dim]);
        const y = block(g, x, stage, i, spec, c);
        for (const dtype of ['float64', 'float32'] as const) {
          const [out] = new ReferenceRuntime(dtype).run(g, { x: input }, weights, [y]);
          const scale = Math.max(...Array.from(expected, Math.abs));
          const diff = maxAbsDiff(out!.data, expected);
          // Measured ≤ 2.0e-6 (block1, |out| ≤ 3.5); a LayerNorm eps or GELU-flavour slip moves them ≥ 1e-4.
          assert.ok(diff <= 2e-6 * Math.max(1, scale), `${name} ${dtype}: max |diff| ${diff} (max |out| ${scale})`);
        }
      });
    }
  }
});
