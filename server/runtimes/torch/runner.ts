/**
 * The user's PyTorch as a Runner: the graph lowered to a torch program
 * (core/engine/lowerings/torch.ts) and run by vitlens_torch.py in the user's Python, on the CPU,
 * a CUDA/ROCm GPU or Apple's MPS. Timed inside Python on the device (CUDA events; elsewhere a
 * clock between device synchronisations) with the inputs already there, so a figure is torch's
 * time, not the pipe's. Memory is torch's own allocator peak where it has one (CUDA, MPS).
 */
import os from 'node:os';
import type { DeviceReport, PyTorchDevice } from '../../../protocol/devices';
import { formatBytes, REPORT_BYTES } from '../../../protocol/format';
import type { MemoryFigure, RuntimeDescription, RuntimeId } from '../../../protocol/results';
import { lowerToTorch } from '../../core/engine/lowerings/torch';
import { cpuLabel } from '../labels';
import type { Runner } from '../runner';
import { childPreparedGraph } from '../child/prepared';
import { startTorchProcess } from './process';

export type TorchRuntimeId = Extract<
  RuntimeId,
  'torch-cpu' | 'torch-cuda' | 'torch-mps' | 'torch-cpu-compiled' | 'torch-cuda-compiled'
>;

const DEVICE_KIND: Record<TorchRuntimeId, PyTorchDevice['kind']> = {
  'torch-cpu': 'cpu',
  'torch-cuda': 'cuda',
  'torch-mps': 'mps',
  'torch-cpu-compiled': 'cpu',
  'torch-cuda-compiled': 'cuda',
};

function deviceLabel(d: PyTorchDevice, report: DeviceReport, threads: number): string {
  const torch = report.pytorch.torch!;
  if (d.kind === 'cpu') return cpuLabel(report, threads);
  if (d.kind === 'mps') return d.name;
  const stack = torch.hip ? `ROCm/HIP ${torch.hip}` : `CUDA ${torch.cuda ?? '?'}`;
  const memory = d.memoryBytes ? `, ${formatBytes(d.memoryBytes, REPORT_BYTES)}` : '';
  return `${d.name} (${stack}, compute capability ${d.capability ?? '?'}${memory})`;
}

export async function torchRunner(id: TorchRuntimeId, report: DeviceReport): Promise<Runner> {
  const info = report.pytorch;
  if (!info.available || !info.python || !info.torch)
    throw new Error(`PyTorch is not available: ${info.reason ?? 'no Python with torch was found'}`);
  const kind = DEVICE_KIND[id];
  const device = info.devices.find((d) => d.kind === kind);
  if (!device) {
    const why = kind === 'cuda' ? info.cuda.reason : kind === 'mps' ? info.mps.reason : undefined;
    throw new Error(
      `PyTorch ${info.torch.version} (${info.python.executable}) sees no ${kind.toUpperCase()} device${why ? `: ${why}` : ''}`,
    );
  }
  const compiled = id.endsWith('-compiled');
  if (compiled) {
    const support = info.torch.compile;
    const here = kind === 'cuda' ? support.cuda : support.cpu;
    if (!support.available || !here.available)
      throw new Error(
        `torch.compile is not available on ${kind} with PyTorch ${info.torch.version} (${info.python.executable}): ${support.reason ?? here.reason ?? 'unknown'}`,
      );
  }
  const threads = os.availableParallelism();
  const who = `PyTorch ${info.torch.version} (${info.python.executable})`;
  const proc = startTorchProcess(who, info.python.executable, threads);
  const torchDevice = kind === 'cpu' ? 'cpu' : `${kind}:${device.index}`;
  const description: RuntimeDescription = {
    id,
    runtime: `PyTorch ${info.torch.version} ${compiled ? 'torch.compile (inductor; compiled during the warm-up runs)' : 'eager'} (Python ${info.python.version}; timed in Python${kind === 'cuda' ? ' with CUDA events' : ''})`,
    device: deviceLabel(device, report, threads),
    software: false,
    maxBufferBytes: null,
    tokenTileBytes: null,
  };
  return {
    description,
    async prepare(graph, outputs, weights) {
      const { program, buffers } = lowerToTorch(graph, outputs, weights);
      const prepared = await proc.request({ cmd: 'prepare', device: torchDevice, program, compile: compiled }, buffers);
      const handle = prepared.header.handle as number;
      const encodeInputs = (inputs: Record<string, Float32Array>) => {
        const names = Object.keys(inputs);
        return { specs: names.map((name) => ({ name })), blobs: names.map((n) => inputs[n]!) };
      };
      const child = childPreparedGraph(proc, handle, encodeInputs);
      return {
        ...child,
        async measureMemory(inputs) {
          await child.bind(inputs);
          const answer = await proc.request({ cmd: 'memory', handle });
          return (answer.header.figures as { label: string; bytes: number }[]).map((f): MemoryFigure => ({
            label: f.label,
            bytes: f.bytes,
            kind: 'measured',
          }));
        },
      };
    },
    close: () => proc.close(),
  };
}
