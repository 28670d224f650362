/**
 * What a machine can run benchmarks on, as the device probe reports it (server/runtimes/probe.ts)
 * and as it crosses process boundaries: the worker's result, `vitlens devices --json`, the LSP's
 * devices request. Types only.
 *
 * Facts behind the fields are in docs/RUNTIMES.md §1, §4, §5 and §8:
 * - ORT's WebGPU EP carries its own Dawn and cannot be told which adapter to use, so the
 *   adapters listed here are what ORT will *probably* pick from (same Vulkan ICDs), not a guarantee.
 * - lavapipe ("llvmpipe") is a CPU pretending to be a GPU: runnable, 10–100× slower than ORT's CPU EP.
 * - Every WebGPU tensor must fit in maxStorageBufferBindingSize (128 MiB on lavapipe), hence it is reported.
 */

export interface HostInfo {
  cpuModel: string;
  /** os.availableParallelism(): what a thread pool should be sized to (respects affinity/cgroups). */
  cores: number;
  totalMemoryBytes: number;
  /** process.platform: 'linux', 'darwin', 'win32', … */
  platform: string;
  arch: string;
  /** process.versions.node, e.g. "20.20.2". */
  node: string;
}

export interface OrtBackend {
  /** Execution-provider name as onnxruntime-node spells it: "cpu", "webgpu", "cuda", "tensorrt". */
  name: string;
  /** Whether the binary for this EP ships in the npm package (usable without any download). */
  bundled: boolean;
  /** Bundled, or its provider library was downloaded into the package by the install script. */
  installed: boolean;
  /** Why it is not usable, or what it additionally needs. */
  reason?: string;
}

export interface OnnxRuntimeInfo {
  available: boolean;
  version: string | null;
  backends: OrtBackend[];
  reason?: string;
}

export interface AdapterLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxStorageBuffersPerShaderStage: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupsPerDimension: number;
}

/** How an adapter was asked for; the same physical adapter may answer several requests. */
export type AdapterRequest = 'high-performance' | 'low-power' | 'fallback';

export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  /** Dawn reports the driver's device name lower-cased with non-alphanumerics as '-' ("llvmpipe-llvm-15-0-6-256-bits-"). */
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** A CPU emulating a GPU (lavapipe/llvmpipe, SwiftShader): correct results, CPU speed at best. */
  software: boolean;
  /** Graphics API Dawn talks to. WebGPU does not expose it; inferred from the platform (Dawn's default backend there). */
  backend: 'Vulkan' | 'Metal' | 'D3D12' | 'unknown';
  /** Readable name when one is known (nvidia-smi's marketing name for NVIDIA); else null. */
  displayName: string | null;
  requestedAs: AdapterRequest[];
  limits: AdapterLimits;
  features: string[];
}

export interface WebGpuInfo {
  available: boolean;
  /** Why no adapter list is given, or why it is empty. */
  reason?: string;
  adapters: WebGpuAdapter[];
}

export interface NvidiaGpu {
  index: number;
  name: string;
  /** nvidia-smi reports MiB; kept in its unit so no rounding sneaks in. */
  memoryUsedMiB: number;
  memoryTotalMiB: number;
  driverVersion: string;
}

export interface NvidiaInfo {
  available: boolean;
  reason?: string;
  gpus: NvidiaGpu[];
}

export interface DeviceReport {
  schemaVersion: 1;
  /** ISO-8601 time of the probe. */
  probedAt: string;
  probeMs: number;
  host: HostInfo;
  onnxruntime: OnnxRuntimeInfo;
  webgpu: WebGpuInfo;
  nvidia: NvidiaInfo;
  /** Environment that changes which Vulkan driver every runtime in this process loads. */
  vulkanEnv: { VK_ICD_FILENAMES: string | null; VK_DRIVER_FILES: string | null; XDG_RUNTIME_DIR: string | null };
}

export type BackendId = 'ort-webgpu' | 'ort-cpu' | 'ort-cuda' | 'ort-tensorrt';

export interface BackendCandidate {
  backend: BackendId;
  /** onnxruntime-node executionProviders name. */
  executionProvider: string;
  /**
   * preferred: the fastest choice here; runnable: works, but use for correctness or as a fallback;
   * unknown: may work, the probe could not tell; unavailable: will not work on this install.
   */
  status: 'preferred' | 'runnable' | 'unknown' | 'unavailable';
  /** adapterLabel() of the adapter this WebGPU entry refers to. */
  adapter?: string;
  reason: string;
}
