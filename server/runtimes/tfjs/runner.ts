/**
 * TF.js as a Runner: one TfjsExecutor per graph on one backend, labelled with the device it
 * runs on, and a lost WebGPU device restated as the harness's DeviceLostError.
 */
import type { DeviceReport } from '../../../protocol/devices';
import type { MemoryFigure, RuntimeDescription, RuntimeId } from '../../../protocol/results';
import { adapterLabel, cpuLabel, isSoftwareAdapter } from '../labels';
import { DeviceLostError, type RunOutput, type Runner } from '../runner';
import type { TfjsBackendName } from './load';

const MiB = 2 ** 20;

export async function tfjsRunner(id: RuntimeId, report: DeviceReport): Promise<Runner> {
  // Loaded when asked for: see load.ts.
  const [{ loadTfjs }, { TfjsExecutor }, { WebGpuDeviceLostError }] = await Promise.all([
    import('./load'),
    import('./executor'),
    import('./webgpu'),
  ]);
  const names: Partial<Record<RuntimeId, TfjsBackendName>> = {
    'tfjs-webgpu': 'webgpu',
    'tfjs-wasm': 'wasm',
    'tfjs-cpu': 'cpu',
    'tfjs-node': 'tfjs-node',
    'tfjs-node-gpu': 'tfjs-node-gpu',
  };
  const backend = names[id];
  if (!backend) throw new Error(`${id} is not a TF.js runtime`);
  const { info } = await loadTfjs(backend);
  let device = cpuLabel(report, 1);
  let software = false;
  let maxBufferBytes: number | null = null;
  if (info.adapter) {
    const a = info.adapter;
    software = isSoftwareAdapter(a);
    const fromProbe = report.webgpu.adapters.find((p) => p.description === a.description);
    device = fromProbe
      ? adapterLabel(fromProbe)
      : `${a.description || a.device || a.vendor}${software ? ' (software — CPU emulating a GPU)' : ''}`;
    maxBufferBytes = Math.min(a.maxStorageBufferBindingSize, a.maxBufferSize);
  } else if (info.wasm) {
    device = `WebAssembly on ${report.host.cpuModel} (SIMD ${info.wasm.simd ? 'on' : 'off'}, ${info.wasm.threads} thread${info.wasm.threads === 1 ? '' : 's'})`;
    maxBufferBytes = 2048 * MiB; // wasm32 heap: larger sizes fail to allocate
  } else if (backend === 'tfjs-node' || backend === 'tfjs-node-gpu') {
    device = backend === 'tfjs-node-gpu' ? 'libtensorflow (CUDA)' : `libtensorflow on ${report.host.cpuModel}`;
  }
  const description: RuntimeDescription = {
    id,
    runtime: `TensorFlow.js ${info.tfjsVersion}, ${info.tfBackend} backend`,
    device,
    software,
    maxBufferBytes,
    tokenTileBytes: null,
  };
  /** tfjs's WebGpuDeviceLostError, restated with this runtime's device label. */
  const named = <T>(p: Promise<T>): Promise<T> =>
    p.catch((e: unknown) => {
      throw e instanceof WebGpuDeviceLostError ? new DeviceLostError(device, e.reason, e.detail) : e;
    });
  return {
    description,
    async prepare(graph, outputs, weights) {
      const exec = await named(TfjsExecutor.create(graph, outputs, weights, { backend }));
      return {
        run: async (inputs) => (await named(exec.run(inputs))) as RunOutput[],
        async measureMemory(inputs) {
          const r = await named(exec.run(inputs, { profile: true }));
          const figures: MemoryFigure[] = [
            {
              label: `tf.profile peakBytes above weights (${info.tfBackend})`,
              bytes: r.peakBytes - r.baselineBytes,
              kind: 'measured',
            },
          ];
          // webgpu only; tfjs counts for the whole process, so other executors' tensors are included.
          if (r.memory.numBytesAllocatedInGPU !== undefined) {
            figures.push({
              label: `tfjs ${info.tfBackend}: GPU buffers allocated after the run, tensors in use plus tfjs's pool of freed buffers kept for reuse (tf.memory().numBytesAllocatedInGPU, whole process)`,
              bytes: r.memory.numBytesAllocatedInGPU,
              kind: 'measured',
            });
          }
          if (r.memory.numBytesInGPU !== undefined) {
            figures.push({
              label: `tfjs ${info.tfBackend}: GPU buffers of live tensors after the run, weights included (tf.memory().numBytesInGPU, whole process)`,
              bytes: r.memory.numBytesInGPU,
              kind: 'measured',
            });
          }
          return figures;
        },
        release: async () => exec.dispose(),
      };
    },
    close: async () => {},
  };
}
