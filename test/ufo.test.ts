/**
 * UFO attention, defined once on the engine's op set and run on the TypeScript
 * reference runtime, against the official-style seed implementation's outputs (ufo.json).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ufoAttention } from '../server/engine/attention/ufo';
import { ReferenceRuntime, mapWeights } from '../server/engine/backends/reference';
import { Graph } from '../server/engine/graph';
import { readJson } from './helpers/fixtures';

const ref = readJson('ref/ufo.json');

function flat(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flat) : [x as number];
}

function run(caseName: string, dtype: 'float32' | 'float64') {
  const c = ref.cases[caseName];
  const { d_model: D, h } = ref.config;
  const [B, N] = ref.config.input_shape as number[];
  const g = new Graph();
  const x = g.input('x', [B!, N!, D]);
  const y = ufoAttention(g, x, 'attn', { batch: B!, tokens: N!, dim: D, heads: h });
  const weights = new Map(Object.entries<unknown>(c.weights).map(([k, w]) => [`attn.${k}`, { shape: c.weight_shapes[k] as number[], data: flat(w) }]));
  const [out] = new ReferenceRuntime(dtype).run(g, { x: flat(ref.input) }, mapWeights(weights), [y]);
  return { out: out!, expected: flat(c.output_float32), c };
}

describe('UFO attention vs the reference outputs', () => {
  for (const name of Object.keys(ref.cases)) {
    test(`${name}: float64 and float32 reference runs match the official float32 output`, () => {
      for (const dtype of ['float64', 'float32'] as const) {
        const { out, expected, c } = run(name, dtype);
        assert.deepEqual(out.shape, [2, 49, 32]);
        let maxDiff = 0;
        for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out.data[i]! - expected[i]!));
        // The official float32 and float64 runs differ by ≤ 7.8e-7 (recorded); allow 4× that.
        const tol = 4 * Math.max(c.max_abs_diff_float32_vs_float64, 1e-7);
        assert.ok(maxDiff <= tol, `${name} ${dtype}: max |diff| ${maxDiff} > ${tol} (max |out| ${c.max_abs_output})`);
      }
    });
  }
});
