/**
 * onnxruntime-node as a Runner: its CPU or WebGPU execution provider, timed on one session
 * and measured on a second, profiled one (ORT's arena peak, and on WebGPU the tensors live at once).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DeviceReport } from '../../../protocol/devices';
import type { MemoryFigure, RuntimeDescription } from '../../../protocol/results';
import { adapterLabel, cpuLabel } from '../labels';
import type { Runner } from '../runner';

/** What the ORT WebGPU figure is: tensor sizes ORT recorded per kernel, lifetimes replayed from the graph it ran. */
export const WEBGPU_LIVE_TENSORS_LABEL =
  'ORT WebGPU: peak of tensors live at once on the GPU (sizes as ORT recorded them per kernel in the profile, lifetimes from the optimized graph in execution order; weights and Dawn buffer caching not included)';

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

export async function ortRunner(ep: 'cpu' | 'webgpu', report: DeviceReport): Promise<Runner> {
  if (!report.onnxruntime.available) throw new Error(report.onnxruntime.reason ?? 'onnxruntime-node is not available');
  // Loaded when asked for: onnxruntime-node is a native package the LSP and CLI must not load on start.
  const [{ OnnxSession }, { readTraceEvents, replayTensorLiveness, summarizeOrtProfile }] = await Promise.all([
    import('./session'),
    import('./profile'),
  ]);
  const threads = os.availableParallelism();
  let device = cpuLabel(report, threads);
  let software = false;
  let maxBufferBytes: number | null = null;
  if (ep === 'webgpu') {
    const adapter = primaryAdapter(report);
    if (!adapter)
      throw new Error(
        `no WebGPU adapter: ${report.webgpu.reason ?? 'Dawn found none (is a Vulkan driver installed?)'}`,
      );
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
            const profiled = await OnnxSession.create(graph, outputs, weights, {
              ...base,
              profile: path.join(dir, 'run'),
              ...(ep === 'webgpu' ? { optimizedModelPath } : {}),
            });
            await profiled.run(inputs);
            const file = await profiled.release();
            if (!file) return [];
            const events = readTraceEvents(file);
            const figures: MemoryFigure[] = [];
            const p = summarizeOrtProfile(events);
            if (p.cpuArenaPeakBytes)
              figures.push({
                label: 'ORT CPU arena peak in use (profile)',
                bytes: p.cpuArenaPeakBytes,
                kind: 'measured',
              });
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
