/**
 * Reverse-mode differentiation on the op set (engine/autodiff.ts) against central finite
 * differences in float64 on the reference runtime: every op case the runtimes are tested with,
 * every attention on a small stage (SOFT through its Newton iterations, Nyströmformer through its
 * inverse iteration), whole blocks; SOFT's analytic Newton gradient against the through-iteration
 * one (equal at convergence, told apart before it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gradients } from '../server/core/engine/autodiff';
import { attentionLayer, block, layerContext } from '../server/core/engine/blocks';
import { Graph, type Tensor } from '../server/core/engine/graph';
import { mapWeights, ReferenceRuntime } from '../server/core/engine/lowerings/reference';
import { newtonInverseGraph } from '../server/core/engine/attention/pinv';
import { ATTENTION_KINDS, type NewtonBackward } from '../server/core/models/spec';
import { numel } from '../server/core/shape';
import { cases, values } from './helpers/op-cases';
import { innerProductLoss, randomWeights, smallSpec } from './helpers/gradient-cases';

type Weights = Map<string, { shape: number[]; data: Float64Array }>;

interface Differentiable {
  graph: Graph;
  loss: Tensor;
  inputs: Record<string, Float64Array>;
  weights: Weights;
}

const ref = new ReferenceRuntime('float64');

/** The same weights in float64 (the finite differences perturb them in place). */
function inFloat64(w: Map<string, { shape: number[]; data: ArrayLike<number> }>): Weights {
  return new Map([...w].map(([key, { shape, data }]) => [key, { shape, data: Float64Array.from(data) }]));
}

function lossValue(d: Differentiable): number {
  return ref.run(d.graph, d.inputs, mapWeights(d.weights), [d.loss])[0]!.data[0]!;
}

/**
 * Every input's and weight's gradient from the backward graph against central differences
 * (each checked at up to `samples` entries spread over the tensor).
 */
function checkAgainstFiniteDifferences(
  d: Differentiable,
  o: { samples?: number; h?: number; tol?: number } = {},
): number {
  const h = o.h ?? 1e-6;
  const tol = o.tol ?? 1e-6;
  const leaves: { name: string; tensor: Tensor; data: Float64Array }[] = [
    ...d.graph.inputs.map(({ name, tensor }) => ({ name, tensor, data: d.inputs[name]! })),
    ...d.graph.weights
      .filter(({ key }, i, all) => all.findIndex((w) => w.key === key) === i)
      .map(({ key, tensor }) => ({ name: key, tensor, data: d.weights.get(key)!.data })),
  ];
  const grads = gradients(
    d.graph,
    d.loss,
    leaves.map((l) => l.tensor),
  );
  const computed = ref.run(d.graph, d.inputs, mapWeights(d.weights), grads);
  let worst = 0;
  leaves.forEach((leaf, li) => {
    const g = computed[li]!.data;
    const n = leaf.data.length;
    const count = Math.min(n, o.samples ?? n);
    for (let s = 0; s < count; s++) {
      const i = count === n ? s : Math.floor((s * n) / count + ((s * 7919) % Math.max(1, Math.floor(n / count))));
      const keep = leaf.data[i]!;
      leaf.data[i] = keep + h;
      const up = lossValue(d);
      leaf.data[i] = keep - h;
      const down = lossValue(d);
      leaf.data[i] = keep;
      const fd = (up - down) / (2 * h);
      const err = Math.abs(fd - g[i]!) / Math.max(1, Math.abs(fd));
      worst = Math.max(worst, err);
      assert.ok(
        err <= tol,
        `${leaf.name}[${i}]: backward ${g[i]} vs finite difference ${fd} (rel ${err.toExponential(2)})`,
      );
    }
  });
  return worst;
}

describe('gradients of every op case against finite differences (float64 reference)', () => {
  cases().forEach((c, k) => {
    test(c.name, () => {
      const g = c.graph;
      const loss = innerProductLoss(g, c.outputs, 1000 + k);
      const inputs = Object.fromEntries(Object.entries(c.inputs).map(([n, v]) => [n, Float64Array.from(v)]));
      checkAgainstFiniteDifferences({ graph: g, loss, inputs, weights: inFloat64(c.weights) });
    });
  });
});

describe('gradients of every attention and block against finite differences', () => {
  for (const attention of ATTENTION_KINDS) {
    for (const level of ['attention', 'block'] as const) {
      test(`${attention} ${level} (stage 1, 4×4 grid, batch 2): d/dx and d/dW`, () => {
        const spec = smallSpec(attention);
        const stage = spec.stages[0]!;
        const c = { ...layerContext(stage, 4, 2), newtonBackward: 'unrolled' as NewtonBackward };
        const g = new Graph();
        const x = g.input('x', [2, c.tokens, stage.dim]);
        const y =
          level === 'block' ? block(g, x, stage, 0, spec, c) : attentionLayer(g, x, `block1.0.attn`, stage, spec, c);
        const loss = innerProductLoss(g, [y], 77);
        const inputs = { x: Float64Array.from(values(numel(x.shape), 5, -1, 1)) };
        checkAgainstFiniteDifferences(
          { graph: g, loss, inputs, weights: inFloat64(randomWeights(g, 3)) },
          { samples: 6, h: 1e-5, tol: 2e-6 },
        );
      });
    }
  }
});

describe("SOFT's Newton inverse: the analytic gradient against back-propagation through the iterations", () => {
  /** A Gaussian kernel matrix on m random points (symmetric positive definite, as K2 is). */
  function kernelMatrix(m: number, seed: number): Float64Array {
    const pts = values(m * 3, seed, -1, 1);
    const a = new Float64Array(m * m);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < m; j++) {
        let d = 0;
        for (let k = 0; k < 3; k++) d += (pts[i * 3 + k]! - pts[j * 3 + k]!) ** 2;
        a[i * m + j] = Math.exp(-d / 2);
      }
    return a;
  }

  function gradientOf(backward: NewtonBackward, iterations: number, a: Float64Array, m: number): Float64Array {
    const g = new Graph();
    const x = g.input('a', [1, m, m]);
    const v = newtonInverseGraph(g, x, { variant: 'A', iterations, backward });
    const loss = innerProductLoss(g, [v], 9);
    const [d] = gradients(g, loss, [x]);
    return ref.run(g, { a }, mapWeights(new Map()), [d!])[0]!.data as Float64Array;
  }

  function relDiff(a: Float64Array, b: Float64Array): number {
    let num = 0;
    let den = 0;
    for (let i = 0; i < a.length; i++) {
      num += (a[i]! - b[i]!) ** 2;
      den += b[i]! ** 2;
    }
    return Math.sqrt(num / den);
  }

  const m = 6;
  const a = kernelMatrix(m, 17);

  test('through the iterations equals finite differences of the unrolled iteration', () => {
    const g = new Graph();
    const x = g.input('a', [1, m, m]);
    const v = newtonInverseGraph(g, x, { variant: 'A', iterations: 8, backward: 'unrolled' });
    checkAgainstFiniteDifferences(
      { graph: g, loss: innerProductLoss(g, [v], 9), inputs: { a: Float64Array.from(a) }, weights: new Map() },
      { h: 1e-6, tol: 1e-5 },
    );
  });

  test('converged (60 iterations): the analytic −Vᵀ·G·Vᵀ equals the through-iteration gradient', () => {
    const d = relDiff(gradientOf('analytic', 60, a, m), gradientOf('unrolled', 60, a, m));
    assert.ok(d < 1e-8, `relative difference ${d}`);
  });

  test('not converged (3 iterations): the two differ, and the analytic one is not the derivative', () => {
    const d = relDiff(gradientOf('analytic', 3, a, m), gradientOf('unrolled', 3, a, m));
    assert.ok(d > 1e-2, `relative difference ${d} (three iterations are far from P⁻¹)`);
  });
});
