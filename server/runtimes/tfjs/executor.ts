/**
 * A graph bound to weights on one TF.js backend, run many times: the op-set lowering
 * (core/engine/lowerings/tfjs.ts) evaluated on a schedule that frees each tensor after its last
 * use, with tf.profile's memory figures when asked. On webgpu a lost device or a validation error
 * fails the run instead of returning zeros.
 */
import type * as TfNamespace from '@tensorflow/tfjs';
import { numel } from '../../core/shape';
import { operandsOf, type Graph, type Tensor } from '../../core/engine/graph';
import { liveFlags } from '../../core/engine/cost';
import { BYTES_PER_FLOAT, findOversizeTensor, lower, type Tf, type TfTensor } from '../../core/engine/lowerings/tfjs';
import type { WeightSource } from '../../core/engine/lowerings/reference';
import { activate, loadTfjs, type TfjsBackendName, type TfjsInfo } from './load';
import { clearWebgpuErrors, takeWebgpuErrors, throwIfDeviceLost, untilDeviceLost } from './webgpu';

export interface TfjsOutput {
  shape: number[];
  data: Float32Array;
}

export interface TfjsMemory {
  numTensors: number;
  numBytes: number;
  /** webgpu only: bytes in GPU buffers of live tensors, and allocated including tfjs's pool of freed buffers (tfjs-backend-webgpu's names). */
  numBytesInGPU?: number;
  numBytesAllocatedInGPU?: number;
}

export interface TfjsProfiledRun {
  outputs: TfjsOutput[];
  /** tfjs's peak of live tensor bytes during the run, including this executor's weights and anything else alive in tfjs. */
  peakBytes: number;
  /** Live tensor bytes when the run started (weights, constants, other executors). */
  baselineBytes: number;
  /** Sum of per-kernel times: GPU timestamps on webgpu, wall time per kernel elsewhere. */
  kernelMs?: number;
  memory: TfjsMemory;
}

export interface TfjsRunOptions {
  profile?: boolean;
}

function snapshot(tf: Tf): TfjsMemory {
  const m = tf.memory() as TfNamespace.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
  const r: TfjsMemory = { numTensors: m.numTensors, numBytes: m.numBytes };
  if (m.numBytesInGPU !== undefined) r.numBytesInGPU = m.numBytesInGPU;
  if (m.numBytesAllocatedInGPU !== undefined) r.numBytesAllocatedInGPU = m.numBytesAllocatedInGPU;
  return r;
}

/**
 * A graph bound to weights on one tfjs backend. Weights, constants and everything computed
 * from them alone (e.g. the transposed Linear weights) are uploaded once, at create.
 */
export class TfjsExecutor {
  private disposed = false;

  private constructor(
    private readonly tf: Tf,
    readonly backend: TfjsBackendName,
    readonly info: TfjsInfo,
    private readonly graph: Graph,
    private readonly outputs: readonly Tensor[],
    /** Tensors computed at create and kept, by node id. */
    private readonly persistent: Map<number, TfTensor>,
    /** Node ids evaluated per run, in graph order. */
    private readonly plan: number[],
    /** For each node id, the plan index after which it is no longer needed. */
    private readonly lastUse: Int32Array,
  ) {}

  static async create(
    graph: Graph,
    outputs: Tensor[],
    weights: WeightSource,
    opts: { backend: TfjsBackendName },
  ): Promise<TfjsExecutor> {
    const { tf, info } = await loadTfjs(opts.backend);
    if (opts.backend === 'webgpu') {
      throwIfDeviceLost();
      // Above maxStorageBufferBindingSize tfjs-webgpu's kernels fail validation and read back zeros.
      const limit = Math.min(
        info.adapter?.maxStorageBufferBindingSize ?? Infinity,
        info.adapter?.maxBufferSize ?? Infinity,
      );
      const big = findOversizeTensor(graph, outputs, limit);
      if (big) {
        throw new Error(
          `webgpu: node ${big.nodeId} (${big.op}) needs a tensor of shape [${big.shape}] = ${big.bytes} bytes, ` +
            `above the adapter's maxStorageBufferBindingSize of ${big.limit} bytes; tfjs-webgpu would return zeros. ` +
            `Use a smaller input or the wasm/cpu backend.`,
        );
      }
    }
    const live = liveFlags(graph, outputs);
    const isStatic: boolean[] = [];
    for (const { node, out } of graph.nodes) {
      isStatic[out.id] =
        node.op === 'weight' ||
        node.op === 'constant' ||
        (node.op !== 'input' && operandsOf(node).every((t) => isStatic[t.id]));
    }
    // Keep a static node if a per-run node (or the caller) reads it.
    const keep = new Set<number>();
    for (const t of outputs) if (isStatic[t.id]) keep.add(t.id);
    for (const { node, out } of graph.nodes) {
      if (!live[out.id] || isStatic[out.id]) continue;
      for (const t of operandsOf(node)) if (isStatic[t.id]) keep.add(t.id);
    }

    const persistent = new Map<number, TfTensor>();
    tf.tidy(() => {
      const vals = new Map<number, TfTensor>();
      for (const { node, out } of graph.nodes) {
        if (!live[out.id] || !isStatic[out.id]) continue;
        let t: TfTensor;
        if (node.op === 'weight') {
          const w = weights.get(node.key);
          if (!w) throw new Error(`weight "${node.key}" is missing`);
          if (numel(w.shape) !== numel(out.shape))
            throw new Error(`weight "${node.key}": shape [${w.shape}], expected [${out.shape}]`);
          t = tf.tensor(Float32Array.from(w.data), out.shape as number[], 'float32');
        } else if (node.op === 'constant') {
          t = tf.tensor(Float32Array.from(node.data), out.shape as number[], 'float32');
        } else {
          t = lower(tf, node, out, (x) => vals.get(x.id)!);
        }
        vals.set(out.id, t);
        if (keep.has(out.id)) persistent.set(out.id, tf.keep(t));
      }
    });

    const plan: number[] = [];
    const lastUse = new Int32Array(graph.nodes.length).fill(-1);
    for (const { node, out } of graph.nodes) {
      if (!live[out.id] || isStatic[out.id]) continue;
      for (const t of operandsOf(node)) lastUse[t.id] = plan.length;
      plan.push(out.id);
    }
    // Outputs outlive the run's tidy.
    for (const t of outputs) lastUse[t.id] = 0x7fffffff;
    return new TfjsExecutor(tf, opts.backend, info, graph, outputs, persistent, plan, lastUse);
  }

  run(inputs: Record<string, Float32Array>): Promise<TfjsOutput[]>;
  run(inputs: Record<string, Float32Array>, opts: TfjsRunOptions & { profile: true }): Promise<TfjsProfiledRun>;
  run(inputs: Record<string, Float32Array>, opts?: TfjsRunOptions): Promise<TfjsOutput[] | TfjsProfiledRun>;
  async run(inputs: Record<string, Float32Array>, opts: TfjsRunOptions = {}): Promise<TfjsOutput[] | TfjsProfiledRun> {
    if (this.disposed) throw new Error('TfjsExecutor: run after dispose');
    const tf = this.tf;
    // tfjs has one active backend per process; executors on different backends take turns.
    await activate(tf, this.backend);
    const webgpu = this.backend === 'webgpu';
    if (webgpu) {
      throwIfDeviceLost();
      clearWebgpuErrors();
    }
    // On webgpu, a lost device fails the run at once, whatever it was waiting on (see untilDeviceLost).
    const bounded = <T>(p: Promise<T>): Promise<T> => (webgpu ? untilDeviceLost(p) : p);
    const baselineBytes = tf.memory().numBytes;
    const compute = () => tf.tidy(() => this.evaluate(inputs));
    let results: TfTensor[];
    let profile: Awaited<ReturnType<Tf['profile']>> | undefined;
    if (opts.profile) {
      profile = await bounded(tf.profile(compute));
      results = profile.result as TfTensor[];
    } else {
      results = compute();
    }
    let outputs: TfjsOutput[];
    try {
      outputs = await bounded(
        Promise.all(
          results.map(async (t, i) => ({
            shape: [...this.outputs[i]!.shape],
            data: Float32Array.from((await t.data()) as Float32Array),
          })),
        ),
      );
    } finally {
      for (const t of results) t.dispose();
    }
    if (webgpu) {
      // A loss during the run can also leave outputs that read back as zeros.
      throwIfDeviceLost();
      const errors = takeWebgpuErrors();
      if (errors.length)
        throw new Error(
          `webgpu: the device reported ${errors.length} error(s) during the run, so its outputs are invalid: ${errors[0]}`,
        );
    }
    if (!profile) return outputs;
    const times = profile.kernels.map((k) => k.kernelTimeMs).filter((ms): ms is number => typeof ms === 'number');
    const r: TfjsProfiledRun = { outputs, peakBytes: profile.peakBytes, baselineBytes, memory: snapshot(tf) };
    if (times.length) r.kernelMs = times.reduce((a, b) => a + b, 0);
    return r;
  }

  private evaluate(inputs: Record<string, Float32Array>): TfTensor[] {
    const tf = this.tf;
    const vals = new Map<number, TfTensor>();
    const get = (t: Tensor): TfTensor => {
      const x = vals.get(t.id) ?? this.persistent.get(t.id);
      if (!x) throw new Error(`tfjs: node ${t.id} used before it was computed`);
      return x;
    };
    for (let step = 0; step < this.plan.length; step++) {
      const id = this.plan[step]!;
      const { node, out } = this.graph.nodes[id]!;
      let t: TfTensor;
      if (node.op === 'input') {
        const x = inputs[node.name];
        const n = numel(out.shape);
        if (!x || x.length !== n)
          throw new Error(`input "${node.name}": expected ${n} values, got ${x?.length ?? 'none'}`);
        t = tf.tensor(x, out.shape as number[], 'float32');
      } else {
        t = lower(tf, node, out, get);
        // Free what this step consumed last, so the run's peak is that of the schedule, not of the whole graph.
        for (const inp of operandsOf(node)) {
          if (this.lastUse[inp.id] === step && !this.persistent.has(inp.id)) {
            vals.get(inp.id)?.dispose();
            vals.delete(inp.id);
          }
        }
      }
      vals.set(id, t);
    }
    // A persistent output is cloned: the caller's copy is disposed after reading.
    return this.outputs.map((t) => (this.persistent.has(t.id) ? tf.clone(get(t)) : get(t)));
  }

  /** tfjs's memory counters now (all live tensors of the process, not just this executor's). */
  memory(): TfjsMemory {
    return snapshot(this.tf);
  }

  /** Bytes held by this executor between runs (weights, constants and what was folded from them). */
  get persistentBytes(): number {
    let n = 0;
    for (const t of this.persistent.values()) n += t.size * BYTES_PER_FLOAT;
    return n;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.persistent.values()) t.dispose();
    this.persistent.clear();
  }
}
