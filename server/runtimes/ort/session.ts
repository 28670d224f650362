/**
 * A Graph running on onnxruntime-node: lowered to ONNX (core/engine/lowerings/onnx.ts), then
 * run on the CPU or WebGPU execution provider, optionally profiled (profile.ts reads the file).
 */
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { numel } from '../../core/shape';
import type { Graph, Tensor } from '../../core/engine/graph';
import { checkWebGpuTensorSizes, lowerGraph } from '../../core/engine/lowerings/onnx';
import type { WeightSource } from '../../core/engine/lowerings/reference';
import { findProfileFile } from './profile';

export interface OnnxSessionOptions {
  ep: 'cpu' | 'webgpu';
  /** intraOpNumThreads; defaults to os.availableParallelism(). */
  threads?: number;
  /** Profile file prefix: ORT writes `<prefix>_<date>.json` when the session is released. */
  profile?: string;
  /** ORT log severity (0 verbose … 4 fatal); 0 prints node placement. Default 3 (errors). */
  logSeverity?: 0 | 1 | 2 | 3 | 4;
  /** WebGPU only: the adapter's limit that every live tensor must fit (default 128 MiB). */
  maxStorageBufferBindingSize?: number;
  opset?: number;
  /** Where ORT saves the graph it actually runs (after fusions); profile node names refer to it. */
  optimizedModelPath?: string;
}

export interface OnnxOutput {
  shape: number[];
  data: Float32Array;
}

/**
 * ORT's WebGPU EP crashes on Linux/Vulkan with NVIDIA when two Run() calls overlap
 * (onnxruntime issue 32561, docs/RUNTIMES.md §9): every WebGPU run in this process waits for the
 * one before it, whichever session it belongs to.
 */
let webgpuRuns: Promise<unknown> = Promise.resolve();

export function serializedWebGpuRun<T>(run: () => Promise<T>): Promise<T> {
  const next = webgpuRuns.then(run, run);
  webgpuRuns = next.catch(() => undefined);
  return next;
}

export class OnnxSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputNames: string[],
    readonly outputNames: string[],
    private readonly inputShapes: Map<string, readonly number[]>,
    private readonly profilePrefix: string | undefined,
    private readonly createdAtMs: number,
    private readonly ep: OnnxSessionOptions['ep'],
  ) {}

  static async create(
    graph: Graph,
    outputs: Tensor[],
    weights: WeightSource,
    opts: OnnxSessionOptions,
  ): Promise<OnnxSession> {
    if (opts.ep === 'webgpu') checkWebGpuTensorSizes(graph, outputs, opts.maxStorageBufferBindingSize);
    const lowered = lowerGraph(graph, outputs, weights, opts.opset === undefined ? {} : { opset: opts.opset });
    const createdAtMs = Date.now();
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(lowered.bytes, {
        executionProviders: opts.ep === 'webgpu' ? [{ name: 'webgpu' }] : ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: opts.threads ?? os.availableParallelism(),
        logSeverityLevel: opts.logSeverity ?? 3,
        ...(opts.profile ? { enableProfiling: true, profileFilePrefix: opts.profile } : {}),
        ...(opts.optimizedModelPath ? { optimizedModelFilePath: opts.optimizedModelPath } : {}),
      });
    } catch (e) {
      // ORT never falls back to CPU here, and its message points into its own sources: say what is missing.
      if (opts.ep === 'webgpu' && /Failed to get a WebGPU adapter/.test(String(e))) {
        throw new Error(
          'onnxruntime WebGPU EP found no GPU adapter: it needs a Vulkan driver (a GPU ICD, or Mesa lavapipe for a software one)',
          { cause: e },
        );
      }
      throw e;
    }
    const inputShapes = new Map(graph.inputs.map((i) => [i.name, i.tensor.shape] as const));
    return new OnnxSession(
      session,
      lowered.inputNames,
      lowered.outputNames,
      inputShapes,
      opts.profile,
      createdAtMs,
      opts.ep,
    );
  }

  /** Feeds only the inputs the pruned model reads; extra entries are ignored, missing ones throw. */
  async run(inputs: Record<string, Float32Array>): Promise<OnnxOutput[]> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) {
      const data = inputs[name];
      const shape = this.inputShapes.get(name)!;
      if (!data || data.length !== numel(shape))
        throw new Error(`input "${name}": expected ${numel(shape)} values, got ${data?.length ?? 'none'}`);
      feeds[name] = new ort.Tensor('float32', data, [...shape]);
    }
    const results =
      this.ep === 'webgpu' ? await serializedWebGpuRun(() => this.session.run(feeds)) : await this.session.run(feeds);
    return this.outputNames.map((name) => {
      const t = results[name];
      if (!t) throw new Error(`ORT returned no output "${name}"`);
      return { shape: [...t.dims], data: t.data as Float32Array };
    });
  }

  /** Releases the native session; returns the profile file ORT wrote, if profiling was on. */
  async release(): Promise<string | undefined> {
    await this.session.release();
    return this.profilePrefix ? findProfileFile(this.profilePrefix, this.createdAtMs) : undefined;
  }
}
