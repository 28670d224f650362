/**
 * The TF.js lowering: each op-set node as tfjs ops, with the semantics of the reference
 * interpreter, and the tensors that lowering materialises (so a graph whose tensors a WebGPU
 * buffer cannot hold is refused before it runs). The tfjs namespace is a parameter: nothing tfjs
 * is loaded here; server/runtimes/tfjs/ loads it and runs what this builds.
 */
import type * as TfNamespace from '@tensorflow/tfjs';
import { numel } from '../../shape';
import { liveFlags } from '../cost';
import type { BinaryFn, Graph, Node, Tensor, UnaryFn } from '../graph';

export type Tf = typeof TfNamespace;
export type TfTensor = TfNamespace.Tensor;

export const BYTES_PER_FLOAT = 4;

/**
 * Every tensor the lowering of `node` materialises besides its inputs: its output, and
 * for matmul the broadcast operands, for conv2d the NHWC and zero-padded copies.
 */
function materialisedShapes(node: Node, out: Tensor): number[][] {
  const shapes = [[...out.shape]];
  if (node.op === 'matmul') {
    const batch = out.shape.slice(0, -2);
    for (const t of [node.a, node.b]) {
      const own = numel(t.shape.slice(0, -2));
      if (own !== 1 && own !== numel(batch)) shapes.push([...batch, ...t.shape.slice(-2)]);
    }
  } else if (node.op === 'conv2d') {
    const [B, C, H, W] = node.x.shape as [number, number, number, number];
    shapes.push([B, H + 2 * node.pad[0], W + 2 * node.pad[1], C]);
  }
  return shapes;
}

export interface OversizeTensor {
  nodeId: number;
  op: string;
  shape: number[];
  bytes: number;
  limit: number;
}

/** The first tensor of the graph (as lowered here) larger than `limit` bytes, if any. */
export function findOversizeTensor(
  graph: Graph,
  outputs: readonly Tensor[],
  limit: number,
): OversizeTensor | undefined {
  const live = liveFlags(graph, outputs);
  for (const { node, out } of graph.nodes) {
    if (!live[out.id]) continue;
    for (const shape of materialisedShapes(node, out)) {
      const bytes = numel(shape) * BYTES_PER_FLOAT;
      if (bytes > limit) return { nodeId: out.id, op: describe(node), shape, bytes, limit };
    }
  }
  return undefined;
}

function describe(node: Node): string {
  switch (node.op) {
    case 'input':
      return `input "${node.name}"`;
    case 'weight':
      return `weight "${node.key}"`;
    case 'constant':
      return `constant ${node.label}`;
    case 'binary':
    case 'unary':
    case 'reduce':
      return `${node.op} ${node.fn}`;
    default:
      return node.op;
  }
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

function lowerMatmul(tf: Tf, a: TfTensor, b: TfTensor, node: { a: Tensor; b: Tensor }, out: Tensor): TfTensor {
  const [m, k] = node.a.shape.slice(-2) as [number, number];
  const n = node.b.shape[node.b.shape.length - 1]!;
  const batch = out.shape.slice(0, -2);
  const B = numel(batch);
  const aBatch = numel(node.a.shape.slice(0, -2));
  const bBatch = numel(node.b.shape.slice(0, -2));
  // A shared right operand (x·Wᵀ): fold the batch into rows, one large 2-D product.
  if (bBatch === 1)
    return tf.reshape(tf.matMul(tf.reshape(a, [aBatch * m, k]), tf.reshape(b, [k, n])), out.shape as number[]);
  // tfjs BatchMatMul broadcasts by batch index modulo each operand's batch size, which is
  // right only when an operand's batch is 1 or the full batch; anything else is expanded.
  const to3d = (t: TfTensor, own: readonly number[], rows: number, cols: number): TfTensor => {
    const size = numel(own.slice(0, -2));
    if (size === 1 || size === B) return tf.reshape(t, [size, rows, cols]);
    const padded = [...new Array<number>(batch.length - (own.length - 2)).fill(1), ...own];
    return tf.reshape(tf.broadcastTo(tf.reshape(t, padded), [...batch, rows, cols]), [B, rows, cols]);
  };
  const y = tf.matMul(to3d(a, node.a.shape, m, k), to3d(b, node.b.shape, k, n));
  return tf.reshape(y, out.shape as number[]);
}

function lowerConv2d(
  tf: Tf,
  x: TfTensor,
  w: TfTensor,
  bias: TfTensor | null,
  node: Extract<Node, { op: 'conv2d' }>,
): TfTensor {
  const [, C] = node.x.shape as [number, number];
  const [Co, Cg, kh, kw] = node.w.shape as [number, number, number, number];
  const [ph, pw] = node.pad;
  // tfjs convolves NHWC with [kh, kw, in, out] filters; explicit zero padding then 'valid'
  // keeps PyTorch's floor((H + 2p − k)/s) + 1 output size on every backend.
  let xh = tf.transpose(x, [0, 2, 3, 1]) as TfNamespace.Tensor4D;
  if (ph || pw)
    xh = tf.pad(xh, [
      [0, 0],
      [ph, ph],
      [pw, pw],
      [0, 0],
    ]);
  const stride = node.stride;
  let y: TfNamespace.Tensor4D;
  if (node.groups === 1) {
    y = tf.conv2d(xh, tf.transpose(w, [2, 3, 1, 0]) as TfNamespace.Tensor4D, stride, 'valid');
  } else if (node.groups === C && Cg === 1) {
    // Depthwise with multiplier Co/C: output channel c·mult + j, as PyTorch's grouping.
    const filter = tf.transpose(tf.reshape(w, [C, Co / C, kh, kw]), [2, 3, 0, 1]) as TfNamespace.Tensor4D;
    y = tf.depthwiseConv2d(xh, filter, stride, 'valid');
  } else {
    const perOut = Co / node.groups;
    const parts: TfNamespace.Tensor4D[] = [];
    for (let g = 0; g < node.groups; g++) {
      const xg = tf.slice(xh, [0, 0, 0, g * Cg], [-1, -1, -1, Cg]);
      const wg = tf.transpose(
        tf.slice(w, [g * perOut, 0, 0, 0], [perOut, -1, -1, -1]),
        [2, 3, 1, 0],
      ) as TfNamespace.Tensor4D;
      parts.push(tf.conv2d(xg, wg, stride, 'valid'));
    }
    y = tf.concat(parts, 3);
  }
  if (bias) y = tf.add(y, bias);
  return tf.transpose(y, [0, 3, 1, 2]);
}

function binary(tf: Tf, fn: BinaryFn, a: TfTensor, b: TfTensor): TfTensor {
  switch (fn) {
    case 'add':
      return tf.add(a, b);
    case 'sub':
      return tf.sub(a, b);
    case 'mul':
      return tf.mul(a, b);
    case 'div':
      return tf.div(a, b);
    case 'greater':
      return tf.cast(tf.greater(a, b), 'float32');
  }
}

function unary(tf: Tf, fn: UnaryFn, a: TfTensor): TfTensor {
  switch (fn) {
    case 'exp':
      return tf.exp(a);
    case 'erf':
      return tf.erf(a);
    case 'tanh':
      return tf.tanh(a);
    case 'sqrt':
      return tf.sqrt(a);
    case 'neg':
      return tf.neg(a);
    case 'square':
      return tf.square(a);
    case 'reciprocal':
      return tf.reciprocal(a);
    case 'abs':
      return tf.abs(a);
    case 'relu':
      return tf.relu(a);
    case 'log':
      return tf.log(a);
  }
}

/** `node` as tfjs ops on the values `v` gives for its operands; inputs, weights and constants are the caller's to upload. */
export function lower(tf: Tf, node: Node, out: Tensor, v: (t: Tensor) => TfTensor): TfTensor {
  const shape = out.shape as number[];
  switch (node.op) {
    case 'input':
    case 'weight':
    case 'constant':
      throw new Error(`${node.op} nodes are materialised, not lowered`);
    case 'binary':
      return binary(tf, node.fn, v(node.a), v(node.b));
    case 'unary':
      return unary(tf, node.fn, v(node.a));
    case 'scale':
      return tf.mul(v(node.a), tf.scalar(node.k, 'float32'));
    case 'matmul':
      return lowerMatmul(tf, v(node.a), v(node.b), node, out);
    case 'reduce': {
      const a = v(node.a);
      if (node.fn === 'max') return tf.max(a, node.axis, true);
      return tf.sum(node.fn === 'sumSquares' ? tf.square(a) : a, node.axis, true);
    }
    case 'transpose':
      return tf.transpose(v(node.a), node.perm);
    case 'reshape':
      return tf.reshape(v(node.a), shape);
    case 'softmax':
      return tf.softmax(v(node.a), -1);
    case 'layerNorm': {
      const a = v(node.a);
      const mean = tf.mean(a, -1, true);
      const centred = tf.sub(a, mean);
      const variance = tf.mean(tf.square(centred), -1, true);
      const inv = tf.rsqrt(tf.add(variance, tf.scalar(node.eps, 'float32')));
      return tf.add(tf.mul(tf.mul(centred, inv), v(node.weight)), v(node.bias));
    }
    case 'gelu': {
      const x = v(node.a);
      const c = (k: number) => tf.scalar(k, 'float32');
      // x·x·x rather than pow: pow of a negative base is NaN on some backends.
      const inner =
        node.approximation === 'erf'
          ? tf.erf(tf.mul(x, c(Math.SQRT1_2)))
          : tf.tanh(tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), c(0.044715))), c(SQRT_2_OVER_PI)));
      return tf.mul(tf.mul(x, c(0.5)), tf.add(inner, c(1)));
    }
    case 'conv2d':
      return lowerConv2d(tf, v(node.x), v(node.w), node.bias ? v(node.bias) : null, node);
    case 'slice': {
      const begin = node.a.shape.map((_, i) => (i === node.axis ? node.start : 0));
      const size = node.a.shape.map((d, i) => (i === node.axis ? node.end - node.start : d));
      return tf.slice(v(node.a), begin, size);
    }
    case 'concat':
      return tf.concat(node.parts.map(v), node.axis);
  }
}
