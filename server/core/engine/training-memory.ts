/**
 * What one training step keeps in memory, read off its graph (training.ts builds it): the
 * activations the backward pass reads from the forward pass ("saved activations"), the liveness
 * peak of the whole step (forward, loss, backward: saved activations + the gradients made so far +
 * the transients of the node running), and the parameters, each attributed to the layer whose
 * forward pass made it. An analytic estimate of this graph, not a measurement of any framework:
 *
 * - Views are free. A reshape aliases its operand (as in cost.ts), and so does a transpose of a
 *   weight or constant (PyTorch's `W.t()` in nn.Linear is a view): such a tensor keeps its root's
 *   storage alive until the last use of any of its views, and costs nothing itself. Other
 *   transposes are materialised, as every lowering of the graph materialises them.
 * - Weights and constants are resident and counted elsewhere (parameters, optimizer state);
 *   the gradients of the parameters are outputs of the step, live from when they are made to the
 *   end (the optimizer reads them), at `gradientBytes` each element.
 * - Activations and every other backward tensor take `activationBytes` per element: 4 for float32,
 *   2 for mixed precision (bf16/fp16 activations under autocast; autocast keeps softmax, norms and
 *   reductions in float32, so 2 is a lower figure there).
 *
 * Layers: the forward graph is built block by block and the model exposes each block's output as
 * a tap (model.ts), so the nodes between two taps are the second tap's block: its saved tensors,
 * its transients and the parameters it creates are its own. A saved tensor is charged to the block
 * whose forward pass computed it (the block whose weights produced it), never split.
 *
 * cost.ts's graphCost frees a reshape's operand at the reshape (the alias is counted as 0 bytes and
 * never keeps its root alive) and materialises weight transposes; this liveness does neither, so
 * its peak is the step's, not graphCost's `peakActivationBytes` (equal on graphs with no views).
 */
import { numel } from '../shape';
import { liveNodes } from './cost';
import { operandsOf, type Graph, type Tensor } from './graph';
import type { TrainingGraph } from './training';

export interface StepMemoryOptions {
  /** Bytes per element of activations and backward intermediates (4: float32; 2: bf16/fp16). Default 4. */
  activationBytes?: number;
  /** Bytes per element of the parameters' gradients (float32 master gradients: 4). Default 4. */
  gradientBytes?: number;
}

/** The step as the analysis needs it: its graph, where the forward pass ends, and what it produces. */
export interface StepGraph {
  graph: Graph;
  /** Tensors with ids up to this one are the forward pass (and the loss); the rest is backward. */
  forwardEnd: number;
  /** The loss and every gradient the step produces (kept to the end). */
  outputs: readonly Tensor[];
  /** The gradients among `outputs` that are parameters' (stored at `gradientBytes`). */
  parameterGradients: readonly Tensor[];
  /** The parameters: state_dict key, element count, the weight node that first reads it. */
  parameters: readonly { key: string; numel: number; tensor: Tensor }[];
  /** Layer of each forward node id (ids > forwardEnd are the backward's); default: one layer, `model`. */
  layerOf?: (id: number) => string;
}

export interface LayerStepMemory {
  layer: string;
  /** Parameter elements whose weight node this layer's forward pass creates. */
  parameters: number;
  /** Bytes of the activations this layer's forward pass made that the backward reads. */
  savedBytes: number;
}

export interface StepMemory {
  /** Bytes of the forward tensors backward nodes read (views resolved to their storage, weights excluded). */
  savedBytes: number;
  /** Liveness peak of the step's activations, gradients and transients (weights and constants excluded). */
  peakBytes: number;
  /** Where the peak is: the node, the pass, and the layer (backward: the layer whose saved tensors it was reading). */
  peakAt: { node: number; op: string; phase: 'forward' | 'backward'; layer: string };
  /** Parameter elements (each state_dict key once). */
  parameters: number;
  /** Per layer, in forward order. */
  layers: LayerStepMemory[];
  /**
   * Live bytes just after each executed node made its output, in execution order (the peak's
   * candidates): the same sequence of nodes at every batch ≥ 2, each linear in the batch.
   */
  liveAfter: Float64Array;
  /** Where the `i`-th executed node is (as `peakAt`). */
  at(i: number): StepMemory['peakAt'];
}

/** The liveness and saved-activation analysis of a step graph. */
export function stepMemory(step: StepGraph, opts: StepMemoryOptions = {}): StepMemory {
  const { graph, forwardEnd } = step;
  const actBytes = opts.activationBytes ?? 4;
  const gradBytes = opts.gradientBytes ?? 4;
  const layerOf = step.layerOf ?? (() => 'model');
  const nodes = graph.nodes;

  // Storage root of each tensor: a view's is its operand's.
  const root = new Int32Array(nodes.length);
  const isStatic = new Uint8Array(nodes.length); // weight or constant storage
  for (let id = 0; id < nodes.length; id++) {
    const { node } = nodes[id]!;
    if (node.op === 'weight' || node.op === 'constant') {
      root[id] = id;
      isStatic[id] = 1;
    } else if (node.op === 'reshape' || (node.op === 'transpose' && isStatic[root[node.a.id]!])) {
      root[id] = root[node.a.id]!;
      isStatic[id] = isStatic[root[id]!]!;
    } else root[id] = id;
  }

  const order = liveNodes(graph, step.outputs);
  const lastUse = new Float64Array(nodes.length).fill(-1);
  const saved = new Uint8Array(nodes.length);
  for (const id of order) {
    for (const t of operandsOf(nodes[id]!.node)) {
      const r = root[t.id]!;
      lastUse[r] = id;
      if (id > forwardEnd && r <= forwardEnd && !isStatic[r]) saved[r] = 1;
    }
  }
  for (const t of step.outputs) lastUse[root[t.id]!] = Infinity;
  const gradientRoots = new Set(step.parameterGradients.map((t) => root[t.id]!));
  const bytesOf = (id: number): number => numel(nodes[id]!.out.shape) * (gradientRoots.has(id) ? gradBytes : actBytes);

  // Layers in forward order, with their saved bytes and parameters.
  const layers = new Map<string, LayerStepMemory>();
  const layer = (name: string): LayerStepMemory => {
    let l = layers.get(name);
    if (!l) layers.set(name, (l = { layer: name, parameters: 0, savedBytes: 0 }));
    return l;
  };
  for (let id = 0; id <= forwardEnd && id < nodes.length; id++) layer(layerOf(id));
  let savedBytes = 0;
  for (let id = 0; id <= forwardEnd && id < nodes.length; id++) {
    if (!saved[id]) continue;
    const b = bytesOf(id);
    savedBytes += b;
    layer(layerOf(id)).savedBytes += b;
  }
  let parameters = 0;
  for (const p of step.parameters) {
    parameters += p.numel;
    layer(layerOf(p.tensor.id)).parameters += p.numel;
  }

  // Liveness in execution order: a root is live from its node to the last use of it or of any view of it.
  const freeAt = new Map<number, number>();
  const liveAfter = new Float64Array(order.length);
  const where: string[] = new Array<string>(order.length);
  let live = 0;
  let peak = 0;
  let peakIndex = -1;
  let backwardLayer = layerOf(Math.max(0, Math.min(forwardEnd, nodes.length - 1)));
  order.forEach((id, i) => {
    const { node } = nodes[id]!;
    if (id > forwardEnd) {
      // The backward walks the forward in reverse: the layer whose saved tensors it reads now.
      for (const t of operandsOf(node)) {
        const r = root[t.id]!;
        if (r <= forwardEnd && !isStatic[r]) backwardLayer = layerOf(r);
      }
    }
    where[i] = id > forwardEnd ? backwardLayer : layerOf(id);
    if (root[id] === id && !isStatic[id]) {
      const b = bytesOf(id);
      live += b;
      const last = lastUse[id]!;
      if (last > id && last !== Infinity) freeAt.set(last, (freeAt.get(last) ?? 0) + b);
      else if (last !== Infinity) freeAt.set(id, (freeAt.get(id) ?? 0) + b); // never read: gone after its node
    }
    liveAfter[i] = live;
    if (live > peak) {
      peak = live;
      peakIndex = i;
    }
    const freed = freeAt.get(id);
    if (freed) {
      live -= freed;
      freeAt.delete(id);
    }
  });
  const at = (i: number): StepMemory['peakAt'] => {
    const id = order[i] ?? -1;
    return {
      node: id,
      op: nodes[id]?.node.op ?? '',
      phase: id > forwardEnd ? 'backward' : 'forward',
      layer: where[i] ?? '',
    };
  };
  return {
    savedBytes,
    peakBytes: peak,
    peakAt: at(peakIndex),
    parameters,
    layers: [...layers.values()],
    liveAfter,
    at,
  };
}

/**
 * The layer of each forward node of a model's training graph, from the model's taps: a tap closes
 * the block that computed it (`block1.0_out` → `block1.0`, `patch_embed2_out` → `patch_embed2`,
 * `block4.0_in` → `pos_embed4`, the position embedding and cls token added before a stage's first
 * block; `norm_out` → `norm`, `logits` → `head`); what follows the logits is the loss.
 */
export function tapLayers(t: TrainingGraph): (id: number) => string {
  const ends = [...t.model.taps]
    .map(([name, tensor]) => ({ id: tensor.id, layer: tapLayer(name) }))
    .sort((a, b) => a.id - b.id);
  return (id) => {
    if (id > t.forwardEnd) return 'backward';
    // Binary search: the first tap at or after the node.
    let lo = 0;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ends[mid]!.id < id) lo = mid + 1;
      else hi = mid;
    }
    return ends[lo]?.layer ?? 'loss';
  };
}

function tapLayer(name: string): string {
  if (name === 'logits') return 'head';
  if (name === 'pool_out') return 'pool';
  const input = /^(block(\d+)|blocks)\.0_in$/.exec(name);
  if (input) return `pos_embed${input[2] ?? ''}`;
  return name.replace(/_out$/, '');
}

/** A model's training graph (built on `g`) as a StepGraph: every parameter's gradient, layers from the taps. */
export function trainingStep(g: Graph, t: TrainingGraph): StepGraph {
  const first = new Map<string, Tensor>();
  for (const { key, tensor } of g.weights) if (!first.has(key)) first.set(key, tensor);
  const grads = t.parameters.map((p) => p.grad);
  return {
    graph: g,
    forwardEnd: t.forwardEnd,
    outputs: [t.loss, ...grads, ...(t.inputGradient ? [t.inputGradient] : [])],
    parameterGradients: grads,
    parameters: t.parameters.map((p) => ({ key: p.key, numel: numel(p.shape), tensor: first.get(p.key)! })),
    layerOf: tapLayers(t),
  };
}
