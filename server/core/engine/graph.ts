/**
 * The engine's small op set: every attention and block is written once against this
 * builder, and each runtime lowers the resulting graph (the TypeScript reference
 * interpreter here; ONNX and TF.js lowerings read the same nodes). Shapes are static
 * and inferred at build time, so a wrong wiring fails while building, not while running.
 */
import { numel } from '../shape';

export interface Tensor {
  readonly id: number;
  readonly shape: readonly number[];
}

export type UnaryFn = 'exp' | 'erf' | 'tanh' | 'sqrt' | 'neg' | 'square' | 'reciprocal' | 'abs' | 'relu' | 'log';
/** `greater` gives 1 where a > b and 0 elsewhere (a float mask, so masks compose with mul/add). */
export type BinaryFn = 'add' | 'sub' | 'mul' | 'div' | 'greater';
export type ReduceFn = 'sum' | 'max' | 'sumSquares';

export type Node =
  | { op: 'input'; name: string }
  | { op: 'weight'; key: string }
  | { op: 'constant'; data: Float64Array; label: string }
  | { op: 'binary'; fn: BinaryFn; a: Tensor; b: Tensor }
  | { op: 'unary'; fn: UnaryFn; a: Tensor }
  | { op: 'scale'; a: Tensor; k: number }
  | { op: 'matmul'; a: Tensor; b: Tensor }
  | { op: 'reduce'; fn: ReduceFn; a: Tensor; axis: number }
  | { op: 'transpose'; a: Tensor; perm: number[] }
  | { op: 'reshape'; a: Tensor }
  | { op: 'softmax'; a: Tensor }
  | { op: 'layerNorm'; a: Tensor; weight: Tensor; bias: Tensor; eps: number }
  | { op: 'gelu'; a: Tensor; approximation: 'erf' | 'tanh' }
  | {
      op: 'conv2d';
      x: Tensor;
      w: Tensor;
      bias: Tensor | null;
      stride: [number, number];
      pad: [number, number];
      groups: number;
    }
  | { op: 'slice'; a: Tensor; axis: number; start: number; end: number }
  | { op: 'concat'; parts: Tensor[]; axis: number };

export type OpName = Node['op'];

export interface GraphNode {
  node: Node;
  out: Tensor;
}

function broadcastShapes(a: readonly number[], b: readonly number[], what: string): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`${what}: shapes [${a}] and [${b}] do not broadcast`);
    out.push(Math.max(x, y));
  }
  return out;
}

/** The tensors a node reads, in order (every lowering and the liveness analysis walk these). */
export function operandsOf(node: Node): Tensor[] {
  switch (node.op) {
    case 'input':
    case 'weight':
    case 'constant':
      return [];
    case 'binary':
    case 'matmul':
      return [node.a, node.b];
    case 'layerNorm':
      return [node.a, node.weight, node.bias];
    case 'conv2d':
      return node.bias ? [node.x, node.w, node.bias] : [node.x, node.w];
    case 'concat':
      return node.parts;
    default:
      return [node.a];
  }
}

/**
 * How gradients pass through a tensor when the derivative of the nodes that compute it is not the
 * one wanted: SOFT's Newton–Raphson inverse trained with the analytic inverse gradient (−Vᵀ·G·Vᵀ)
 * instead of back-propagation through its iterations. Reverse-mode differentiation
 * (engine/autodiff.ts) uses the rule at `out` and does not descend into the nodes between `inputs`
 * and `out`. The rule builds its gradients with the op set, so they lower to every runtime.
 */
export interface GradientRule {
  /** What the rule is, as shown to users ("Newton inverse: analytic gradient"). */
  label: string;
  /** The tensors the rule gives gradients for. */
  inputs: Tensor[];
  /** Given the gradient at `out`, one gradient per input (null: none flows to it). */
  vjp(g: Graph, outGrad: Tensor): (Tensor | null)[];
}

export class Graph {
  readonly nodes: GraphNode[] = [];
  readonly inputs: { name: string; tensor: Tensor }[] = [];
  readonly weights: { key: string; tensor: Tensor }[] = [];
  /** Tensor id → the rule gradients follow through it instead of its defining nodes. */
  readonly gradientRules = new Map<number, GradientRule>();

  /** Declares that gradients pass through `out` by `rule` (see GradientRule). */
  customGradient(out: Tensor, rule: GradientRule): void {
    if (this.nodes[out.id]?.out !== out) throw new Error('customGradient: the tensor is not of this graph');
    this.gradientRules.set(out.id, rule);
  }

  private add(node: Node, shape: readonly number[]): Tensor {
    const out: Tensor = { id: this.nodes.length, shape: [...shape] };
    this.nodes.push({ node, out });
    return out;
  }

  input(name: string, shape: readonly number[]): Tensor {
    const t = this.add({ op: 'input', name }, shape);
    this.inputs.push({ name, tensor: t });
    return t;
  }

  /** A named parameter (state_dict key); its values come from the runtime's weight source. */
  weight(key: string, shape: readonly number[]): Tensor {
    const t = this.add({ op: 'weight', key }, shape);
    this.weights.push({ key, tensor: t });
    return t;
  }

  /** A fixed tensor built into the graph (identity matrices, interpolation matrices, thresholds). */
  constant(values: ArrayLike<number>, shape: readonly number[], label = 'const'): Tensor {
    if (values.length !== numel(shape))
      throw new Error(`constant ${label}: ${values.length} values for shape [${shape}]`);
    return this.add({ op: 'constant', data: Float64Array.from(values), label }, shape);
  }

  scalar(value: number, label = 'scalar'): Tensor {
    return this.constant([value], [1], label);
  }

  private readonly eyes = new Map<string, Tensor>();

  /**
   * k·I, m×m. One constant per (m, k) in a graph, shared by every layer that asks: a model's SOFT or
   * Nyström blocks at a large input would otherwise each carry an m² constant (59M values at 1792²).
   */
  eye(m: number, k = 1): Tensor {
    const key = `${m}:${k}`;
    let t = this.eyes.get(key);
    if (!t) {
      const data = new Float64Array(m * m);
      for (let i = 0; i < m; i++) data[i * m + i] = k;
      t = this.constant(data, [m, m], k === 1 ? `eye${m}` : `${k}·I${m}`);
      this.eyes.set(key, t);
    }
    return t;
  }

  binary(fn: BinaryFn, a: Tensor, b: Tensor): Tensor {
    return this.add({ op: 'binary', fn, a, b }, broadcastShapes(a.shape, b.shape, fn));
  }
  addT(a: Tensor, b: Tensor): Tensor {
    return this.binary('add', a, b);
  }
  sub(a: Tensor, b: Tensor): Tensor {
    return this.binary('sub', a, b);
  }
  mul(a: Tensor, b: Tensor): Tensor {
    return this.binary('mul', a, b);
  }
  div(a: Tensor, b: Tensor): Tensor {
    return this.binary('div', a, b);
  }

  unary(fn: UnaryFn, a: Tensor): Tensor {
    return this.add({ op: 'unary', fn, a }, a.shape);
  }

  scale(a: Tensor, k: number): Tensor {
    return this.add({ op: 'scale', a, k }, a.shape);
  }

  /** Batched matmul [..., M, K] × [..., K, N]; batch dimensions broadcast. */
  matmul(a: Tensor, b: Tensor): Tensor {
    const [m, k] = a.shape.slice(-2) as [number, number];
    const [k2, n] = b.shape.slice(-2) as [number, number];
    if (a.shape.length < 2 || b.shape.length < 2 || k !== k2) throw new Error(`matmul: [${a.shape}] × [${b.shape}]`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul batch');
    return this.add({ op: 'matmul', a, b }, [...batch, m, n]);
  }

  /** Reduction over one axis, dimension kept (size 1). */
  reduce(fn: ReduceFn, a: Tensor, axis: number): Tensor {
    const ax = axis < 0 ? a.shape.length + axis : axis;
    return this.add(
      { op: 'reduce', fn, a, axis: ax },
      a.shape.map((d, i) => (i === ax ? 1 : d)),
    );
  }

  transpose(a: Tensor, perm: number[]): Tensor {
    if (perm.length !== a.shape.length) throw new Error(`transpose: perm [${perm}] for shape [${a.shape}]`);
    return this.add(
      { op: 'transpose', a, perm },
      perm.map((p) => a.shape[p]!),
    );
  }

  /** Swaps the last two axes ([..., m, n] → [..., n, m]). */
  transposeLast2(a: Tensor): Tensor {
    const perm = [...a.shape.keys()];
    const r = perm.length;
    if (r < 2) throw new Error(`transposeLast2: shape [${a.shape}] has fewer than 2 axes`);
    [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
    return this.transpose(a, perm);
  }

  reshape(a: Tensor, shape: readonly number[]): Tensor {
    if (numel(shape) !== numel(a.shape)) throw new Error(`reshape: [${a.shape}] → [${shape}]`);
    return this.add({ op: 'reshape', a }, shape);
  }

  /** Softmax over the last axis. */
  softmax(a: Tensor): Tensor {
    return this.add({ op: 'softmax', a }, a.shape);
  }

  /** LayerNorm over the last axis (biased variance, as PyTorch). */
  layerNorm(a: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
    return this.add({ op: 'layerNorm', a, weight, bias, eps }, a.shape);
  }

  gelu(a: Tensor, approximation: 'erf' | 'tanh'): Tensor {
    return this.add({ op: 'gelu', a, approximation }, a.shape);
  }

  /**
   * nn.Conv2d on NCHW: weight [Cout, Cin/groups, kh, kw], zero padding, no dilation.
   * Output H = floor((H + 2·pad − kh)/stride) + 1, so remainder rows are dropped (quirk Q10).
   */
  conv2d(
    x: Tensor,
    w: Tensor,
    bias: Tensor | null,
    opts: { stride?: number | [number, number]; pad?: number | [number, number]; groups?: number } = {},
  ): Tensor {
    const pair = (v: number | [number, number] | undefined, d: number): [number, number] =>
      v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;
    const stride = pair(opts.stride, 1);
    const pad = pair(opts.pad, 0);
    const groups = opts.groups ?? 1;
    const [B, C, H, W] = x.shape as [number, number, number, number];
    const [Co, Cg, kh, kw] = w.shape as [number, number, number, number];
    if (x.shape.length !== 4 || w.shape.length !== 4 || C !== Cg * groups || Co % groups !== 0) {
      throw new Error(`conv2d: input [${x.shape}], weight [${w.shape}], groups ${groups}`);
    }
    if (bias && (bias.shape.length !== 1 || bias.shape[0] !== Co))
      throw new Error(`conv2d: bias [${bias.shape}] for ${Co} channels`);
    const Ho = Math.floor((H + 2 * pad[0] - kh) / stride[0]) + 1;
    const Wo = Math.floor((W + 2 * pad[1] - kw) / stride[1]) + 1;
    if (Ho < 1 || Wo < 1) throw new Error(`conv2d: ${kh}×${kw} kernel on a ${H}×${W} input gives no output`);
    return this.add({ op: 'conv2d', x, w, bias, stride, pad, groups }, [B, Co, Ho, Wo]);
  }

  /** Elements start … end−1 along one axis. */
  slice(a: Tensor, axis: number, start: number, end: number): Tensor {
    const ax = axis < 0 ? a.shape.length + axis : axis;
    const len = a.shape[ax];
    if (len === undefined || start < 0 || end > len || start >= end)
      throw new Error(`slice: [${start}, ${end}) of axis ${axis} in [${a.shape}]`);
    return this.add(
      { op: 'slice', a, axis: ax, start, end },
      a.shape.map((d, i) => (i === ax ? end - start : d)),
    );
  }

  concat(parts: Tensor[], axis: number): Tensor {
    const first = parts[0];
    if (!first) throw new Error('concat: no inputs');
    const ax = axis < 0 ? first.shape.length + axis : axis;
    for (const p of parts) {
      if (p.shape.length !== first.shape.length || p.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
        throw new Error(`concat: [${p.shape}] does not fit [${first.shape}] on axis ${ax}`);
      }
    }
    const total = parts.reduce((n, p) => n + p.shape[ax]!, 0);
    return this.add(
      { op: 'concat', parts, axis: ax },
      first.shape.map((d, i) => (i === ax ? total : d)),
    );
  }

  /** nn.Linear: x·Wᵀ + b with W stored [out, in] under `${prefix}.weight`. */
  linear(x: Tensor, prefix: string, inF: number, outF: number, bias = true): Tensor {
    return this.dense(prefix, inF, outF, bias)(x);
  }

  /**
   * nn.Linear as a function: its weight nodes are made once and every call applies them, so a layer
   * applied to several token tiles keeps one copy of its parameters in every lowering.
   */
  dense(prefix: string, inF: number, outF: number, bias = true): (x: Tensor) => Tensor {
    // Made at first use, so liveness (the analytic memory peak) sees Wᵀ live from then, not from the layer's start.
    let wT: Tensor | undefined;
    let b: Tensor | null | undefined;
    return (x) => {
      wT ??= this.transpose(this.weight(`${prefix}.weight`, [outF, inF]), [1, 0]);
      const y = this.matmul(x, wT);
      if (b === undefined) b = bias ? this.weight(`${prefix}.bias`, [outF]) : null;
      return b ? this.addT(y, b) : y;
    };
  }
}
