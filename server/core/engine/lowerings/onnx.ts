/**
 * The ONNX lowering: a Graph as an ONNX model (float32, one or a few ONNX nodes per graph node,
 * named `n<id>_<op>` so ORT profiles and logs map back to the graph), with the same semantics as
 * ReferenceRuntime. It is run by server/runtimes/ort/session.ts on onnxruntime-node's CPU or
 * WebGPU execution provider; see docs/RUNTIMES.md §1 for the ORT facts relied on.
 */
import { onnx } from 'onnx-proto';
import { numel } from '../../shape';
import { liveNodes } from '../cost';
import type { Graph, Node, Tensor } from '../graph';
import type { WeightSource } from './reference';

/** ReduceSum/ReduceMax/ReduceSumSquare take axes as an input only from opset 18 on. */
export const MIN_OPSET = 18;
/** Opset 20 has Gelu (erf and tanh), which ORT's CPU and WebGPU EPs run as one kernel. */
export const DEFAULT_OPSET = 20;
/** lavapipe's limit; real GPUs are usually larger (read `adapter.limits` there). */
export const DEFAULT_MAX_STORAGE_BUFFER_BINDING_SIZE = 128 * 1024 * 1024;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const A = onnx.AttributeProto.AttributeType;

function nodeName(id: number, node: Node): string {
  const kind = node.op === 'binary' || node.op === 'unary' || node.op === 'reduce' ? node.fn : node.op;
  return `n${id}_${kind}`;
}

/** The IR version each opset was released with (onnx/docs/Versioning.md): a model declaring an older IR than its opset is malformed. */
function irVersionFor(opset: number): number {
  return opset <= 18 ? 8 : opset <= 20 ? 9 : opset <= 22 ? 10 : 11;
}

function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

type Attr = onnx.IAttributeProto;
const ints = (name: string, v: number[]): Attr => ({ name, type: A.INTS, ints: v });
const int = (name: string, v: number): Attr => ({ name, type: A.INT, i: v });
const float = (name: string, v: number): Attr => ({ name, type: A.FLOAT, f: v });
const str = (name: string, v: string): Attr => ({ name, type: A.STRING, s: new TextEncoder().encode(v) });

function valueInfo(name: string, shape: readonly number[]): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim: shape.map((d) => ({ dimValue: d })) } } } };
}

/** Collects ONNX nodes, initializers and the value name of each graph tensor. */
class Lowering {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly names = new Map<number, string>();
  private readonly used = new Set<string>();
  private readonly weightNames = new Map<string, string>();
  private readonly inputShapes = new Map<string, readonly number[]>();

  constructor(private readonly opset: number) {}

  claim(name: string): string {
    if (this.used.has(name))
      throw new Error(`ONNX lowering: value name "${name}" is used twice (an input named like a generated value?)`);
    this.used.add(name);
    return name;
  }

  of(t: Tensor): string {
    const n = this.names.get(t.id);
    if (n === undefined) throw new Error(`ONNX lowering: tensor ${t.id} used before it is defined`);
    return n;
  }

  emit(opType: string, name: string, inputs: string[], attribute: Attr[] = [], output = name): string {
    this.nodes.push({ opType, name, input: inputs, output: [this.claim(output)], attribute });
    return output;
  }

  floatInit(name: string, dims: readonly number[], data: Float32Array): string {
    this.initializers.push({ name: this.claim(name), dims: [...dims], dataType: FLOAT, rawData: bytesOf(data) });
    return name;
  }

  int64Init(name: string, values: readonly number[]): string {
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    this.initializers.push({ name: this.claim(name), dims: [values.length], dataType: INT64, rawData: bytesOf(data) });
    return name;
  }

  scalar(name: string, v: number): string {
    return this.floatInit(name, [], Float32Array.of(v));
  }

  lower(gn: Graph['nodes'][number], weights: WeightSource): string {
    const { node, out } = gn;
    const id = out.id;
    const name = nodeName(id, node);
    switch (node.op) {
      case 'input': {
        // Two input nodes with one name read the same feed, as in the reference runtime.
        const seen = this.inputShapes.get(node.name);
        if (seen) {
          if (seen.join() !== out.shape.join())
            throw new Error(`input "${node.name}" declared as [${seen}] and [${out.shape}]`);
          return node.name;
        }
        this.inputShapes.set(node.name, out.shape);
        this.inputs.push(valueInfo(this.claim(node.name), out.shape));
        return node.name;
      }
      case 'weight': {
        const dedupe = `${node.key}\u0000${out.shape.join()}`;
        const known = this.weightNames.get(dedupe);
        if (known) return known;
        const w = weights.get(node.key);
        if (!w) throw new Error(`weight "${node.key}" is missing`);
        if (numel(w.shape) !== numel(out.shape))
          throw new Error(`weight "${node.key}": shape [${w.shape}], expected [${out.shape}]`);
        const initName = this.used.has(node.key) ? `${node.key}#${id}` : node.key;
        this.floatInit(initName, out.shape, Float32Array.from(w.data));
        this.weightNames.set(dedupe, initName);
        return initName;
      }
      case 'constant':
        return this.floatInit(`n${id}_${node.label.replace(/[^\w.-]/g, '_')}`, out.shape, Float32Array.from(node.data));
      case 'binary': {
        const a = this.of(node.a);
        const b = this.of(node.b);
        if (node.fn === 'greater') {
          const mask = this.emit('Greater', `${name}_bool`, [a, b]);
          return this.emit('Cast', name, [mask], [int('to', FLOAT)]);
        }
        const op = { add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div' }[node.fn];
        return this.emit(op, name, [a, b]);
      }
      case 'unary': {
        const a = this.of(node.a);
        if (node.fn === 'square') return this.emit('Mul', name, [a, a]);
        const op = {
          exp: 'Exp',
          erf: 'Erf',
          tanh: 'Tanh',
          sqrt: 'Sqrt',
          neg: 'Neg',
          reciprocal: 'Reciprocal',
          abs: 'Abs',
          relu: 'Relu',
          log: 'Log',
        }[node.fn];
        return this.emit(op, name, [a]);
      }
      case 'scale':
        return this.emit('Mul', name, [this.of(node.a), this.scalar(`${name}_k`, node.k)]);
      case 'matmul':
        return this.emit('MatMul', name, [this.of(node.a), this.of(node.b)]);
      case 'reduce': {
        const op = { sum: 'ReduceSum', max: 'ReduceMax', sumSquares: 'ReduceSumSquare' }[node.fn];
        return this.emit(
          op,
          name,
          [this.of(node.a), this.int64Init(`${name}_axes`, [node.axis])],
          [int('keepdims', 1)],
        );
      }
      case 'transpose':
        return this.emit('Transpose', name, [this.of(node.a)], [ints('perm', node.perm)]);
      case 'reshape': {
        // allowzero keeps a literal 0 as 0 (ONNX would otherwise copy the input's dimension).
        const attrs = out.shape.includes(0) ? [int('allowzero', 1)] : [];
        return this.emit('Reshape', name, [this.of(node.a), this.int64Init(`${name}_shape`, out.shape)], attrs);
      }
      case 'softmax':
        return this.emit('Softmax', name, [this.of(node.a)], [int('axis', -1)]);
      case 'layerNorm': {
        // LayerNormalization wants scale/bias shaped like the normalized axis; the graph only promises numel.
        const len = out.shape[out.shape.length - 1]!;
        const asVector = (t: Tensor, what: string) =>
          t.shape.length === 1
            ? this.of(t)
            : this.emit('Reshape', `${name}_${what}`, [this.of(t), this.int64Init(`${name}_${what}_shape`, [len])]);
        const inputs = [this.of(node.a), asVector(node.weight, 'weight'), asVector(node.bias, 'bias')];
        return this.emit('LayerNormalization', name, inputs, [
          int('axis', -1),
          float('epsilon', node.eps),
          int('stash_type', 1),
        ]);
      }
      case 'gelu':
        return this.gelu(name, this.of(node.a), node.approximation);
      case 'conv2d': {
        const [kh, kw] = node.w.shape.slice(2) as [number, number];
        const inputs = [this.of(node.x), this.of(node.w)];
        if (node.bias) inputs.push(this.of(node.bias));
        const [ph, pw] = node.pad;
        return this.emit('Conv', name, inputs, [
          ints('kernel_shape', [kh, kw]),
          ints('strides', node.stride),
          ints('pads', [ph, pw, ph, pw]),
          ints('dilations', [1, 1]),
          int('group', node.groups),
        ]);
      }
      case 'slice':
        return this.emit('Slice', name, [
          this.of(node.a),
          this.int64Init(`${name}_starts`, [node.start]),
          this.int64Init(`${name}_ends`, [node.end]),
          this.int64Init(`${name}_axes`, [node.axis]),
        ]);
      case 'concat':
        return this.emit(
          'Concat',
          name,
          node.parts.map((p) => this.of(p)),
          [int('axis', node.axis)],
        );
    }
  }

  private gelu(name: string, x: string, approximation: 'erf' | 'tanh'): string {
    if (this.opset >= 20)
      return this.emit('Gelu', name, [x], approximation === 'tanh' ? [str('approximate', 'tanh')] : []);
    // Before opset 20 there is no Gelu: compose 0.5·x·(1 + f(x)) exactly as the reference does.
    let inner: string;
    if (approximation === 'erf') {
      inner = this.emit('Erf', `${name}_erf`, [
        this.emit('Mul', `${name}_xs`, [x, this.scalar(`${name}_rsqrt2`, Math.SQRT1_2)]),
      ]);
    } else {
      const x2 = this.emit('Mul', `${name}_x2`, [x, x]);
      const x3 = this.emit('Mul', `${name}_x3`, [x2, x]);
      const cubic = this.emit('Mul', `${name}_cubic`, [x3, this.scalar(`${name}_c`, 0.044715)]);
      const sum = this.emit('Add', `${name}_sum`, [x, cubic]);
      const arg = this.emit('Mul', `${name}_arg`, [sum, this.scalar(`${name}_s`, Math.sqrt(2 / Math.PI))]);
      inner = this.emit('Tanh', `${name}_tanh`, [arg]);
    }
    const onePlus = this.emit('Add', `${name}_1p`, [inner, this.scalar(`${name}_one`, 1)]);
    const xHalf = this.emit('Mul', `${name}_xh`, [x, this.scalar(`${name}_half`, 0.5)]);
    return this.emit('Mul', name, [xHalf, onePlus]);
  }
}

export interface LoweredModel {
  bytes: Uint8Array;
  /** Graph input names the model actually reads (dead inputs are pruned). */
  inputNames: string[];
  /** The ONNX output name of each requested output, in request order (repeats allowed). */
  outputNames: string[];
}

/** Lowers the part of `graph` that `outputs` need to a serialized ONNX ModelProto. */
export function lowerGraph(
  graph: Graph,
  outputs: Tensor[],
  weights: WeightSource,
  opts: { opset?: number } = {},
): LoweredModel {
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (opset < MIN_OPSET)
    throw new Error(`ONNX lowering needs opset ≥ ${MIN_OPSET} (reductions take axes as an input), got ${opset}`);
  if (outputs.length === 0) throw new Error('ONNX lowering: no outputs requested');
  const L = new Lowering(opset);
  for (const gn of liveNodes(graph, outputs).map((id) => graph.nodes[id]!))
    L.names.set(gn.out.id, L.lower(gn, weights));

  const graphOutputs: onnx.IValueInfoProto[] = [];
  const byTensor = new Map<number, string>();
  const outputNames = outputs.map((t, i) => {
    const known = byTensor.get(t.id);
    if (known) return known;
    const gn = graph.nodes[t.id]!;
    let name = L.of(t);
    // An input or initializer cannot double as a graph output, so copy it through an Identity.
    if (gn.node.op === 'input' || gn.node.op === 'weight' || gn.node.op === 'constant')
      name = L.emit('Identity', `output${i}_n${t.id}`, [name]);
    graphOutputs.push(valueInfo(name, t.shape));
    byTensor.set(t.id, name);
    return name;
  });

  const model: onnx.IModelProto = {
    irVersion: irVersionFor(opset),
    producerName: 'vitlens',
    opsetImport: [{ domain: '', version: opset }],
    graph: { name: 'vitlens', node: L.nodes, initializer: L.initializers, input: L.inputs, output: graphOutputs },
  };
  return {
    bytes: onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish(),
    inputNames: L.inputs.map((v) => v.name!),
    outputNames,
  };
}

/** The serialized ONNX model for `outputs` (see lowerGraph for the name bookkeeping). */
export function lowerToOnnx(
  graph: Graph,
  outputs: Tensor[],
  weights: WeightSource,
  opts: { opset?: number } = {},
): Uint8Array {
  return lowerGraph(graph, outputs, weights, opts).bytes;
}

/**
 * Throws if a live tensor would not fit one WebGPU storage-buffer binding: ORT 1.30's WebGPU
 * Softmax silently returns wrong rows past that size (docs/RUNTIMES.md §1), so refuse rather than mislead.
 */
export function checkWebGpuTensorSizes(
  graph: Graph,
  outputs: readonly Tensor[],
  maxStorageBufferBindingSize = DEFAULT_MAX_STORAGE_BUFFER_BINDING_SIZE,
): void {
  for (const { node, out } of liveNodes(graph, outputs).map((id) => graph.nodes[id]!)) {
    const bytes = numel(out.shape) * 4;
    if (bytes > maxStorageBufferBindingSize) {
      const what = node.op === 'input' ? ` "${node.name}"` : node.op === 'weight' ? ` "${node.key}"` : '';
      throw new Error(
        `${nodeName(out.id, node)}${what} output [${out.shape}] is ${bytes} bytes: onnxruntime WebGPU computes wrong results for tensors above ` +
          `maxStorageBufferBindingSize (${maxStorageBufferBindingSize} bytes); tile the work`,
      );
    }
  }
}
