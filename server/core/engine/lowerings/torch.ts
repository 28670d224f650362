/**
 * The op-set graph lowered for PyTorch, as plain data: a JSON program with one entry per live
 * node (its operands by tensor id, its attributes, its output shape) and the weights and
 * constants as float32 buffers (float64 when asked: the program then runs in torch.float64, inputs and
 * outputs too, as autograd checks want). The user's own Python runs it with torch ops
 * (server/runtimes/torch/vitlens_torch.py interprets each op the way the reference does), so the
 * attentions stay defined once, in the graph builders. Nothing that crosses to Python is code and
 * nothing is a pickle: JSON and raw little-endian floats.
 */
import { numel } from '../../shape';
import { liveNodes } from '../cost';
import type { Graph, Node, Tensor } from '../graph';
import type { WeightSource } from './reference';

/** Bumped whenever the program's meaning changes; the Python side refuses versions it does not know. */
export const TORCH_PROGRAM_VERSION = 1;

/** One node: the op, the id of the tensor it makes, that tensor's shape, and its attributes (operands by id). */
export type TorchNode = { id: number; op: Node['op']; shape: number[] } & Record<string, unknown>;

/** The element type a program computes in; its buffers, inputs and outputs cross in it too. */
export type TorchDtype = 'float32' | 'float64';

export interface TorchProgram {
  format: 'vitlens-torch-program';
  version: typeof TORCH_PROGRAM_VERSION;
  /** float32 where absent (the Python side's default). */
  dtype: TorchDtype;
  nodes: TorchNode[];
  /** The graph's inputs the program reads, by name, with the tensor id each one is. */
  inputs: { name: string; id: number; shape: number[] }[];
  /** Tensor ids of the outputs, in the order asked for. */
  outputs: number[];
  /** Weights and constants, in the order of `buffers` returned beside the program. */
  buffers: { id: number; shape: number[]; what: string }[];
}

export interface LoweredTorchProgram {
  program: TorchProgram;
  /** One array per `program.buffers` entry, of the program's dtype. */
  buffers: (Float32Array | Float64Array)[];
}

export interface TorchLoweringOptions {
  /** Default float32 (what the runtime is measured in). */
  dtype?: TorchDtype;
}

/** Operands as tensor ids; attributes as they are. */
function attributes(node: Node): Record<string, unknown> {
  switch (node.op) {
    case 'input':
      return { name: node.name };
    case 'weight':
      return { key: node.key };
    case 'constant':
      return { label: node.label };
    case 'binary':
      return { fn: node.fn, a: node.a.id, b: node.b.id };
    case 'unary':
      return { fn: node.fn, a: node.a.id };
    case 'scale':
      return { a: node.a.id, k: node.k };
    case 'matmul':
      return { a: node.a.id, b: node.b.id };
    case 'reduce':
      return { fn: node.fn, a: node.a.id, axis: node.axis };
    case 'transpose':
      return { a: node.a.id, perm: [...node.perm] };
    case 'reshape':
    case 'softmax':
      return { a: node.a.id };
    case 'layerNorm':
      return { a: node.a.id, weight: node.weight.id, bias: node.bias.id, eps: node.eps };
    case 'gelu':
      return { a: node.a.id, approximation: node.approximation };
    case 'conv2d':
      return {
        x: node.x.id,
        w: node.w.id,
        bias: node.bias ? node.bias.id : null,
        stride: [...node.stride],
        pad: [...node.pad],
        groups: node.groups,
      };
    case 'slice':
      return { a: node.a.id, axis: node.axis, start: node.start, end: node.end };
    case 'concat':
      return { parts: node.parts.map((p) => p.id), axis: node.axis };
  }
}

/** The live part of `graph` (what `outputs` depend on) as a program for the PyTorch runtime. */
export function lowerToTorch(
  graph: Graph,
  outputs: readonly Tensor[],
  weights: WeightSource,
  opts: TorchLoweringOptions = {},
): LoweredTorchProgram {
  if (outputs.length === 0) throw new Error('PyTorch lowering: no outputs requested');
  const dtype = opts.dtype ?? 'float32';
  const array = (v: ArrayLike<number>) => (dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v));
  const program: TorchProgram = {
    format: 'vitlens-torch-program',
    version: TORCH_PROGRAM_VERSION,
    dtype,
    nodes: [],
    inputs: [],
    outputs: outputs.map((t) => t.id),
    buffers: [],
  };
  const buffers: LoweredTorchProgram['buffers'] = [];
  for (const id of liveNodes(graph, outputs)) {
    const { node, out } = graph.nodes[id]!;
    const shape = [...out.shape];
    program.nodes.push({ id: out.id, op: node.op, shape, ...attributes(node) });
    if (node.op === 'input') program.inputs.push({ name: node.name, id: out.id, shape });
    if (node.op === 'weight') {
      const w = weights.get(node.key);
      if (!w) throw new Error(`weight "${node.key}" is missing`);
      if (numel(w.shape) !== numel(shape))
        throw new Error(`weight "${node.key}": shape [${w.shape}], expected [${shape}]`);
      program.buffers.push({ id: out.id, shape, what: node.key });
      buffers.push(array(w.data));
    }
    if (node.op === 'constant') {
      program.buffers.push({ id: out.id, shape, what: node.label });
      buffers.push(array(node.data));
    }
  }
  return { program, buffers };
}
