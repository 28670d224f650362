/**
 * UFO attention, defined once on the engine's op set and run on the TypeScript
 * reference runtime, against the official-style seed implementation's outputs (ufo.json).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tokenTiles, ufoAttention } from '../server/core/engine/attention/ufo';
import { ReferenceRuntime, mapWeights } from '../server/core/engine/lowerings/reference';
import { Graph } from '../server/core/engine/graph';
import { readJson } from './helpers/fixtures';

const ref = readJson('ref/ufo.json');

function flat(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flat) : [x as number];
}

function run(caseName: string, dtype: 'float32' | 'float64', tokenTile?: number) {
  const c = ref.cases[caseName];
  const { d_model: D, h } = ref.config;
  const [B, N] = ref.config.input_shape as number[];
  const g = new Graph();
  const x = g.input('x', [B!, N!, D]);
  const y = ufoAttention(g, x, 'attn', {
    batch: B!,
    tokens: N!,
    dim: D,
    heads: h,
    ...(tokenTile ? { tokenTile } : {}),
  });
  const weights = new Map(
    Object.entries<unknown>(c.weights).map(([k, w]) => [
      `attn.${k}`,
      { shape: c.weight_shapes[k] as number[], data: flat(w) },
    ]),
  );
  const [out] = new ReferenceRuntime(dtype).run(g, { x: flat(ref.input) }, mapWeights(weights), [y]);
  return { out: out!, expected: flat(c.output_float32), c, g };
}

describe('UFO attention vs the reference outputs', () => {
  for (const name of Object.keys(ref.cases)) {
    test(`${name}: float64 and float32 reference runs match the official float32 output, untiled and in token tiles`, () => {
      // Untiled: x itself, no slice; 16 → tiles of 16, 17, 16; 7 → seven of 7; 1 → 49 tiles of one token.
      for (const [dtype, tile] of [
        ['float64', undefined],
        ['float32', undefined],
        ['float64', 16],
        ['float32', 16],
        ['float64', 1],
        ['float32', 7],
      ] as const) {
        const { out, expected, c, g } = run(name, dtype, tile);
        const slices = g.nodes.filter((n) => n.node.op === 'slice').length;
        assert.equal(slices, tile ? Math.floor(49 / tile) : 0, `${name} tile ${tile}: one slice of x per tile`);
        assert.deepEqual(out.shape, [2, 49, 32]);
        let maxDiff = 0;
        for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out.data[i]! - expected[i]!));
        // The official float32 and float64 runs differ by ≤ 7.8e-7 (recorded); allow 4× that.
        const tol = 4 * Math.max(c.max_abs_diff_float32_vs_float64, 1e-7);
        assert.ok(
          maxDiff <= tol,
          `${name} ${dtype} tile ${tile ?? 'none'}: max |diff| ${maxDiff} > ${tol} (max |out| ${c.max_abs_output})`,
        );
      }
    });
  }
});

describe('token tiles', () => {
  test('cover every token once, in order, each of at least one tile and under two', () => {
    assert.deepEqual(tokenTiles(49, 16), [
      [0, 16],
      [16, 33],
      [33, 49],
    ]);
    assert.deepEqual(tokenTiles(49, 7), [
      [0, 7],
      [7, 14],
      [14, 21],
      [21, 28],
      [28, 35],
      [35, 42],
      [42, 49],
    ]);
    assert.deepEqual(tokenTiles(49, 49), [[0, 49]]);
    // Under two tiles' worth: one tile, not a tile and a small remainder.
    assert.deepEqual(tokenTiles(49, 25), [[0, 49]]);
    assert.deepEqual(tokenTiles(49, 1000), [[0, 49]]);
    // A fractional tile (bytes / (4·B·D)) is a lower bound; never below one token per tile.
    assert.deepEqual(tokenTiles(5, 2.9), [[0, 5]]);
    assert.deepEqual(tokenTiles(3, 0.2), [
      [0, 1],
      [1, 2],
      [2, 3],
    ]);
    for (const [n, t, count] of [
      [63504, 4096, 15],
      [1225, 4096, 1],
      [4900, 4096, 1],
      [9604, 4096, 2],
      [38416, 4096, 9],
    ] as const) {
      const tiles = tokenTiles(n, t);
      assert.equal(tiles.length, count, `${n} tokens in tiles of ${t}`);
      tiles.forEach(([a, b], i) => {
        assert.equal(a, i === 0 ? 0 : tiles[i - 1]![1]);
        if (count > 1) assert.ok(b - a >= t && b - a < 2 * t, `${n}: tile ${i} has ${b - a} tokens`);
      });
      assert.equal(tiles.at(-1)![1], n);
    }
  });
});
