/**
 * Reverse-mode differentiation on the op set: each op's vector–Jacobian product is written once,
 * with the op set itself, and appended to the same graph. The backward graph is therefore an
 * ordinary graph, and every lowering (float64/float32 reference, ONNX, TF.js, PyTorch) runs it
 * with no autograd of its own, exactly as it runs the forward graph. The forward tensors a
 * gradient reads (softmax outputs, exp results, matmul operands) stay live until the backward
 * nodes that read them, so the graph's liveness peak is the training-step memory estimate.
 *
 * Where a tensor carries a GradientRule (graph.ts) the rule replaces the derivative of the nodes
 * that compute it: SOFT's analytic Newton inverse gradient is such a rule.
 *
 * Conventions match PyTorch's autograd where the maths leaves a choice: the maximum's gradient is
 * shared equally among tied elements (torch.amax), |x|′ and relu′ are 0 at 0.
 */
import { numel } from '../shape';
import { operandsOf, type Graph, type Node, type Tensor } from './graph';

export interface GradientOptions {
  /**
   * The gradient flowing into `output` (its shape). Absent: `output` must hold one value (a loss),
   * seeded with 1.
   */
  seed?: Tensor;
}

/**
 * Gradients of `output` with respect to each of `wrt`, as tensors of the same graph (zeros where
 * `output` does not depend on one). Nodes the gradients need are appended to `g`.
 */
export function gradients(g: Graph, output: Tensor, wrt: readonly Tensor[], opts: GradientOptions = {}): Tensor[] {
  let seed = opts.seed;
  if (seed) {
    if (!sameShape(seed.shape, output.shape))
      throw new Error(`gradients: seed [${seed.shape}] for an output of shape [${output.shape}]`);
  } else {
    if (numel(output.shape) !== 1)
      throw new Error(`gradients: output of shape [${output.shape}] is not a scalar; pass a seed`);
    seed = g.constant([1], output.shape, 'd(loss)/d(loss)');
  }

  const reaches = dependsOnAny(g, output, wrt);
  const grads = new Map<number, Tensor>();
  const accumulate = (t: Tensor, d: Tensor | null): void => {
    if (!d || !reaches[t.id]) return;
    if (!sameShape(d.shape, t.shape))
      throw new Error(`gradient of [${t.shape}] has shape [${d.shape}] (${g.nodes[t.id]!.node.op} node ${t.id})`);
    const prev = grads.get(t.id);
    grads.set(t.id, prev ? g.addT(prev, d) : d);
  };
  accumulate(output, seed);

  // Every consumer of a tensor comes after it, so by the time the walk reaches a tensor its gradient is complete.
  for (let id = output.id; id >= 0; id--) {
    const gy = grads.get(id);
    if (!gy) continue;
    const rule = g.gradientRules.get(id);
    if (rule) {
      const ds = rule.vjp(g, gy);
      rule.inputs.forEach((t, i) => accumulate(t, ds[i] ?? null));
      continue;
    }
    const { node, out } = g.nodes[id]!;
    const want = (t: Tensor): boolean => reaches[t.id] === true;
    vjp(g, node, out, gy, want, accumulate);
  }
  return wrt.map((t) => grads.get(t.id) ?? zeros(g, t.shape));
}

/** reaches[id]: tensor id depends on (or is) one of `wrt`, and `output` depends on it. */
function dependsOnAny(g: Graph, output: Tensor, wrt: readonly Tensor[]): boolean[] {
  const from = new Array<boolean>(output.id + 1).fill(false);
  for (const t of wrt) if (t.id <= output.id) from[t.id] = true;
  for (let id = 0; id <= output.id; id++) {
    if (from[id]) continue;
    const rule = g.gradientRules.get(id);
    const ins = rule ? rule.inputs : operandsOf(g.nodes[id]!.node);
    if (ins.some((t) => from[t.id])) from[id] = true;
  }
  const to = new Array<boolean>(output.id + 1).fill(false);
  to[output.id] = true;
  for (let id = output.id; id >= 0; id--) {
    if (!to[id]) continue;
    const rule = g.gradientRules.get(id);
    for (const t of rule ? rule.inputs : operandsOf(g.nodes[id]!.node)) to[t.id] = true;
  }
  return from.map((f, i) => f && to[i]!);
}

type Accumulate = (t: Tensor, d: Tensor | null) => void;

/** The vector–Jacobian product of one node: passes `gy` (the gradient at `out`) to its operands. */
function vjp(g: Graph, node: Node, out: Tensor, gy: Tensor, want: (t: Tensor) => boolean, acc: Accumulate): void {
  switch (node.op) {
    case 'input':
    case 'weight':
    case 'constant':
      return;
    case 'binary':
      return binaryVjp(g, node, out, gy, want, acc);
    case 'unary':
      return acc(node.a, g.mul(gy, unaryDerivative(g, node.fn, node.a, out)));
    case 'scale':
      return acc(node.a, g.scale(gy, node.k));
    case 'matmul':
      return matmulVjp(g, node.a, node.b, gy, want, acc);
    case 'reduce': {
      const a = node.a;
      if (node.fn === 'sum') return acc(a, broadcastTo(g, gy, a.shape));
      if (node.fn === 'sumSquares') return acc(a, g.mul(g.scale(a, 2), gy));
      // max: shared equally among the elements equal to the maximum.
      const isMax = g.sub(g.scalar(1, 'one'), g.binary('greater', out, a));
      const share = g.div(isMax, g.reduce('sum', isMax, node.axis));
      return acc(a, g.mul(share, gy));
    }
    case 'transpose': {
      const inverse = new Array<number>(node.perm.length);
      node.perm.forEach((p, i) => (inverse[p] = i));
      return acc(node.a, g.transpose(gy, inverse));
    }
    case 'reshape':
      return acc(node.a, g.reshape(gy, node.a.shape));
    case 'softmax': {
      const dot = g.reduce('sum', g.mul(gy, out), -1);
      return acc(node.a, g.mul(out, g.sub(gy, dot)));
    }
    case 'layerNorm':
      return layerNormVjp(g, node, gy, want, acc);
    case 'gelu':
      return acc(node.a, g.mul(gy, geluDerivative(g, node.a, node.approximation)));
    case 'conv2d':
      return conv2dVjp(g, node, gy, want, acc);
    case 'slice': {
      const parts: Tensor[] = [];
      const len = node.a.shape[node.axis]!;
      const side = (n: number) => node.a.shape.map((d, i) => (i === node.axis ? n : d));
      if (node.start > 0) parts.push(zeros(g, side(node.start)));
      parts.push(gy);
      if (node.end < len) parts.push(zeros(g, side(len - node.end)));
      return acc(node.a, parts.length === 1 ? gy : g.concat(parts, node.axis));
    }
    case 'concat': {
      let start = 0;
      for (const p of node.parts) {
        const end = start + p.shape[node.axis]!;
        if (want(p)) acc(p, start === 0 && end === out.shape[node.axis] ? gy : g.slice(gy, node.axis, start, end));
        start = end;
      }
      return;
    }
  }
}

function binaryVjp(
  g: Graph,
  node: Extract<Node, { op: 'binary' }>,
  out: Tensor,
  gy: Tensor,
  want: (t: Tensor) => boolean,
  acc: Accumulate,
): void {
  const { a, b } = node;
  switch (node.fn) {
    case 'greater':
      return; // piecewise constant
    case 'add':
      if (want(a)) acc(a, sumTo(g, gy, a.shape));
      if (want(b)) acc(b, sumTo(g, gy, b.shape));
      return;
    case 'sub':
      if (want(a)) acc(a, sumTo(g, gy, a.shape));
      if (want(b)) acc(b, g.scale(sumTo(g, gy, b.shape), -1));
      return;
    case 'mul':
      if (want(a)) acc(a, sumTo(g, g.mul(gy, b), a.shape));
      if (want(b)) acc(b, sumTo(g, g.mul(gy, a), b.shape));
      return;
    case 'div': {
      // y = a/b: dy/da = 1/b, dy/db = −a/b² = −y/b.
      const gOverB = g.div(gy, b);
      if (want(a)) acc(a, sumTo(g, gOverB, a.shape));
      if (want(b)) acc(b, g.scale(sumTo(g, g.mul(gOverB, out), b.shape), -1));
      return;
    }
  }
}

/** f′(a) for a unary op, using its output `y` where that is cheaper. */
function unaryDerivative(g: Graph, fn: Extract<Node, { op: 'unary' }>['fn'], a: Tensor, y: Tensor): Tensor {
  switch (fn) {
    case 'exp':
      return y;
    case 'erf': // 2/√π · exp(−a²)
      return g.scale(g.unary('exp', g.scale(g.unary('square', a), -1)), 2 / Math.sqrt(Math.PI));
    case 'tanh': // 1 − y²
      return g.sub(g.scalar(1, 'one'), g.unary('square', y));
    case 'sqrt': // 1/(2y)
      return g.scale(g.unary('reciprocal', y), 0.5);
    case 'neg':
      return g.constant([-1], [1], 'minus one');
    case 'square':
      return g.scale(a, 2);
    case 'reciprocal': // −y²
      return g.scale(g.unary('square', y), -1);
    case 'abs': {
      const zero = g.scalar(0, 'zero');
      return g.sub(g.binary('greater', a, zero), g.binary('greater', zero, a));
    }
    case 'relu':
      return g.binary('greater', a, g.scalar(0, 'zero'));
    case 'log':
      return g.unary('reciprocal', a);
  }
}

const INV_SQRT_2 = 1 / Math.SQRT2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_TANH_K = 0.044715;

function geluDerivative(g: Graph, x: Tensor, approximation: 'erf' | 'tanh'): Tensor {
  const one = g.scalar(1, 'one');
  if (approximation === 'erf') {
    // Φ(x) + x·φ(x)
    const cdf = g.scale(g.addT(one, g.unary('erf', g.scale(x, INV_SQRT_2))), 0.5);
    const pdf = g.scale(g.unary('exp', g.scale(g.unary('square', x), -0.5)), INV_SQRT_2PI);
    return g.addT(cdf, g.mul(x, pdf));
  }
  // t = tanh(c·(x + k·x³)): ½(1 + t) + ½·x·(1 − t²)·c·(1 + 3k·x²)
  const x2 = g.unary('square', x);
  const inner = g.scale(g.mul(x, g.addT(one, g.scale(x2, GELU_TANH_K))), SQRT_2_OVER_PI);
  const t = g.unary('tanh', inner);
  const du = g.scale(g.addT(one, g.scale(x2, 3 * GELU_TANH_K)), SQRT_2_OVER_PI);
  const sech2 = g.sub(one, g.unary('square', t));
  return g.addT(g.scale(g.addT(one, t), 0.5), g.scale(g.mul(g.mul(x, sech2), du), 0.5));
}

/**
 * C = A·B over broadcast batches: dA = G·Bᵀ, dB = Aᵀ·G, each summed over the batch dimensions its
 * operand was broadcast along. A shared 2-D operand (a layer's weight) gets its gradient from one
 * matmul over all rows folded together rather than a batch of products and a sum.
 */
function matmulVjp(g: Graph, a: Tensor, b: Tensor, gy: Tensor, want: (t: Tensor) => boolean, acc: Accumulate): void {
  const rank = gy.shape.length;
  const [m, k] = a.shape.slice(-2) as [number, number];
  const n = b.shape[b.shape.length - 1]!;
  const rows = numel(gy.shape.slice(0, -1));
  if (want(a)) {
    acc(a, sumTo(g, g.matmul(gy, g.transposeLast2(b)), a.shape));
  }
  if (want(b)) {
    if (b.shape.length === 2 && rank > 2) {
      // [rows, k]ᵀ · [rows, n]: the weight gradient of a layer applied to every token.
      const aRows = g.reshape(broadcastTo(g, a, [...gy.shape.slice(0, -2), m, k]), [rows, k]);
      acc(b, g.matmul(g.transposeLast2(aRows), g.reshape(gy, [rows, n])));
    } else {
      acc(b, sumTo(g, g.matmul(g.transposeLast2(a), gy), b.shape));
    }
  }
}

function layerNormVjp(
  g: Graph,
  node: Extract<Node, { op: 'layerNorm' }>,
  gy: Tensor,
  want: (t: Tensor) => boolean,
  acc: Accumulate,
): void {
  const { a, weight, bias, eps } = node;
  const len = a.shape[a.shape.length - 1]!;
  if (want(bias)) acc(bias, sumTo(g, gy, bias.shape));
  if (!want(a) && !want(weight)) return;
  // The statistics are recomputed from the input rather than kept from the forward pass.
  const mean = g.scale(g.reduce('sum', a, -1), 1 / len);
  const centred = g.sub(a, mean);
  const variance = g.scale(g.reduce('sumSquares', centred, -1), 1 / len);
  const rstd = g.unary('reciprocal', g.unary('sqrt', g.addT(variance, g.scalar(eps, 'layerNorm.eps'))));
  const xhat = g.mul(centred, rstd);
  if (want(weight)) acc(weight, sumTo(g, g.mul(gy, xhat), weight.shape));
  if (!want(a)) return;
  // dx = rstd · (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = g·w.
  const gh = g.mul(gy, weight);
  const m1 = g.scale(g.reduce('sum', gh, -1), 1 / len);
  const m2 = g.scale(g.reduce('sum', g.mul(gh, xhat), -1), 1 / len);
  acc(a, g.mul(rstd, g.sub(g.sub(gh, m1), g.mul(xhat, m2))));
}

/**
 * Convolution gradients, with convolutions and layout ops only.
 * - A patchify convolution (kernel = stride, no padding, groups 1: patch embedding, SOFT's
 *   landmark conv, spatial reduction) is a matmul on non-overlapping patches, and so are its two
 *   gradients: the backward costs exactly twice the forward's MACs.
 * - Otherwise dX is the convolution of the stride-dilated G with the flipped, channel-swapped
 *   kernel, and dW the convolution of X (batch as channels) with the dilated G as the kernel. With
 *   stride s > 1 the dilated G is s² times larger and so is the work on it (a stride-2 stem conv's
 *   dX costs 4× its forward): counted as executed.
 */
function conv2dVjp(
  g: Graph,
  node: Extract<Node, { op: 'conv2d' }>,
  gy: Tensor,
  want: (t: Tensor) => boolean,
  acc: Accumulate,
): void {
  const { x, w, bias, stride, pad, groups } = node;
  if (bias && want(bias)) {
    const summed = g.reduce('sum', g.reduce('sum', g.reduce('sum', gy, 0), 2), 3);
    acc(bias, g.reshape(summed, bias.shape));
  }
  if (!want(x) && !want(w)) return;
  const [B, C, H, W] = x.shape as [number, number, number, number];
  const [Co, Cg, kh, kw] = w.shape as [number, number, number, number];
  const [, , Ho, Wo] = gy.shape as [number, number, number, number];
  const [sh, sw] = stride;
  const [ph, pw] = pad;

  if (groups === 1 && kh === sh && kw === sw && ph === 0 && pw === 0) {
    const patch = C * kh * kw;
    const gRows = g.reshape(g.transpose(gy, [0, 2, 3, 1]), [B * Ho * Wo, Co]);
    if (want(x)) {
      const cols = g.matmul(gRows, g.reshape(w, [Co, patch])); // [B·Ho·Wo, C·kh·kw]
      const tiles = g.transpose(g.reshape(cols, [B, Ho, Wo, C, kh, kw]), [0, 3, 1, 4, 2, 5]);
      acc(x, padTo(g, g.reshape(tiles, [B, C, Ho * kh, Wo * kw]), x.shape));
    }
    if (want(w)) {
      const used = cropTo(g, x, [B, C, Ho * kh, Wo * kw]);
      const patches = g.transpose(g.reshape(used, [B, C, Ho, kh, Wo, kw]), [0, 2, 4, 1, 3, 5]);
      const pRows = g.reshape(patches, [B * Ho * Wo, patch]);
      acc(w, g.reshape(g.matmul(g.transposeLast2(gRows), pRows), w.shape));
    }
    return;
  }

  const Og = Co / groups;
  const dilated = dilate(g, gy, sh, sw); // [B, Co, Ho·sh, Wo·sw]
  if (want(x)) {
    if (ph > kh - 1 || pw > kw - 1)
      throw new Error(`conv2d gradient: padding [${pad}] larger than the kernel [${kh}, ${kw}] less one`);
    // [Co, Cg, kh, kw] → [C, Og, kh, kw] per group, spatially flipped.
    const swapped = g.reshape(g.transpose(g.reshape(w, [groups, Og, Cg, kh, kw]), [0, 2, 1, 3, 4]), [C, Og, kh, kw]);
    const flipped = flipLast2(g, swapped);
    const full = g.conv2d(dilated, flipped, null, { pad: [kh - 1 - ph, kw - 1 - pw], groups });
    acc(x, cropTo(g, full, x.shape));
  }
  if (want(w)) {
    const kernel = g.transpose(cropTo(g, dilated, [B, Co, (Ho - 1) * sh + 1, (Wo - 1) * sw + 1]), [1, 0, 2, 3]);
    const batchAsChannels = g.reshape(g.transpose(g.reshape(x, [B, groups, Cg, H, W]), [2, 1, 0, 3, 4]), [
      Cg,
      groups * B,
      H,
      W,
    ]);
    const full = g.conv2d(batchAsChannels, kernel, null, { pad: [ph, pw], groups }); // [Cg, Co, ≥kh, ≥kw]
    acc(w, g.transpose(cropTo(g, full, [Cg, Co, kh, kw]), [1, 0, 2, 3]));
  }
}

/** [B, C, h, w] → [B, C, h·sh, w·sw] with each value at the top-left of its sh×sw cell, zeros elsewhere. */
function dilate(g: Graph, t: Tensor, sh: number, sw: number): Tensor {
  if (sh === 1 && sw === 1) return t;
  const [B, C, h, w] = t.shape as [number, number, number, number];
  const corner = new Float64Array(sh * sw);
  corner[0] = 1;
  const spread = g.mul(g.reshape(t, [B, C, h, 1, w, 1]), g.constant(corner, [sh, 1, sw], `dilate ${sh}×${sw}`));
  return g.reshape(spread, [B, C, h * sh, w * sw]);
}

/** Reverses the last two axes' order (a kernel rotated by 180°), by matmuls with exchange matrices. */
function flipLast2(g: Graph, t: Tensor): Tensor {
  const r = t.shape.length;
  const [kh, kw] = [t.shape[r - 2]!, t.shape[r - 1]!];
  const cols = kw > 1 ? g.matmul(t, exchange(g, kw)) : t;
  return kh > 1 ? g.transposeLast2(g.matmul(g.transposeLast2(cols), exchange(g, kh))) : cols;
}

function exchange(g: Graph, n: number): Tensor {
  const data = new Float64Array(n * n);
  for (let i = 0; i < n; i++) data[i * n + (n - 1 - i)] = 1;
  return g.constant(data, [n, n], `exchange${n}`);
}

/** The leading part of `t` along each axis where `shape` is smaller. */
function cropTo(g: Graph, t: Tensor, shape: readonly number[]): Tensor {
  let r = t;
  shape.forEach((d, axis) => {
    if (r.shape[axis]! > d) r = g.slice(r, axis, 0, d);
  });
  return r;
}

/** `t` followed by zeros along each axis where `shape` is larger (the rows a strided conv dropped). */
function padTo(g: Graph, t: Tensor, shape: readonly number[]): Tensor {
  let r = t;
  shape.forEach((d, axis) => {
    const have = r.shape[axis]!;
    if (have < d)
      r = g.concat(
        [
          r,
          zeros(
            g,
            r.shape.map((x, i) => (i === axis ? d - have : x)),
          ),
        ],
        axis,
      );
  });
  return r;
}

/**
 * Zeros of `shape`, without a constant of that size: the broadcast sum of one small zero vector per
 * axis (so a [B, N, D] zero costs B + N + D constant values).
 */
export function zeros(g: Graph, shape: readonly number[]): Tensor {
  const axes = shape.map((d, i) => ({ d, i })).filter(({ d }) => d > 1);
  const along = (i: number, d: number) =>
    g.constant(
      new Float64Array(d),
      shape.map((x, j) => (j === i ? d : 1)),
      'zeros',
    );
  if (axes.length === 0) return g.constant(new Float64Array(1), shape, 'zeros');
  let z = along(axes[0]!.i, axes[0]!.d);
  for (const { d, i } of axes.slice(1)) z = g.addT(z, along(i, d));
  return z;
}

/** `t` broadcast to `shape` (t's shape must broadcast to it). */
function broadcastTo(g: Graph, t: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(t.shape, shape)) return t;
  const off = shape.length - t.shape.length;
  const missing = shape.map((d, i) => (i < off || t.shape[i - off] !== d ? d : 1));
  return g.addT(t, zeros(g, missing));
}

/** The sum of `t` over the axes along which `shape` was broadcast to t's shape (broadcasting's adjoint). */
function sumTo(g: Graph, t: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(t.shape, shape)) return t;
  const off = t.shape.length - shape.length;
  let r = t;
  for (let axis = 0; axis < t.shape.length; axis++) {
    const target = axis < off ? 1 : shape[axis - off]!;
    if (t.shape[axis] !== target) {
      if (target !== 1) throw new Error(`sumTo: [${t.shape}] does not reduce to [${shape}]`);
      r = g.reduce('sum', r, axis);
    }
  }
  return g.reshape(r, shape);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
