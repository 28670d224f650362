/**
 * Op-by-op cases of the engine's op set (broadcasting, every unary, batched matmul, reductions,
 * layout ops, softmax, layerNorm, gelu, grouped convolutions, outputs that are weights), built
 * once and run by each runtime's suite against the float64 reference.
 */
import { Graph, type Tensor } from '../../server/core/engine/graph';
import { numel } from '../../server/core/shape';

/** Deterministic values in [lo, hi). */
export function values(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((s >>> 8) / 2 ** 24) * (hi - lo);
  }
  return out;
}

export interface Case {
  name: string;
  graph: Graph;
  outputs: Tensor[];
  inputs: Record<string, Float32Array>;
  weights: Map<string, { shape: number[]; data: Float32Array }>;
  /** Allowed |diff| relative to max(1, max |reference|) of each output. */
  tol?: number;
}

class CaseBuilder {
  readonly g = new Graph();
  readonly inputs: Record<string, Float32Array> = {};
  readonly weights = new Map<string, { shape: number[]; data: Float32Array }>();
  private seed = 1;
  input(name: string, shape: number[], lo = -1, hi = 1): Tensor {
    this.inputs[name] = values(numel(shape), this.seed++ * 7919, lo, hi);
    return this.g.input(name, shape);
  }
  weight(key: string, shape: number[], lo = -1, hi = 1): Tensor {
    this.weights.set(key, { shape, data: values(numel(shape), this.seed++ * 104729, lo, hi) });
    return this.g.weight(key, shape);
  }
  done(name: string, outputs: Tensor[], tol?: number): Case {
    return { name, graph: this.g, outputs, inputs: this.inputs, weights: this.weights, ...(tol ? { tol } : {}) };
  }
}

export function cases(): Case[] {
  const list: Case[] = [];
  const add = (name: string, f: (c: CaseBuilder) => Tensor[], tol?: number) => {
    const c = new CaseBuilder();
    list.push(c.done(name, f(c), tol));
  };
  add('binary add/sub/mul/div with broadcasting', (c) => {
    const a = c.input('a', [2, 3, 4]);
    const b = c.input('b', [3, 1], 0.5, 2);
    const d = c.input('d', [4], 0.5, 2);
    const g = c.g;
    return [g.addT(a, b), g.sub(d, a), g.mul(a, d), g.div(a, b), g.div(b, g.reshape(d, [1, 1, 4]))];
  });
  add('greater gives a 1/0 float mask (ties give 0)', (c) => {
    const g = c.g;
    const a = g.constant([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = g.constant([2, 2, 2], [3]);
    const x = c.input('x', [2, 3]);
    return [g.binary('greater', a, b), g.binary('greater', b, a), g.mul(g.binary('greater', x, g.scalar(0)), x)];
  });
  add('unary exp/erf/tanh/neg/square/abs/relu', (c) => {
    const x = c.input('x', [4, 16], -3, 3);
    const g = c.g;
    return (['exp', 'erf', 'tanh', 'neg', 'square', 'abs', 'relu'] as const).map((fn) => g.unary(fn, x));
  });
  add('unary sqrt/reciprocal/log on positive inputs, scale', (c) => {
    const x = c.input('x', [3, 10], 0.1, 4);
    const g = c.g;
    return [g.unary('sqrt', x), g.unary('reciprocal', x), g.unary('log', x), g.scale(x, -0.37)];
  });
  add('matmul 2-D, and a shared right operand folded into rows', (c) => {
    const g = c.g;
    return [
      g.matmul(c.input('a', [5, 7]), c.input('b', [7, 3])),
      g.matmul(c.input('x', [2, 3, 4, 5]), c.weight('w', [5, 6])),
    ];
  });
  add('matmul batched: equal batches, a shared left operand, and [2,1]×[1,3] broadcasting', (c) => {
    const g = c.g;
    return [
      g.matmul(c.input('a', [2, 3, 4, 5]), c.input('b', [2, 3, 5, 6])),
      g.matmul(c.input('l', [4, 5]), c.input('r', [2, 3, 5, 6])),
      g.matmul(c.input('p', [2, 1, 4, 5]), c.input('q', [1, 3, 5, 6])),
      g.matmul(c.input('s', [3, 4, 5]), c.input('t', [2, 1, 5, 6])),
    ];
  });
  add('reduce sum/max/sumSquares over each axis', (c) => {
    const x = c.input('x', [2, 3, 4], -2, 2);
    const g = c.g;
    return [0, 1, 2].flatMap((ax) => (['sum', 'max', 'sumSquares'] as const).map((fn) => g.reduce(fn, x, ax)));
  });
  add('transpose, reshape, slice, concat', (c) => {
    const x = c.input('x', [2, 3, 4]);
    const y = c.input('y', [2, 3, 2]);
    const g = c.g;
    const t = g.transpose(x, [2, 0, 1]);
    return [
      t,
      g.reshape(t, [8, 3]),
      g.slice(x, 1, 1, 3),
      g.slice(x, -1, 2, 4),
      g.concat([x, y, g.slice(x, 2, 0, 1)], -1),
      g.concat([x, x], 0),
    ];
  });
  add('softmax over the last axis, with large logits', (c) => {
    const x = c.input('x', [2, 3, 7], -20, 20);
    return [c.g.softmax(x)];
  });
  add('layerNorm with weight and bias (biased variance)', (c) => {
    const x = c.input('x', [2, 5, 16], -2, 3);
    const g = c.g;
    return [
      g.layerNorm(x, c.weight('ln.weight', [16], 0.5, 1.5), c.weight('ln.bias', [16]), 1e-5),
      g.layerNorm(
        g.scale(x, 1e-2),
        g.constant(new Array(16).fill(1), [16]),
        g.constant(new Array(16).fill(0), [16]),
        1e-6,
      ),
    ];
  });
  add('gelu, erf and tanh forms', (c) => {
    const x = c.input('x', [4, 32], -5, 5);
    return [c.g.gelu(x, 'erf'), c.g.gelu(x, 'tanh')];
  });
  add('conv2d groups 1: 3×3 stride 2 pad 1 with bias; 4×4 stride 4 patch embedding; floor of odd sizes', (c) => {
    const x = c.input('x', [2, 3, 9, 8]);
    const g = c.g;
    return [
      g.conv2d(x, c.weight('c1.weight', [5, 3, 3, 3]), c.weight('c1.bias', [5]), { stride: 2, pad: 1 }),
      g.conv2d(x, c.weight('pe.weight', [6, 3, 4, 4]), null, { stride: 4 }),
      g.conv2d(x, c.weight('c2.weight', [2, 3, 2, 3]), null, { stride: [2, 1], pad: [0, 2] }),
    ];
  });
  add('conv2d depthwise (groups = C, multiplier 1 and 2) and grouped (groups 2)', (c) => {
    const x = c.input('x', [2, 4, 7, 6]);
    const g = c.g;
    return [
      g.conv2d(x, c.weight('dw.weight', [4, 1, 3, 3]), c.weight('dw.bias', [4]), { pad: 1, groups: 4 }),
      g.conv2d(x, c.weight('dw2.weight', [8, 1, 3, 3]), null, { stride: 2, pad: 1, groups: 4 }),
      g.conv2d(x, c.weight('gc.weight', [6, 2, 3, 2]), c.weight('gc.bias', [6]), {
        stride: [1, 2],
        pad: [1, 0],
        groups: 2,
      }),
    ];
  });
  add('outputs that are weights, constants and folded weight expressions; one output twice', (c) => {
    const g = c.g;
    const w = c.weight('w', [3, 4]);
    const k = g.constant([1, 2, 3], [3, 1]);
    const folded = g.addT(g.transpose(w, [1, 0]), g.reshape(k, [1, 3]));
    const x = c.input('x', [2, 4]);
    const y = g.matmul(x, folded);
    return [w, k, folded, y, y];
  });
  return list;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
