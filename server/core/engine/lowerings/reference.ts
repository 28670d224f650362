/**
 * The TypeScript reference runtime: interprets a Graph on typed arrays, in float64
 * (the oracle other runtimes are tested against) or float32 (each op's result is
 * stored in a Float32Array, i.e. rounded to float32 per op, as a float32 runtime does).
 */
import { numel } from '../../shape';
import { liveNodes } from '../cost';
import type { Graph, Node, Tensor } from '../graph';

export type RefDType = 'float32' | 'float64';
export type RefArray = Float32Array | Float64Array;

export interface RefTensor {
  shape: readonly number[];
  data: RefArray;
}

export interface WeightSource {
  get(key: string): { shape: readonly number[]; data: ArrayLike<number> } | undefined;
}

function alloc(dtype: RefDType, n: number): RefArray {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Strides of `shape` viewed as `out` under broadcasting (0 where the dimension is broadcast). */
function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const own = stridesOf(shape);
  const off = out.length - shape.length;
  return out.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : own[i - off]!));
}

/** Calls f(outIndex, aIndex, bIndex) over a broadcast iteration space. */
function forEachBroadcast(
  out: readonly number[],
  sa: number[],
  sb: number[],
  f: (o: number, ia: number, ib: number) => void,
): void {
  const n = numel(out);
  const rank = out.length;
  const idx = new Array<number>(rank).fill(0);
  let ia = 0;
  let ib = 0;
  for (let o = 0; o < n; o++) {
    f(o, ia, ib);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      ia += sa[d]!;
      ib += sb[d]!;
      if (idx[d]! < out[d]!) break;
      ia -= sa[d]! * out[d]!;
      ib -= sb[d]! * out[d]!;
      idx[d] = 0;
    }
  }
}

/** erf to ~1e-15 (JavaScript has none): Maclaurin series for |x| < 2.5, erfc's continued fraction beyond. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = x;
    let term = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated backwards.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return x > 0 ? 1 - erfc : erfc - 1;
}

const UNARY: Record<string, (x: number) => number> = {
  exp: Math.exp,
  erf,
  tanh: Math.tanh,
  sqrt: Math.sqrt,
  neg: (x) => -x,
  square: (x) => x * x,
  reciprocal: (x) => 1 / x,
  abs: Math.abs,
  relu: (x) => (x > 0 ? x : 0),
  log: Math.log,
};

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export class ReferenceRuntime {
  constructor(readonly dtype: RefDType = 'float64') {}

  run(graph: Graph, inputs: Record<string, ArrayLike<number>>, weights: WeightSource, outputs: Tensor[]): RefTensor[] {
    const values: RefArray[] = [];
    // Only what the outputs depend on runs (a caller may ask for one intermediate of a layer).
    for (const id of liveNodes(graph, outputs)) {
      const { node, out } = graph.nodes[id]!;
      values[out.id] = this.eval(node, out, values, inputs, weights);
    }
    return outputs.map((t) => ({ shape: t.shape, data: values[t.id]! }));
  }

  private eval(
    node: Node,
    out: Tensor,
    v: RefArray[],
    inputs: Record<string, ArrayLike<number>>,
    weights: WeightSource,
  ): RefArray {
    const n = numel(out.shape);
    const r = alloc(this.dtype, n);
    switch (node.op) {
      case 'input': {
        const x = inputs[node.name];
        if (!x || x.length !== n)
          throw new Error(`input "${node.name}": expected ${n} values, got ${x?.length ?? 'none'}`);
        r.set(x);
        return r;
      }
      case 'weight': {
        const w = weights.get(node.key);
        if (!w) throw new Error(`weight "${node.key}" is missing`);
        if (numel(w.shape) !== n) throw new Error(`weight "${node.key}": shape [${w.shape}], expected [${out.shape}]`);
        r.set(w.data);
        return r;
      }
      case 'constant':
        r.set(node.data);
        return r;
      case 'binary': {
        const a = v[node.a.id]!;
        const b = v[node.b.id]!;
        const sa = broadcastStrides(node.a.shape, out.shape);
        const sb = broadcastStrides(node.b.shape, out.shape);
        const f = node.fn;
        forEachBroadcast(out.shape, sa, sb, (o, ia, ib) => {
          const x = a[ia]!;
          const y = b[ib]!;
          r[o] = f === 'add' ? x + y : f === 'sub' ? x - y : f === 'mul' ? x * y : f === 'div' ? x / y : x > y ? 1 : 0;
        });
        return r;
      }
      case 'unary': {
        const a = v[node.a.id]!;
        const f = UNARY[node.fn]!;
        for (let i = 0; i < n; i++) r[i] = f(a[i]!);
        return r;
      }
      case 'scale': {
        const a = v[node.a.id]!;
        for (let i = 0; i < n; i++) r[i] = a[i]! * node.k;
        return r;
      }
      case 'matmul':
        return this.matmul(node.a, node.b, out, v, r);
      case 'reduce': {
        const a = v[node.a.id]!;
        const shape = node.a.shape;
        const len = shape[node.axis]!;
        const inner = numel(shape.slice(node.axis + 1));
        const outer = numel(shape.slice(0, node.axis));
        for (let o = 0; o < outer; o++) {
          for (let i = 0; i < inner; i++) {
            let acc = node.fn === 'max' ? -Infinity : 0;
            for (let k = 0; k < len; k++) {
              const x = a[(o * len + k) * inner + i]!;
              acc = node.fn === 'sum' ? acc + x : node.fn === 'sumSquares' ? acc + x * x : Math.max(acc, x);
            }
            r[o * inner + i] = acc;
          }
        }
        return r;
      }
      case 'transpose': {
        const a = v[node.a.id]!;
        const inStrides = stridesOf(node.a.shape);
        const permuted = node.perm.map((p) => inStrides[p]!);
        forEachBroadcast(out.shape, permuted, permuted, (o, ia) => {
          r[o] = a[ia]!;
        });
        return r;
      }
      case 'reshape':
        r.set(v[node.a.id]!);
        return r;
      case 'softmax': {
        const a = v[node.a.id]!;
        const len = out.shape[out.shape.length - 1]!;
        for (let row = 0; row < n; row += len) {
          let max = -Infinity;
          for (let i = 0; i < len; i++) max = Math.max(max, a[row + i]!);
          let sum = 0;
          for (let i = 0; i < len; i++) sum += r[row + i] = Math.exp(a[row + i]! - max);
          for (let i = 0; i < len; i++) r[row + i] = r[row + i]! / sum;
        }
        return r;
      }
      case 'layerNorm': {
        const a = v[node.a.id]!;
        const w = v[node.weight.id]!;
        const b = v[node.bias.id]!;
        const len = out.shape[out.shape.length - 1]!;
        for (let row = 0; row < n; row += len) {
          let mean = 0;
          for (let i = 0; i < len; i++) mean += a[row + i]!;
          mean /= len;
          let varSum = 0;
          for (let i = 0; i < len; i++) varSum += (a[row + i]! - mean) ** 2;
          const inv = 1 / Math.sqrt(varSum / len + node.eps);
          for (let i = 0; i < len; i++) r[row + i] = (a[row + i]! - mean) * inv * w[i]! + b[i]!;
        }
        return r;
      }
      case 'gelu': {
        const a = v[node.a.id]!;
        for (let i = 0; i < n; i++) {
          const x = a[i]!;
          r[i] =
            node.approximation === 'erf'
              ? 0.5 * x * (1 + erf(x / Math.SQRT2))
              : 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
        }
        return r;
      }
      case 'conv2d':
        return conv2d(node, out, v, r);
      case 'slice': {
        const a = v[node.a.id]!;
        const inner = numel(node.a.shape.slice(node.axis + 1));
        const outer = numel(node.a.shape.slice(0, node.axis));
        const len = node.a.shape[node.axis]!;
        const width = (node.end - node.start) * inner;
        for (let o = 0; o < outer; o++)
          r.set(a.subarray((o * len + node.start) * inner, (o * len + node.start) * inner + width), o * width);
        return r;
      }
      case 'concat': {
        const outer = numel(out.shape.slice(0, node.axis));
        const inner = numel(out.shape.slice(node.axis + 1));
        const rowOut = out.shape[node.axis]! * inner;
        let offset = 0;
        for (const p of node.parts) {
          const a = v[p.id]!;
          const width = p.shape[node.axis]! * inner;
          for (let o = 0; o < outer; o++) r.set(a.subarray(o * width, (o + 1) * width), o * rowOut + offset);
          offset += width;
        }
        return r;
      }
    }
  }

  private matmul(ta: Tensor, tb: Tensor, out: Tensor, v: RefArray[], r: RefArray): RefArray {
    const a = v[ta.id]!;
    const b = v[tb.id]!;
    const [m, k] = ta.shape.slice(-2) as [number, number];
    const nn = tb.shape[tb.shape.length - 1]!;
    const batchShape = out.shape.slice(0, -2);
    const sa = broadcastStrides(ta.shape.slice(0, -2), batchShape).map((s) => s * m * k);
    const sb = broadcastStrides(tb.shape.slice(0, -2), batchShape).map((s) => s * k * nn);
    // Accumulate each output row in float64, then store (rounded to the runtime's dtype).
    const row = new Float64Array(nn);
    forEachBroadcast(batchShape, sa, sb, (o, ia, ib) => {
      const base = o * m * nn;
      for (let i = 0; i < m; i++) {
        row.fill(0);
        for (let p = 0; p < k; p++) {
          const x = a[ia + i * k + p]!;
          if (x === 0) continue;
          const bRow = ib + p * nn;
          for (let j = 0; j < nn; j++) row[j]! += x * b[bRow + j]!;
        }
        for (let j = 0; j < nn; j++) r[base + i * nn + j] = row[j]!;
      }
    });
    return r;
  }
}

/** Direct convolution, accumulated in float64 per output element. */
function conv2d(node: Extract<Node, { op: 'conv2d' }>, out: Tensor, v: RefArray[], r: RefArray): RefArray {
  const x = v[node.x.id]!;
  const w = v[node.w.id]!;
  const bias = node.bias ? v[node.bias.id]! : null;
  const [B, C, H, W] = node.x.shape as [number, number, number, number];
  const [Co, Cg, kh, kw] = node.w.shape as [number, number, number, number];
  const [, , Ho, Wo] = out.shape as [number, number, number, number];
  const [sh, sw] = node.stride;
  const [ph, pw] = node.pad;
  const perGroupOut = Co / node.groups;
  for (let b = 0; b < B; b++) {
    for (let co = 0; co < Co; co++) {
      const c0 = Math.floor(co / perGroupOut) * Cg;
      for (let oy = 0; oy < Ho; oy++) {
        for (let ox = 0; ox < Wo; ox++) {
          let acc = bias ? bias[co]! : 0;
          for (let cg = 0; cg < Cg; cg++) {
            const xBase = (b * C + c0 + cg) * H;
            const wBase = (co * Cg + cg) * kh;
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sh - ph + ky;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * sw - pw + kx;
                if (ix < 0 || ix >= W) continue;
                acc += x[(xBase + iy) * W + ix]! * w[(wBase + ky) * kw + kx]!;
              }
            }
          }
          r[((b * Co + co) * Ho + oy) * Wo + ox] = acc;
        }
      }
    }
  }
  return r;
}

/** A weight source over a plain map of key → {shape, data}. */
export function mapWeights(map: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>): WeightSource {
  return { get: (key) => map.get(key) };
}
