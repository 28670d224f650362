/**
 * One interface over every runtime the harness measures: onnxruntime-node (CPU and WebGPU
 * EPs), TF.js (webgpu on Dawn, wasm, cpu, and tfjs-node(-gpu) where it loads) and the
 * TypeScript reference. Each runner prepares a graph once and runs it many times, and says
 * what memory it can measure; what a runner is and where it runs is in its description, so
 * no figure is shown without its runtime and device.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MemoryFigure, RuntimeDescription, RuntimeId } from '../../protocol/results';
import type { Graph, Tensor } from '../core/engine/graph';
import { ReferenceRuntime, type WeightSource } from '../core/engine/lowerings/reference';
import { adapterLabel, isSoftwareAdapter, pickBestBackend, type DeviceReport } from './devices';

export interface RunOutput {
  shape: number[];
  data: Float32Array | Float64Array;
}

export interface PreparedGraph {
  run(inputs: Record<string, Float32Array>): Promise<RunOutput[]>;
  /** One extra run that measures memory the runtime's own way (may rebuild a profiled session). */
  measureMemory(inputs: Record<string, Float32Array>): Promise<MemoryFigure[]>;
  release(): Promise<void>;
}

/**
 * The runtime's GPU device was lost mid-run (driver reset, adapter gone, device destroyed):
 * nothing more can run on it in this process. The harness fails the case and every later case
 * of that runtime with this message; the next benchmark runs in a fresh worker, on a new device.
 */
export class DeviceLostError extends Error {
  override readonly name = 'DeviceLostError';
  constructor(device: string, readonly reason: string, detail: string) {
    super(`the WebGPU device (${device}) was lost mid-run (reason: ${reason})${detail ? `: ${detail}` : ''}; the GPU driver reset or the adapter went away; re-run the benchmark`);
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

export const ALL_RUNTIMES: readonly RuntimeId[] = ['ort-cpu', 'ort-webgpu', 'tfjs-node-gpu', 'tfjs-node', 'tfjs-webgpu', 'tfjs-wasm', 'tfjs-cpu', 'reference'];

const MiB = 2 ** 20;

/** What the ORT WebGPU figure is: tensor sizes ORT recorded per kernel, lifetimes replayed from the graph it ran. */
export const WEBGPU_LIVE_TENSORS_LABEL =
  'ORT WebGPU: peak of tensors live at once on the GPU (sizes as ORT recorded them per kernel in the profile, lifetimes from the optimized graph in execution order; weights and Dawn buffer caching not included)';

function cpuLabel(report: DeviceReport, threads: number): string {
  return `${threads} thread${threads === 1 ? '' : 's'} on ${report.host.cpuModel}`;
}

/** The adapter ORT's and tfjs's Dawn will pick: the high-performance one. */
function primaryAdapter(report: DeviceReport) {
  const adapters = report.webgpu.adapters;
  return adapters.find((a) => !a.software) ?? adapters[0];
}

/**
 * ORT's CPU EP runs a graph op by op, each op streaming whole tensors: past a few thousand tokens
 * UFO's ~15 passes over [N, D] activations come from DRAM. In tiles of at least 1 MiB (4096 tokens
 * at D = 64, an L2's size) the layer reads its input once per pass instead: at 63504 tokens it ran
 * in 0.76–0.81× the untiled time here (scripts/perf/ufo-tiling.ts, docs/BENCHMARKS.md). Under two tiles
 * the graph is the untiled one.
 */
const ORT_CPU_TOKEN_TILE_BYTES = 2 ** 20;

async function ortRunner(ep: 'cpu' | 'webgpu', report: DeviceReport): Promise<Runner> {
  if (!report.onnxruntime.available) throw new Error(report.onnxruntime.reason ?? 'onnxruntime-node is not available');
  const { OnnxSession, readTraceEvents, replayTensorLiveness, summarizeOrtProfile } = await import('../core/engine/lowerings/onnx');
  const threads = os.availableParallelism();
  let device = cpuLabel(report, threads);
  let software = false;
  let maxBufferBytes: number | null = null;
  if (ep === 'webgpu') {
    const adapter = primaryAdapter(report);
    if (!adapter) throw new Error(`no WebGPU adapter: ${report.webgpu.reason ?? 'Dawn found none (is a Vulkan driver installed?)'}`);
    device = adapterLabel(adapter);
    software = adapter.software;
    maxBufferBytes = adapter.limits.maxStorageBufferBindingSize;
  }
  const description: RuntimeDescription = {
    id: ep === 'cpu' ? 'ort-cpu' : 'ort-webgpu',
    runtime: `onnxruntime-node ${report.onnxruntime.version ?? '?'}, ${ep === 'cpu' ? 'CPU' : 'WebGPU'} EP`,
    device,
    software,
    maxBufferBytes,
    tokenTileBytes: ep === 'cpu' ? ORT_CPU_TOKEN_TILE_BYTES : null,
  };
  const base = { ep, threads, ...(maxBufferBytes ? { maxStorageBufferBindingSize: maxBufferBytes } : {}) } as const;
  return {
    description,
    async prepare(graph, outputs, weights) {
      const session = await OnnxSession.create(graph, outputs, weights, base);
      return {
        run: (inputs) => session.run(inputs),
        async measureMemory(inputs) {
          // A second, profiled session: profiling slows the timed runs, so it is kept apart.
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-ort-'));
          try {
            const optimizedModelPath = path.join(dir, 'optimized.onnx');
            const profiled = await OnnxSession.create(graph, outputs, weights, { ...base, profile: path.join(dir, 'run'), ...(ep === 'webgpu' ? { optimizedModelPath } : {}) });
            await profiled.run(inputs);
            const file = await profiled.release();
            if (!file) return [];
            const events = readTraceEvents(file);
            const figures: MemoryFigure[] = [];
            const p = summarizeOrtProfile(events);
            if (p.cpuArenaPeakBytes) figures.push({ label: 'ORT CPU arena peak in use (profile)', bytes: p.cpuArenaPeakBytes, kind: 'measured' });
            if (ep === 'webgpu' && fs.existsSync(optimizedModelPath)) {
              // ORT reports no WebGPU memory (its arena fields are 0 there); the kernels' recorded tensor sizes are what it gives.
              const live = replayTensorLiveness(events, fs.readFileSync(optimizedModelPath), 'WebGpuExecutionProvider');
              if (live) figures.push({ label: WEBGPU_LIVE_TENSORS_LABEL, bytes: live.peakBytes, kind: 'measured' });
            }
            return figures;
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        },
        release: async () => {
          await session.release();
        },
      };
    },
    close: async () => {},
  };
}

async function tfjsRunner(id: RuntimeId, report: DeviceReport): Promise<Runner> {
  const tfjs = await import('./tfjs');
  const names: Partial<Record<RuntimeId, import('./tfjs').TfjsBackendName>> = {
    'tfjs-webgpu': 'webgpu', 'tfjs-wasm': 'wasm', 'tfjs-cpu': 'cpu', 'tfjs-node': 'tfjs-node', 'tfjs-node-gpu': 'tfjs-node-gpu',
  };
  const backend = names[id];
  if (!backend) throw new Error(`${id} is not a TF.js runtime`);
  const { info } = await tfjs.loadTfjs(backend);
  let device = cpuLabel(report, 1);
  let software = false;
  let maxBufferBytes: number | null = null;
  if (info.adapter) {
    const a = info.adapter;
    software = isSoftwareAdapter(a);
    const fromProbe = report.webgpu.adapters.find((p) => p.description === a.description);
    device = fromProbe ? adapterLabel(fromProbe) : `${a.description || a.device || a.vendor}${software ? ' (software — CPU emulating a GPU)' : ''}`;
    maxBufferBytes = Math.min(a.maxStorageBufferBindingSize, a.maxBufferSize);
  } else if (info.wasm) {
    device = `WebAssembly on ${report.host.cpuModel} (SIMD ${info.wasm.simd ? 'on' : 'off'}, ${info.wasm.threads} thread${info.wasm.threads === 1 ? '' : 's'})`;
    maxBufferBytes = 2048 * MiB; // wasm32 heap: larger sizes fail to allocate
  } else if (backend === 'tfjs-node' || backend === 'tfjs-node-gpu') {
    device = backend === 'tfjs-node-gpu' ? 'libtensorflow (CUDA)' : `libtensorflow on ${report.host.cpuModel}`;
  }
  const description: RuntimeDescription = { id, runtime: `TensorFlow.js ${info.tfjsVersion}, ${info.tfBackend} backend`, device, software, maxBufferBytes, tokenTileBytes: null };
  /** tfjs's WebGpuDeviceLostError, restated with this runtime's device label. */
  const named = <T>(p: Promise<T>): Promise<T> =>
    p.catch((e: unknown) => {
      throw e instanceof tfjs.WebGpuDeviceLostError ? new DeviceLostError(device, e.reason, e.detail) : e;
    });
  return {
    description,
    async prepare(graph, outputs, weights) {
      const exec = await named(tfjs.TfjsExecutor.create(graph, outputs, weights, { backend }));
      return {
        run: async (inputs) => (await named(exec.run(inputs))) as RunOutput[],
        async measureMemory(inputs) {
          const r = await named(exec.run(inputs, { profile: true }));
          const figures: MemoryFigure[] = [{ label: `tf.profile peakBytes above weights (${info.tfBackend})`, bytes: r.peakBytes - r.baselineBytes, kind: 'measured' }];
          // webgpu only; tfjs counts for the whole process, so other executors' tensors are included.
          if (r.memory.numBytesAllocatedInGPU !== undefined) {
            figures.push({ label: `tfjs ${info.tfBackend}: GPU buffers allocated after the run, tensors in use plus tfjs's pool of freed buffers kept for reuse (tf.memory().numBytesAllocatedInGPU, whole process)`, bytes: r.memory.numBytesAllocatedInGPU, kind: 'measured' });
          }
          if (r.memory.numBytesInGPU !== undefined) {
            figures.push({ label: `tfjs ${info.tfBackend}: GPU buffers of live tensors after the run, weights included (tf.memory().numBytesInGPU, whole process)`, bytes: r.memory.numBytesInGPU, kind: 'measured' });
          }
          return figures;
        },
        release: async () => exec.dispose(),
      };
    },
    close: async () => {},
  };
}

function referenceRunner(report: DeviceReport): Runner {
  const rt = new ReferenceRuntime('float32');
  return {
    description: { id: 'reference', runtime: 'ViT Lens TypeScript reference (float32, single thread)', device: cpuLabel(report, 1), software: false, maxBufferBytes: null, tokenTileBytes: null },
    async prepare(graph, outputs, weights) {
      return {
        run: async (inputs) => rt.run(graph, inputs, weights, outputs).map((t) => ({ shape: [...t.shape], data: t.data })),
        measureMemory: async () => [],
        release: async () => {},
      };
    },
    close: async () => {},
  };
}

/** Opens a runtime, or throws an Error whose message says why it is not usable here. */
export async function openRunner(id: RuntimeId, report: DeviceReport): Promise<Runner> {
  switch (id) {
    case 'ort-cpu':
      return ortRunner('cpu', report);
    case 'ort-webgpu':
      return ortRunner('webgpu', report);
    case 'reference':
      return referenceRunner(report);
    default:
      return tfjsRunner(id, report);
  }
}

/**
 * The runtimes a run uses by default, best first, in devices.ts's one ranking (pickBestBackend):
 * a hardware WebGPU adapter on ORT, then ORT CPU, then ORT on a software adapter. Backends
 * without a runner here (ort-cuda, ort-tensorrt) and unusable ones are left out.
 */
export function defaultRuntimes(report: DeviceReport): RuntimeId[] {
  const out: RuntimeId[] = [];
  for (const c of pickBestBackend(report)) {
    if (c.status !== 'preferred' && c.status !== 'runnable') continue;
    const id = c.backend as RuntimeId;
    if (ALL_RUNTIMES.includes(id) && !out.includes(id)) out.push(id);
  }
  return out;
}
