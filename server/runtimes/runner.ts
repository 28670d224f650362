/**
 * One interface over every runtime the harness measures: onnxruntime-node (CPU and WebGPU
 * EPs), TF.js (webgpu on Dawn, wasm, cpu, and tfjs-node(-gpu) where it loads) and the
 * TypeScript reference. Each runner prepares a graph once and runs it many times, and says
 * what memory it can measure; what a runner is and where it runs is in its description, so
 * no figure is shown without its runtime and device. open-runner.ts opens one by its id.
 */
import type { MemoryFigure, RuntimeDescription, RuntimeId } from '../../protocol/results';
import type { Graph, Tensor } from '../core/engine/graph';
import type { WeightSource } from '../core/engine/lowerings/reference';

export interface RunOutput {
  shape: number[];
  data: Float32Array | Float64Array;
}

export interface PreparedGraph {
  run(inputs: Record<string, Float32Array>): Promise<RunOutput[]>;
  /** One extra run that measures memory the runtime's own way (may rebuild a profiled session). */
  measureMemory(inputs: Record<string, Float32Array>): Promise<MemoryFigure[]>;
  /**
   * One run timed by the runtime itself on its device, in ms, where the wall clock around run()
   * would time something else too (PyTorch: the pipe to Python and the copies). Inputs stay on the
   * device between calls with the same object.
   */
  timedRun?(inputs: Record<string, Float32Array>): Promise<number>;
  release(): Promise<void>;
}

/**
 * The runtime's GPU device was lost mid-run (driver reset, adapter gone, device destroyed):
 * nothing more can run on it in this process. The harness fails the case and every later case
 * of that runtime with this message; the next benchmark runs in a fresh worker, on a new device.
 */
export class DeviceLostError extends Error {
  override readonly name = 'DeviceLostError';
  constructor(
    device: string,
    readonly reason: string,
    detail: string,
  ) {
    super(
      `the WebGPU device (${device}) was lost mid-run (reason: ${reason})${detail ? `: ${detail}` : ''}; the GPU driver reset or the adapter went away; re-run the benchmark`,
    );
  }
}

/**
 * What a runtime's limits and preferences mean for building a graph for it: softmax score tiles
 * under its one-buffer limit, UFO token tiles where it runs faster in them. Benchmarks and inference
 * build their graphs with these, so both run what the runtime runs best.
 */
export function graphOptionsFor(d: RuntimeDescription): { maxScoreElements: number; tokenTileBytes?: number } {
  return {
    maxScoreElements: d.maxBufferBytes ? Math.floor(d.maxBufferBytes / 4) : Infinity,
    ...(d.tokenTileBytes ? { tokenTileBytes: d.tokenTileBytes } : {}),
  };
}

export interface Runner {
  description: RuntimeDescription;
  prepare(graph: Graph, outputs: Tensor[], weights: WeightSource): Promise<PreparedGraph>;
  close(): Promise<void>;
}

export const ALL_RUNTIMES: readonly RuntimeId[] = [
  'ort-cpu',
  'ort-webgpu',
  'ort-cuda',
  'tfjs-node-gpu',
  'tfjs-node',
  'tfjs-webgpu',
  'tfjs-wasm',
  'tfjs-cpu',
  'reference',
  'torch-cuda',
  'torch-mps',
  'torch-cpu',
  'torch-cuda-compiled',
  'torch-cpu-compiled',
];
