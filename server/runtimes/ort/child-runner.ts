/**
 * onnxruntime in a process of its own (host.ts), for the CUDA execution provider: the dynamic
 * loader reads LD_LIBRARY_PATH once, when a process starts, and the CUDA and cuDNN libraries the
 * provider needs are often where it does not look (a CUDA toolkit folder, the user's PyTorch
 * wheels; ort/cuda.ts finds them). The host gets those folders on LD_LIBRARY_PATH; a crash in
 * the driver, an out-of-memory or a hang ends that process with a clear error, never this one.
 * The same host runs the CPU EP, which is how the tests prove this path on a machine without CUDA.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DeviceReport } from '../../../protocol/devices';
import type { RuntimeDescription } from '../../../protocol/results';
import { numel } from '../../core/shape';
import { lowerGraph } from '../../core/engine/lowerings/onnx';
import { ChildChannel } from '../child/channel';
import { childPreparedGraph } from '../child/prepared';
import { cpuLabel } from '../labels';
import type { Runner } from '../runner';

/** dist/ort-host.js next to the running bundle, or the built one when running from source (tests). */
export function ortHostPath(): string {
  const candidates = [
    path.join(__dirname, 'ort-host.js'),
    path.join(__dirname, '..', '..', '..', 'dist', 'ort-host.js'),
  ];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found)
    throw new Error(`the onnxruntime host is missing (looked for ${candidates.join(', ')}): run \`npm run build\``);
  return found;
}

/** How long one request may take before the host is taken for hung: VITLENS_ORT_HOST_TIMEOUT_MS, else 10 minutes. */
function requestTimeoutMs(): number {
  return Number(process.env.VITLENS_ORT_HOST_TIMEOUT_MS) || 600_000;
}

function cudaDeviceLabel(report: DeviceReport): string {
  const gpu = report.nvidia.gpus[0];
  const torchGpu = report.pytorch.devices.find((d) => d.kind === 'cuda');
  if (gpu) return `${gpu.name} (NVIDIA driver ${gpu.driverVersion}, ${gpu.memoryTotalMiB} MiB)`;
  return torchGpu ? torchGpu.name : 'CUDA device 0';
}

/**
 * The runner: `ep` 'cuda' is the `ort-cuda` runtime; 'cpu' runs the same path on the CPU EP (what
 * the tests use where there is no CUDA).
 */
export async function ortChildRunner(ep: 'cuda' | 'cpu', report: DeviceReport): Promise<Runner> {
  const ortInfo = report.onnxruntime;
  if (!ortInfo.available) throw new Error(ortInfo.reason ?? 'onnxruntime-node is not available');
  let libraryPath: string[] = [];
  if (ep === 'cuda') {
    const cuda = ortInfo.cuda;
    if (!cuda?.usable) throw new Error(`onnxruntime's CUDA EP is not usable: ${cuda?.reason ?? 'not probed'}`);
    if (!report.nvidia.available && !report.pytorch.cuda.available)
      throw new Error(
        `onnxruntime's CUDA EP is installed but no NVIDIA GPU is visible (${report.nvidia.reason ?? 'nvidia-smi found none'})`,
      );
    libraryPath = cuda.libraryPath;
  }
  const threads = os.availableParallelism();
  const who = `onnxruntime-node ${ortInfo.version ?? '?'} ${ep === 'cuda' ? 'CUDA' : 'CPU'} EP (host process)`;
  const inherited = process.env.LD_LIBRARY_PATH ? process.env.LD_LIBRARY_PATH.split(':') : [];
  const channel = new ChildChannel({
    who,
    command: process.execPath,
    args: [ortHostPath()],
    env: {
      ...process.env,
      // VS Code's own Node is Electron: this makes it run the script as plain Node.
      ELECTRON_RUN_AS_NODE: '1',
      LD_LIBRARY_PATH: [...libraryPath, ...inherited].join(':'),
    },
    requestTimeoutMs: requestTimeoutMs(),
  });
  const description: RuntimeDescription = {
    id: 'ort-cuda',
    runtime: `onnxruntime-node ${ortInfo.version ?? '?'}, ${ep === 'cuda' ? 'CUDA' : 'CPU'} EP (own process; timed around session.run, host↔device copies included)`,
    device: ep === 'cuda' ? cudaDeviceLabel(report) : cpuLabel(report, threads),
    software: false,
    maxBufferBytes: null,
    tokenTileBytes: null,
  };
  return {
    description,
    async prepare(graph, outputs, weights) {
      const lowered = lowerGraph(graph, outputs, weights);
      const shapes = new Map(graph.inputs.map((i) => [i.name, i.tensor.shape] as const));
      const prepared = await channel.request(
        { cmd: 'prepare', ep, threads, deviceId: 0, outputNames: lowered.outputNames },
        [lowered.bytes],
      );
      const handle = prepared.header.handle as number;
      const encode = (inputs: Record<string, Float32Array>) => {
        const specs = lowered.inputNames.map((name) => {
          const data = inputs[name];
          const shape = shapes.get(name)!;
          if (!data || data.length !== numel(shape))
            throw new Error(`input "${name}": expected ${numel(shape)} values, got ${data?.length ?? 'none'}`);
          return { name, shape: [...shape] };
        });
        return { specs, blobs: specs.map((s) => inputs[s.name]!) };
      };
      return {
        ...childPreparedGraph(channel, handle, encode),
        // ORT reports no CUDA memory of its own; the harness samples nvidia-smi around the runs.
        measureMemory: async () => [],
      };
    },
    close: () => channel.close(),
  };
}
