/**
 * What a graph costs, read off the graph itself (so it always describes exactly what a runtime
 * is asked to execute): multiply–accumulates of its matmuls and convolutions, and an analytic
 * float32 memory peak from tensor liveness in execution order. These are estimates of the
 * work and of the live bytes, not measurements; the harness shows them beside what each
 * runtime measures.
 */
import { numel } from '../shape';
import { operandsOf, type Graph, type Tensor } from './graph';

export interface GraphCost {
  /** Multiply–accumulates of matmuls and convolutions (FLOPs = 2 × MACs). */
  macs: number;
  /** Element-wise/normalisation work in elements touched (not folded into MACs). */
  elementwise: number;
  /** Bytes of weights and constants (resident for the whole run). */
  weightBytes: number;
  /** Largest simultaneous float32 bytes of activations + inputs, by liveness in node order. */
  peakActivationBytes: number;
  /** weightBytes + peakActivationBytes. */
  peakBytes: number;
  /** The single largest tensor (bytes) and the node that makes it: what a storage-buffer limit must hold. */
  largestTensor: { bytes: number; node: number; op: string; shape: number[] };
  /**
   * Memory traffic if every op read its operands from memory and wrote its result back once (no
   * fusion, no cache reuse): an estimate of the bytes a run moves, for comparing with bandwidth.
   */
  trafficBytes: number;
}

const BYTES = 4;

/** Node ids that contribute to `outputs`, in execution order. */
export function liveNodes(graph: Graph, outputs: readonly Tensor[]): number[] {
  const needed = new Set<number>(outputs.map((t) => t.id));
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    if (!needed.has(i)) continue;
    for (const t of operandsOf(graph.nodes[i]!.node)) needed.add(t.id);
  }
  return [...needed].sort((a, b) => a - b);
}

export function graphCost(graph: Graph, outputs: Tensor[]): GraphCost {
  const order = liveNodes(graph, outputs);
  const lastUse = new Map<number, number>();
  for (const id of order) for (const t of operandsOf(graph.nodes[id]!.node)) lastUse.set(t.id, id);
  for (const t of outputs) lastUse.set(t.id, Infinity);

  let macs = 0;
  let elementwise = 0;
  let weightBytes = 0;
  let live = 0;
  let peak = 0;
  let largest: GraphCost['largestTensor'] = { bytes: 0, node: -1, op: '', shape: [] };
  let traffic = 0;
  const freeAt = new Map<number, number[]>();
  for (const id of order) {
    const { node, out } = graph.nodes[id]!;
    const bytes = numel(out.shape) * BYTES;
    if (node.op === 'matmul') macs += numel(out.shape) * node.a.shape[node.a.shape.length - 1]!;
    else if (node.op === 'conv2d') {
      const [, cg, kh, kw] = node.w.shape as [number, number, number, number];
      macs += numel(out.shape) * cg * kh * kw;
    } else if (node.op !== 'reshape' && node.op !== 'input' && node.op !== 'weight' && node.op !== 'constant')
      elementwise += numel(out.shape);

    if (node.op === 'weight' || node.op === 'constant') {
      weightBytes += bytes;
      continue;
    }
    if (node.op !== 'reshape' && node.op !== 'input')
      traffic += bytes + operandsOf(node).reduce((sum, t) => sum + numel(t.shape) * BYTES, 0);
    if (bytes > largest.bytes) largest = { bytes, node: id, op: node.op, shape: [...out.shape] };
    // A reshape aliases its input in every runtime we lower to; count it once.
    if (node.op !== 'reshape') live += bytes;
    peak = Math.max(peak, live);
    const last = lastUse.get(id);
    if (last !== undefined && last !== Infinity) {
      const list = freeAt.get(last) ?? [];
      list.push(node.op === 'reshape' ? 0 : bytes);
      freeAt.set(last, list);
    }
    for (const b of freeAt.get(id) ?? []) live -= b;
  }
  return {
    macs,
    elementwise,
    weightBytes,
    peakActivationBytes: peak,
    peakBytes: peak + weightBytes,
    largestTensor: largest,
    trafficBytes: traffic,
  };
}

/** liveNodes as a per-node flag. */
export function liveFlags(graph: Graph, outputs: readonly Tensor[]): boolean[] {
  const live: boolean[] = new Array<boolean>(graph.nodes.length).fill(false);
  for (const id of liveNodes(graph, outputs)) live[id] = true;
  return live;
}
