/**
 * torch.autograd as an independent check of ViT Lens's own backward graphs (engine/autodiff.ts).
 * The forward program — the graph's nodes up to a scalar, lowered as for any run — is evaluated
 * by vitlens_torch.py eagerly with autograd on and `requires_grad` on the chosen leaves, and
 * torch.autograd.grad gives their gradients from torch's own derivative formulas (F.layer_norm,
 * F.gelu, softmax, conv2d, amax, …), none of ViT Lens's. In float64 (the default here) the two
 * agree to rounding, so a wrong vector–Jacobian product shows as a difference many orders above it.
 * The same session runs any graph, a backward graph included, in float64 or float32, so both sides
 * of the check can run in the one torch. A wrapper over the runtime's request channel (the `grad`
 * request of vitlens_torch.py), not a test-only script.
 */
import os from 'node:os';
import type { PyTorchInfo } from '../../../protocol/devices';
import type { Graph, Tensor } from '../../core/engine/graph';
import type { WeightSource } from '../../core/engine/lowerings/reference';
import { lowerToTorch, type TorchDtype } from '../../core/engine/lowerings/torch';
import type { ChildChannel } from '../child/channel';
import { float32Of, float64Of } from '../child/frames';
import { startTorchProcess } from './process';

export interface TorchValue {
  shape: number[];
  data: Float32Array | Float64Array;
}

export interface TorchGradRequest {
  graph: Graph;
  /** The tensor differentiated: one value (a loss). */
  output: Tensor;
  /**
   * Inputs, weights or constants of `graph`. An array is one group whose gradients are summed: a
   * parameter read at several places (each `g.weight` of one state_dict key is its own node; see
   * weightNodes).
   */
  wrt: readonly (Tensor | readonly Tensor[])[];
  weights: WeightSource;
  /** The graph's inputs by name (converted to `dtype`). */
  inputs: Record<string, ArrayLike<number>>;
  /** Default float64. */
  dtype?: TorchDtype;
}

export interface TorchRunRequest {
  graph: Graph;
  outputs: readonly Tensor[];
  weights: WeightSource;
  inputs: Record<string, ArrayLike<number>>;
  /** Default float64. */
  dtype?: TorchDtype;
}

export interface TorchAutograd {
  /** Names the interpreter and the torch ("PyTorch 1.13.1 (/usr/bin/python3) on cpu"). */
  readonly who: string;
  /** `outputs` of the graph, evaluated by ViT Lens's lowering (no autograd). */
  run(r: TorchRunRequest): Promise<TorchValue[]>;
  /** torch.autograd.grad of `output` with respect to each entry of `wrt`, of its shape. */
  grad(r: TorchGradRequest): Promise<TorchValue[]>;
  close(): Promise<void>;
}

/** Every node of `graph` that reads parameter `key` (a layer applied twice reads it twice). */
export function weightNodes(graph: Graph, key: string): Tensor[] {
  return graph.weights.filter((w) => w.key === key).map((w) => w.tensor);
}

/** Starts the user's Python with torch for autograd checks; `device` is a torch device ("cpu", "cuda:0"). */
export function openTorchAutograd(info: PyTorchInfo, opts: { device?: string; threads?: number } = {}): TorchAutograd {
  if (!info.available || !info.python || !info.torch)
    throw new Error(`PyTorch is not available: ${info.reason ?? 'no Python with torch was found'}`);
  const device = opts.device ?? 'cpu';
  const who = `PyTorch ${info.torch.version} (${info.python.executable})`;
  const proc = startTorchProcess(who, info.python.executable, opts.threads ?? os.availableParallelism());
  return {
    who: `${who} on ${device}`,
    async run(r) {
      const dtype = r.dtype ?? 'float64';
      return withProgram(proc, device, r.graph, r.outputs, r.weights, dtype, async (handle, reads) => {
        const { specs, blobs } = encodeInputs(reads, r.inputs, dtype);
        const answer = await proc.request({ cmd: 'run', handle, inputs: specs }, blobs);
        return decode(answer.header.outputs as { shape: number[] }[], answer.blobs, dtype);
      });
    },
    async grad(r) {
      const dtype = r.dtype ?? 'float64';
      if (r.output.shape.reduce((a, b) => a * b, 1) !== 1)
        throw new Error(`torch.autograd.grad: the output has shape [${r.output.shape}], not one value`);
      const groups = r.wrt.map((w) => (isTensor(w) ? [w] : [...w]));
      if (groups.some((ts) => ts.length === 0))
        throw new Error('torch.autograd.grad: an empty group of tensors to differentiate with respect to');
      const leaves = [...new Map(groups.flat().map((t) => [t.id, t])).values()];
      for (const t of leaves) {
        const op = r.graph.nodes[t.id]?.node.op;
        if (r.graph.nodes[t.id]?.out !== t) throw new Error(`torch.autograd.grad: tensor ${t.id} is not of this graph`);
        if (op !== 'input' && op !== 'weight' && op !== 'constant')
          throw new Error(`torch.autograd.grad: tensor ${t.id} is a ${op} node, not an input, weight or constant`);
      }
      // The leaves are outputs too, so the program holds each even where the output does not read it.
      const outputs = [r.output, ...leaves.filter((t) => t.id !== r.output.id)];
      return withProgram(proc, device, r.graph, outputs, r.weights, dtype, async (handle, reads) => {
        const { specs, blobs } = encodeInputs(reads, r.inputs, dtype);
        const wrt = groups.map((ts) => ts.map((t) => t.id));
        const answer = await proc.request({ cmd: 'grad', handle, inputs: specs, output: r.output.id, wrt }, blobs);
        return decode(answer.header.grads as { shape: number[] }[], answer.blobs, dtype);
      });
    },
    close: () => proc.close(),
  };
}

function isTensor(w: Tensor | readonly Tensor[]): w is Tensor {
  return !Array.isArray(w);
}

/** Prepares the lowered program, hands its handle and the input names it reads to `f`, releases it. */
async function withProgram<T>(
  proc: ChildChannel,
  device: string,
  graph: Graph,
  outputs: readonly Tensor[],
  weights: WeightSource,
  dtype: TorchDtype,
  f: (handle: number, reads: string[]) => Promise<T>,
): Promise<T> {
  const { program, buffers } = lowerToTorch(graph, outputs, weights, { dtype });
  const prepared = await proc.request({ cmd: 'prepare', device, program }, buffers);
  const handle = prepared.header.handle as number;
  try {
    return await f(
      handle,
      program.inputs.map((i) => i.name),
    );
  } finally {
    // A process that died took the program with it; its error is what the caller sees.
    if (!proc.ended) await proc.request({ cmd: 'release', handle });
  }
}

function encodeInputs(reads: string[], inputs: Record<string, ArrayLike<number>>, dtype: TorchDtype) {
  const blobs = reads.map((name) => {
    const v = inputs[name];
    if (!v) throw new Error(`input "${name}" is missing`);
    return dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v);
  });
  return { specs: reads.map((name) => ({ name })), blobs };
}

function decode(shapes: { shape: number[] }[], blobs: Buffer[], dtype: TorchDtype): TorchValue[] {
  return blobs.map((b, i) => ({ shape: shapes[i]!.shape, data: dtype === 'float64' ? float64Of(b) : float32Of(b) }));
}
