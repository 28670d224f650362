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
  /** The CUDA EP's provider library and the libraries it needs (Linux and Windows; absent elsewhere or unprobed). */
  cuda?: OrtCudaInfo;
}

/** A shared library a provider needs, and where it was found. */
export interface NativeLibrary {
  /** The name the loader asks for ("libcudnn.so.9"). */
  soname: string;
  path: string | null;
  /** How it was found: where the loader looks by itself, or where CUDA libraries usually are. */
  via: 'LD_LIBRARY_PATH' | 'RUNPATH' | 'loader cache' | 'system' | 'CUDA toolkit' | 'PyTorch pip package' | null;
}

/** onnxruntime's CUDA EP: installed or not, its libraries, and whether a benchmark can run it (`ort-cuda`). */
export interface OrtCudaInfo {
  /** onnxruntime-node's downloaded provider library, or null when it was never installed. */
  providerLibrary: string | null;
  /** What it needs beyond the C/C++ runtime: read from the library itself, else the CUDA 12 build's list. */
  libraries: NativeLibrary[];
  /** Folders the child process that runs it gets on LD_LIBRARY_PATH (libraries found outside the loader's reach). */
  libraryPath: string[];
  usable: boolean;
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

/** Where the Python that runs PyTorch came from: a setting or flag, VS Code's Python extension, or PATH. */
export type PythonSource = 'setting' | 'env' | 'vscode-python' | 'PATH' | 'system';

export interface PyTorchDevice {
  kind: 'cpu' | 'cuda' | 'mps';
  index: number;
  name: string;
  /** CUDA compute capability ("9.0"); ROCm devices report theirs the same way. */
  capability?: string;
  memoryBytes?: number;
  multiprocessors?: number;
  /** CPU: torch's intra-op threads. */
  threads?: number;
}

/** Whether torch.compile can run here, per device kind ViT Lens offers it on. */
export interface TorchCompileSupport {
  available: boolean;
  /** Why not at all (torch before 2.0, a Python dynamo does not support). */
  reason?: string;
  /** Inductor's CPU kernels need a C++ compiler; its GPU kernels need triton. */
  cpu: { available: boolean; reason?: string };
  cuda: { available: boolean; reason?: string };
}

/** The user's own Python with torch: the interpreter, the torch build and the devices it sees. */
export interface PyTorchInfo {
  available: boolean;
  /** Why not, when not: no Python found, or torch missing or broken in each one tried. */
  reason?: string;
  python: { executable: string; version: string; source: PythonSource } | null;
  torch: { version: string; cuda: string | null; hip: string | null; compile: TorchCompileSupport } | null;
  /** Folders of CUDA libraries this torch brought (pip wheels: site-packages/nvidia/*\/lib, torch/lib). */
  libraryDirs: string[];
  devices: PyTorchDevice[];
  /** Whether torch sees a CUDA (or ROCm) device, and why not. */
  cuda: { available: boolean; reason?: string };
  /** Whether torch sees Apple's Metal (MPS) device, and why not. */
  mps: { available: boolean; reason?: string };
  /** Every interpreter looked at, in order, and what was wrong with the ones not used. */
  tried: { executable: string; source: PythonSource; reason: string | null }[];
}

/** Whether WebGPU reaches the GPU this machine is known to have (nvidia-smi, the kernel driver, torch). */
export interface GpuVisibility {
  /** How the GPU is known to be here. */
  gpuKnown: string[];
  webgpuReachesIt: boolean;
  /** When it does not: what is wrong, in a sentence. */
  diagnosis: string | null;
  /** What to check or change, most likely first. */
  fixes: string[];
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
  pytorch: PyTorchInfo;
  /** Null when no GPU is known to be here. */
  gpuVisibility: GpuVisibility | null;
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
