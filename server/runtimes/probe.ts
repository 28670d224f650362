/**
 * What can this machine run benchmarks on? probeDevices reports the host CPU, onnxruntime-node's
 * execution providers, WebGPU adapters seen through Dawn (dawn.ts) and NVIDIA GPUs seen through
 * nvidia-smi (nvidia.ts), as a JSON-serialisable DeviceReport (protocol/devices.ts, which also
 * says which runtime facts the fields stand for).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errorMessage } from '../core/errors';
import type {
  AdapterRequest,
  DeviceReport,
  HostInfo,
  NvidiaInfo,
  OnnxRuntimeInfo,
  OrtBackend,
  WebGpuAdapter,
  WebGpuInfo,
  PyTorchInfo,
} from '../../protocol/devices';
import { adapterReport, importDawn, type DawnModule, type Gpu, type GpuAdapter } from './dawn';
import { runtimeRequire } from './external';
import { attachDisplayNames } from './labels';
import { diagnoseGpuVisibility } from './gpu-visibility';
import { probeNvidia } from './nvidia';
import { ortProviderFile, probeOrtCuda } from './ort/cuda';
import { noPyTorch, probePyTorch, type PythonChoice } from './torch/python';

export interface ProbeOptions {
  /** Probe WebGPU adapters. Default: true unless VITLENS_NO_WEBGPU=1. */
  webgpu?: boolean;
  /** Load onnxruntime-node to list its EPs. Default: true. */
  onnxruntime?: boolean;
  /** Run nvidia-smi. Default: true. */
  nvidia?: boolean;
  /** Upper bound for each external step (adapter request, nvidia-smi). Default: 15 s. */
  timeoutMs?: number;
  /** nvidia-smi executable; default "nvidia-smi" on PATH. */
  nvidiaSmi?: string;
  /** Which Python to probe for PyTorch (torch/python.ts), or false not to. Default: the usual search. */
  pytorch?: PythonChoice | false;
}

const DEFAULT_TIMEOUT_MS = 15_000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    // A hung driver must not also keep the process alive.
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function probeHost(): HostInfo {
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    totalMemoryBytes: os.totalmem(),
    platform: process.platform,
    arch: process.arch,
    node: process.versions.node,
  };
}

const TENSORRT_NOTE = {
  missing:
    'not bundled: comes with the CUDA EP download from api.nuget.org at install time (absent here) and needs a TensorRT installation',
  present: 'downloaded at install time; needs CUDA and TensorRT libraries when a session is created',
};

function ortPackageDir(): string {
  return path.dirname(runtimeRequire.resolve('onnxruntime-node/package.json'));
}

export function probeOnnxRuntime(): OnnxRuntimeInfo {
  try {
    const ort = runtimeRequire('onnxruntime-node') as {
      listSupportedBackends?: () => { name: string; bundled: boolean }[];
      env?: { versions?: { node?: string; common?: string } };
    };
    const version = ort.env?.versions?.node ?? ort.env?.versions?.common ?? null;
    if (typeof ort.listSupportedBackends !== 'function') {
      return { available: true, version, backends: [], reason: 'this onnxruntime-node has no listSupportedBackends()' };
    }
    const backends = ort.listSupportedBackends().map(({ name, bundled }): OrtBackend => {
      if (name === 'webgpu' && bundled) {
        return {
          name,
          bundled,
          installed: true,
          reason:
            'ships its own Dawn; needs a WebGPU adapter (a Vulkan driver on Linux) and cannot choose between adapters',
        };
      }
      if (bundled) return { name, bundled, installed: true };
      const installed = fs.existsSync(ortProviderFile(ortPackageDir(), name));
      // The CUDA EP's reason comes with its library check (withCudaLibraries), once torch's folders are known.
      const reason =
        name === 'tensorrt'
          ? installed
            ? TENSORRT_NOTE.present
            : TENSORRT_NOTE.missing
          : installed
            ? 'not bundled; provider library present'
            : 'not bundled in the npm package and not installed';
      return { name, bundled, installed, reason };
    });
    return { available: true, version, backends };
  } catch (e) {
    return {
      available: false,
      version: null,
      backends: [],
      reason: `onnxruntime-node could not be loaded: ${errorMessage(e)}`,
    };
  }
}

/**
 * Adds the CUDA EP's library check to an ORT report: the provider and each library it needs, found
 * where the loader looks, in CUDA toolkits or in the user's PyTorch wheels (ort/cuda.ts).
 */
function withCudaLibraries(ort: OnnxRuntimeInfo, pytorch: PyTorchInfo): OnnxRuntimeInfo {
  const backend = ort.backends.find((b) => b.name === 'cuda');
  if (!ort.available || !backend) return ort;
  const cuda = probeOrtCuda(ortPackageDir(), { env: process.env, pytorchDirs: pytorch.libraryDirs });
  const reason = cuda.usable
    ? `installed; every library it needs was found${cuda.libraryPath.length ? ` (a child process gets ${cuda.libraryPath.join(':')} on LD_LIBRARY_PATH)` : ''}`
    : cuda.reason;
  return {
    ...ort,
    cuda,
    backends: ort.backends.map((b) =>
      b === backend ? { ...b, installed: cuda.providerLibrary !== null, ...(reason ? { reason } : {}) } : b,
    ),
  };
}

export async function probeWebGpu(opts: { timeoutMs?: number } = {}): Promise<WebGpuInfo> {
  if (process.env.VITLENS_NO_WEBGPU === '1') {
    return { available: false, reason: 'WebGPU probing disabled by VITLENS_NO_WEBGPU=1', adapters: [] };
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // The Vulkan loader warns on every start without it; any writable directory silences it.
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = os.tmpdir();
  let mod: DawnModule;
  try {
    mod = await importDawn();
  } catch (e) {
    return { available: false, reason: `the webgpu package could not be loaded: ${errorMessage(e)}`, adapters: [] };
  }
  // Only this function holds the GPU object. Once it returns, nothing references Dawn's
  // instance, so it can be collected and does not keep the event loop alive; no device is
  // ever created here, which is what would otherwise pin it (docs/RUNTIMES.md §3).
  let gpu: Gpu | undefined = mod.create([]);
  const requests: [AdapterRequest, Parameters<Gpu['requestAdapter']>[0]][] = [
    ['high-performance', { powerPreference: 'high-performance' }],
    ['low-power', { powerPreference: 'low-power' }],
    // With a hardware GPU present the power preferences both return it; only this finds lavapipe/SwiftShader.
    ['fallback', { forceFallbackAdapter: true }],
  ];
  const adapters: WebGpuAdapter[] = [];
  const errors: string[] = [];
  try {
    for (const [as, options] of requests) {
      let adapter: GpuAdapter | null;
      try {
        adapter = await withTimeout(gpu.requestAdapter(options), timeoutMs, `requestAdapter(${as})`);
      } catch (e) {
        errors.push(`${as}: ${errorMessage(e)}`);
        continue;
      }
      if (!adapter) continue;
      const report = adapterReport(adapter, as);
      // Each request returns a fresh GPUAdapter object, so identity cannot dedupe; the info can.
      const same = adapters.find(
        (x) =>
          x.vendor === report.vendor &&
          x.architecture === report.architecture &&
          x.device === report.device &&
          x.description === report.description,
      );
      if (same) same.requestedAs.push(as);
      else adapters.push(report);
    }
  } finally {
    gpu = undefined;
  }
  if (adapters.length === 0) {
    const why =
      errors.length > 0
        ? errors.join('; ')
        : 'requestAdapter() returned null for every request (no Vulkan ICD found; in containers NVIDIA_DRIVER_CAPABILITIES must include graphics)';
    return { available: false, reason: why, adapters };
  }
  return errors.length > 0
    ? { available: true, reason: `some requests failed: ${errors.join('; ')}`, adapters }
    : { available: true, adapters };
}

/** Everything this machine offers for benchmarks. Never throws: missing pieces carry a `reason`. */
export async function probeDevices(opts: ProbeOptions = {}): Promise<DeviceReport> {
  const started = performance.now();
  const probedAt = new Date().toISOString();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const wantWebGpu = opts.webgpu ?? process.env.VITLENS_NO_WEBGPU !== '1';
  const nvidiaPromise: Promise<NvidiaInfo> =
    opts.nvidia === false
      ? Promise.resolve({ available: false, reason: 'not probed (nvidia: false)', gpus: [] })
      : probeNvidia({ timeoutMs, ...(opts.nvidiaSmi ? { nvidiaSmi: opts.nvidiaSmi } : {}) });
  const pytorchPromise: Promise<PyTorchInfo> =
    opts.pytorch === false
      ? Promise.resolve(noPyTorch('not probed (pytorch: false)'))
      : process.env.VITLENS_NO_PYTORCH === '1'
        ? Promise.resolve(noPyTorch('PyTorch probing disabled by VITLENS_NO_PYTORCH=1'))
        : probePyTorch(opts.pytorch ?? {});
  const onnxruntime: OnnxRuntimeInfo =
    opts.onnxruntime === false
      ? { available: false, version: null, backends: [], reason: 'not probed (onnxruntime: false)' }
      : probeOnnxRuntime();
  const webgpu: WebGpuInfo = wantWebGpu
    ? await probeWebGpu({ timeoutMs })
    : {
        available: false,
        reason:
          process.env.VITLENS_NO_WEBGPU === '1'
            ? 'WebGPU probing disabled by VITLENS_NO_WEBGPU=1'
            : 'not probed (webgpu: false)',
        adapters: [],
      };
  const nvidia = await nvidiaPromise;
  const pytorch = await pytorchPromise;
  attachDisplayNames(webgpu.adapters, nvidia.gpus);
  const host = probeHost();
  return {
    schemaVersion: 1,
    probedAt,
    probeMs: Math.round((performance.now() - started) * 10) / 10,
    host,
    onnxruntime: withCudaLibraries(onnxruntime, pytorch),
    webgpu,
    nvidia,
    pytorch,
    gpuVisibility: diagnoseGpuVisibility({ nvidia, pytorch, webgpu, host }),
    vulkanEnv: {
      VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? null,
      VK_DRIVER_FILES: process.env.VK_DRIVER_FILES ?? null,
      XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? null,
    },
  };
}
