/** The reference runtime's ops against values computed independently (closed forms, known constants). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ReferenceRuntime, erf, mapWeights } from '../server/core/engine/lowerings/reference';
import { Graph } from '../server/core/engine/graph';

const none = mapWeights(new Map());

describe('reference runtime ops', () => {
  test('erf matches tabulated values to 1e-14', () => {
    const table: [number, number][] = [
      [0, 0],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [-1.5, -0.9661051464753108],
      [6, 1],
    ];
    for (const [x, y] of table) assert.ok(Math.abs(erf(x) - y) < 1e-14, `erf(${x}) = ${erf(x)}, expected ${y}`);
  });

  test('broadcasting, transpose and batched matmul agree with explicit loops', () => {
    const g = new Graph();
    const a = g.input('a', [2, 3, 4]);
    const b = g.input('b', [4, 5]);
    const bias = g.input('bias', [5]);
    const y = g.addT(g.matmul(a, b), bias);
    const t = g.transpose(y, [2, 0, 1]);
    const A = Array.from({ length: 24 }, (_, i) => Math.sin(i));
    const B = Array.from({ length: 20 }, (_, i) => Math.cos(i));
    const C = [1, 2, 3, 4, 5];
    const [out, tr] = new ReferenceRuntime('float64').run(g, { a: A, b: B, bias: C }, none, [y, t]);
    for (let n = 0; n < 2; n++)
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 5; j++) {
          let s = C[j]!;
          for (let k = 0; k < 4; k++) s += A[n * 12 + i * 4 + k]! * B[k * 5 + j]!;
          assert.ok(Math.abs(out!.data[n * 15 + i * 5 + j]! - s) < 1e-12);
          assert.equal(tr!.data[j * 6 + n * 3 + i], out!.data[n * 15 + i * 5 + j]);
        }
    assert.deepEqual(tr!.shape, [5, 2, 3]);
  });

  test('softmax rows sum to 1 and layerNorm gives mean 0, variance 1 before the affine', () => {
    const g = new Graph();
    const x = g.input('x', [3, 7]);
    const w = g.input('w', [7]);
    const b = g.input('b', [7]);
    const s = g.softmax(x);
    const ln = g.layerNorm(x, w, b, 0);
    const X = Array.from({ length: 21 }, (_, i) => ((i * 37) % 11) - 5);
    const [sm, l] = new ReferenceRuntime('float64').run(g, { x: X, w: Array(7).fill(1), b: Array(7).fill(0) }, none, [
      s,
      ln,
    ]);
    for (let r = 0; r < 3; r++) {
      const row = Array.from(sm!.data.slice(r * 7, r * 7 + 7));
      assert.ok(Math.abs(row.reduce((p, q) => p + q, 0) - 1) < 1e-15);
      assert.ok(Math.abs(row[0]! / row[1]! - Math.exp(X[r * 7]! - X[r * 7 + 1]!)) < 1e-12);
      const lr = Array.from(l!.data.slice(r * 7, r * 7 + 7));
      const mean = lr.reduce((p, q) => p + q, 0) / 7;
      const variance = lr.reduce((p, q) => p + (q - mean) ** 2, 0) / 7;
      assert.ok(Math.abs(mean) < 1e-12 && Math.abs(variance - 1) < 1e-12);
    }
  });

  test('float32 runtime rounds every result to float32', () => {
    const g = new Graph();
    const x = g.input('x', [1]);
    const y = g.scale(x, 1 / 3);
    const [out] = new ReferenceRuntime('float32').run(g, { x: [1] }, none, [y]);
    assert.equal(out!.data[0], Math.fround(1 / 3));
    assert.ok(out!.data instanceof Float32Array);
  });

  test('shape errors are caught while building the graph', () => {
    const g = new Graph();
    assert.throws(() => g.matmul(g.input('a', [2, 3]), g.input('b', [4, 5])), /matmul: \[2,3\] × \[4,5\]/);
    assert.throws(() => g.addT(g.input('c', [2, 3]), g.input('d', [4])), /do not broadcast/);
  });
});
