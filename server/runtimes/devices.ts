/**
 * What can this machine run benchmarks on? A JSON-serialisable report of the host CPU,
 * onnxruntime-node's execution providers, WebGPU adapters seen through Dawn (the `webgpu`
 * package) and NVIDIA GPUs seen through nvidia-smi, plus a ranking of runtime backends.
 *
 * Facts this relies on are in shared/RUNTIMES.md §1, §4, §5 and §8:
 * - ORT's WebGPU EP carries its own Dawn and cannot be told which adapter to use, so the
 *   adapters listed here are what ORT will *probably* pick from (same Vulkan ICDs), not a guarantee.
 * - lavapipe ("llvmpipe") is a CPU pretending to be a GPU: runnable, 10–100× slower than ORT's CPU EP.
 * - Every WebGPU tensor must fit in maxStorageBufferBindingSize (128 MiB on lavapipe), hence it is reported.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// ---------------------------------------------------------------------------------------------
// Report shape
// ---------------------------------------------------------------------------------------------

export interface HostInfo {
  cpuModel: string;
  /** os.availableParallelism(): what a thread pool should be sized to (respects affinity/cgroups). */
  cores: number;
  totalMemoryBytes: number;
  platform: NodeJS.Platform;
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
}

// ---------------------------------------------------------------------------------------------
// Module loading that survives esbuild's CJS bundling
// ---------------------------------------------------------------------------------------------

/**
 * A require esbuild does not see: a plain `require('onnxruntime-node')` would be inlined into
 * dist/*.js, and its native binding (found by a path relative to the package) would then not load.
 * Resolving from this file's location finds the extension's node_modules in both tsx and the bundle.
 */
const runtimeRequire: NodeJS.Require = createRequire(typeof __filename === 'string' ? __filename : path.join(process.cwd(), 'index.js'));

/**
 * `webgpu` is ESM-only. TypeScript/esbuild turn `import()` in CJS output into `require()`,
 * which cannot load ESM on node 20; hiding the import in a Function keeps it a real dynamic import.
 */
const dynamicImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

async function importWebGpu(): Promise<WebGpuModule> {
  let specifier = 'webgpu';
  try {
    // An absolute URL, because a Function-compiled import() has no referrer of its own to resolve a bare name from.
    specifier = pathToFileURL(runtimeRequire.resolve('webgpu')).href;
  } catch {
    // Fall through with the bare name; the import below reports the real error.
  }
  return (await dynamicImport(specifier)) as WebGpuModule;
}

/** The few dawn.node members used here, typed locally so no DOM/WebGPU lib typing is assumed. */
interface WebGpuModule {
  create(flags: string[]): DawnGpu;
}
interface DawnGpu {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power'; forceFallbackAdapter?: boolean }): Promise<DawnAdapter | null>;
}
interface DawnAdapter {
  info: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  /** Older Dawn builds put the flag on the adapter instead of its info. */
  isFallbackAdapter?: boolean;
  limits: Record<string, number | undefined>;
  features: Iterable<string>;
}

// ---------------------------------------------------------------------------------------------
// Probes
// ---------------------------------------------------------------------------------------------

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

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
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

const ORT_INSTALL_NOTES: Record<string, { missing: string; present: string }> = {
  cuda: {
    missing:
      "not bundled: onnxruntime-node's install script downloads the CUDA EP from api.nuget.org at npm-install time; it is absent here (install script skipped, e.g. onnxruntime-node-install=skip, or no network)",
    present: 'not bundled but downloaded at install time; needs matching CUDA 12 / cuDNN libraries when a session is created',
  },
  tensorrt: {
    missing: 'not bundled: comes with the CUDA EP download from api.nuget.org at install time (absent here) and needs a TensorRT installation',
    present: 'downloaded at install time; needs CUDA and TensorRT libraries when a session is created',
  },
};

/** Where onnxruntime-node's install script puts downloaded EP libraries (script/install.js BIN_FOLDER). */
function ortProviderLibraryPresent(name: string): boolean {
  try {
    const pkgDir = path.dirname(runtimeRequire.resolve('onnxruntime-node/package.json'));
    const dir = path.join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch);
    const file = process.platform === 'win32' ? `onnxruntime_providers_${name}.dll` : `libonnxruntime_providers_${name}.${process.platform === 'darwin' ? 'dylib' : 'so'}`;
    return fs.existsSync(path.join(dir, file));
  } catch {
    return false;
  }
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
        return { name, bundled, installed: true, reason: 'ships its own Dawn; needs a WebGPU adapter (a Vulkan driver on Linux) and cannot choose between adapters' };
      }
      if (bundled) return { name, bundled, installed: true };
      const installed = ortProviderLibraryPresent(name);
      const note = ORT_INSTALL_NOTES[name];
      const reason = note ? (installed ? note.present : note.missing) : installed ? 'not bundled; provider library present' : 'not bundled in the npm package and not installed';
      return { name, bundled, installed, reason };
    });
    return { available: true, version, backends };
  } catch (e) {
    return { available: false, version: null, backends: [], reason: `onnxruntime-node could not be loaded: ${errorMessage(e)}` };
  }
}

const SOFTWARE_DEVICE = /llvmpipe|swiftshader|lavapipe/i;

/** CPU-emulated adapters: flagged by Dawn, or recognisable by their Mesa/SwiftShader names. */
export function isSoftwareAdapter(a: Pick<WebGpuAdapter, 'vendor' | 'architecture' | 'device' | 'description' | 'isFallbackAdapter'>): boolean {
  return a.isFallbackAdapter || (a.vendor === 'mesa' && a.architecture === 'software') || SOFTWARE_DEVICE.test(a.device) || SOFTWARE_DEVICE.test(a.description);
}

function platformBackend(platform: NodeJS.Platform): WebGpuAdapter['backend'] {
  if (platform === 'linux' || platform === 'android') return 'Vulkan';
  if (platform === 'darwin') return 'Metal';
  if (platform === 'win32') return 'D3D12';
  return 'unknown';
}

function limitOf(limits: Record<string, number | undefined>, name: keyof AdapterLimits): number {
  const v = limits[name];
  return typeof v === 'number' ? v : Number.NaN;
}

function toAdapterReport(a: DawnAdapter, requestedAs: AdapterRequest): WebGpuAdapter {
  const info = a.info ?? {};
  const base = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    isFallbackAdapter: Boolean(info.isFallbackAdapter ?? a.isFallbackAdapter),
  };
  return {
    ...base,
    software: isSoftwareAdapter(base),
    backend: platformBackend(process.platform),
    displayName: null,
    requestedAs: [requestedAs],
    limits: {
      maxStorageBufferBindingSize: limitOf(a.limits, 'maxStorageBufferBindingSize'),
      maxBufferSize: limitOf(a.limits, 'maxBufferSize'),
      maxComputeWorkgroupStorageSize: limitOf(a.limits, 'maxComputeWorkgroupStorageSize'),
      maxStorageBuffersPerShaderStage: limitOf(a.limits, 'maxStorageBuffersPerShaderStage'),
      maxComputeInvocationsPerWorkgroup: limitOf(a.limits, 'maxComputeInvocationsPerWorkgroup'),
      maxComputeWorkgroupsPerDimension: limitOf(a.limits, 'maxComputeWorkgroupsPerDimension'),
    },
    features: [...a.features].sort(),
  };
}

export async function probeWebGpu(opts: { timeoutMs?: number } = {}): Promise<WebGpuInfo> {
  if (process.env.VITLENS_NO_WEBGPU === '1') {
    return { available: false, reason: 'WebGPU probing disabled by VITLENS_NO_WEBGPU=1', adapters: [] };
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // The Vulkan loader warns on every start without it; any writable directory silences it.
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = os.tmpdir();
  let mod: WebGpuModule;
  try {
    mod = await importWebGpu();
  } catch (e) {
    return { available: false, reason: `the webgpu package could not be loaded: ${errorMessage(e)}`, adapters: [] };
  }
  // Only this function holds the GPU object. Once it returns, nothing references Dawn's
  // instance, so it can be collected and does not keep the event loop alive; no device is
  // ever created here, which is what would otherwise pin it (RUNTIMES.md §3).
  let gpu: DawnGpu | undefined = mod.create([]);
  const requests: [AdapterRequest, Parameters<DawnGpu['requestAdapter']>[0]][] = [
    ['high-performance', { powerPreference: 'high-performance' }],
    ['low-power', { powerPreference: 'low-power' }],
    // With a hardware GPU present the power preferences both return it; only this finds lavapipe/SwiftShader.
    ['fallback', { forceFallbackAdapter: true }],
  ];
  const adapters: WebGpuAdapter[] = [];
  const errors: string[] = [];
  try {
    for (const [as, options] of requests) {
      let adapter: DawnAdapter | null;
      try {
        adapter = await withTimeout(gpu.requestAdapter(options), timeoutMs, `requestAdapter(${as})`);
      } catch (e) {
        errors.push(`${as}: ${errorMessage(e)}`);
        continue;
      }
      if (!adapter) continue;
      const report = toAdapterReport(adapter, as);
      // Each request returns a fresh GPUAdapter object, so identity cannot dedupe; the info can.
      const same = adapters.find((x) => x.vendor === report.vendor && x.architecture === report.architecture && x.device === report.device && x.description === report.description);
      if (same) same.requestedAs.push(as);
      else adapters.push(report);
    }
  } finally {
    gpu = undefined;
  }
  if (adapters.length === 0) {
    const why = errors.length > 0 ? errors.join('; ') : 'requestAdapter() returned null for every request (no Vulkan ICD found; in containers NVIDIA_DRIVER_CAPABILITIES must include graphics)';
    return { available: false, reason: why, adapters };
  }
  return errors.length > 0 ? { available: true, reason: `some requests failed: ${errors.join('; ')}`, adapters } : { available: true, adapters };
}

const NVIDIA_SMI_QUERY = ['--query-gpu=index,name,memory.used,memory.total,driver_version', '--format=csv,noheader,nounits'];

function runNvidiaSmi(args: string[], opts: { timeoutMs?: number; nvidiaSmi?: string }): Promise<{ ok: true; stdout: string } | { ok: false; reason: string }> {
  const exe = opts.nvidiaSmi ?? 'nvidia-smi';
  const timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve) => {
    execFile(exe, args, { timeout, encoding: 'utf8', windowsHide: true }, (err, stdout, stderr) => {
      if (!err) return resolve({ ok: true, stdout });
      const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null };
      if (e.code === 'ENOENT') return resolve({ ok: false, reason: 'nvidia-smi not found' });
      if (e.killed || e.signal) return resolve({ ok: false, reason: `nvidia-smi timed out after ${timeout} ms` });
      // e.g. "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
      const detail = (stderr || stdout || e.message).trim().split('\n')[0] ?? '';
      resolve({ ok: false, reason: `nvidia-smi failed (exit ${String(e.code)}): ${detail}` });
    });
  });
}

/** Parses `--query-gpu=index,name,memory.used,memory.total,driver_version --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(stdout: string): NvidiaGpu[] {
  const gpus: NvidiaGpu[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const cells = line.split(',').map((c) => c.trim());
    // GPU names contain no commas in practice, but take the fixed fields from both ends to be safe.
    if (cells.length < 5) continue;
    const index = Number(cells[0]);
    const driverVersion = cells[cells.length - 1]!;
    const total = Number(cells[cells.length - 2]);
    const used = Number(cells[cells.length - 3]);
    const name = cells.slice(1, cells.length - 3).join(', ');
    // "[N/A]" (MIG slices, some vGPUs) becomes NaN, which JSON turns into null; keep the GPU listed regardless.
    gpus.push({ index, name, memoryUsedMiB: used, memoryTotalMiB: total, driverVersion });
  }
  return gpus;
}

export async function probeNvidia(opts: { timeoutMs?: number; nvidiaSmi?: string } = {}): Promise<NvidiaInfo> {
  const r = await runNvidiaSmi(NVIDIA_SMI_QUERY, opts);
  if (!r.ok) return { available: false, reason: r.reason, gpus: [] };
  const gpus = parseNvidiaSmi(r.stdout);
  return gpus.length > 0 ? { available: true, gpus } : { available: false, reason: 'nvidia-smi listed no GPUs', gpus };
}

/** "NVIDIA H100 80GB HBM3" → "nvidia-h100-80gb-hbm3", the way Dawn spells adapter.info.device. */
function dawnSlug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

/** Gives NVIDIA adapters nvidia-smi's name, since Dawn only reports a slug. */
function attachDisplayNames(adapters: WebGpuAdapter[], gpus: NvidiaGpu[]): void {
  for (const a of adapters) {
    if (a.vendor.toLowerCase() !== 'nvidia') continue;
    const slug = a.device.replace(/-+$/, '');
    const match = gpus.find((g) => dawnSlug(g.name).replace(/-+$/, '') === slug) ?? (gpus.length === 1 ? gpus[0] : undefined);
    if (match) a.displayName = match.name;
  }
}

/** Everything this machine offers for benchmarks. Never throws: missing pieces carry a `reason`. */
export async function probeDevices(opts: ProbeOptions = {}): Promise<DeviceReport> {
  const started = performance.now();
  const probedAt = new Date().toISOString();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const wantWebGpu = opts.webgpu ?? process.env.VITLENS_NO_WEBGPU !== '1';
  const nvidiaPromise: Promise<NvidiaInfo> =
    opts.nvidia === false ? Promise.resolve({ available: false, reason: 'not probed (nvidia: false)', gpus: [] }) : probeNvidia({ timeoutMs, ...(opts.nvidiaSmi ? { nvidiaSmi: opts.nvidiaSmi } : {}) });
  const onnxruntime: OnnxRuntimeInfo = opts.onnxruntime === false ? { available: false, version: null, backends: [], reason: 'not probed (onnxruntime: false)' } : probeOnnxRuntime();
  const webgpu: WebGpuInfo = wantWebGpu
    ? await probeWebGpu({ timeoutMs })
    : { available: false, reason: process.env.VITLENS_NO_WEBGPU === '1' ? 'WebGPU probing disabled by VITLENS_NO_WEBGPU=1' : 'not probed (webgpu: false)', adapters: [] };
  const nvidia = await nvidiaPromise;
  attachDisplayNames(webgpu.adapters, nvidia.gpus);
  return {
    schemaVersion: 1,
    probedAt,
    probeMs: Math.round((performance.now() - started) * 10) / 10,
    host: probeHost(),
    onnxruntime,
    webgpu,
    nvidia,
    vulkanEnv: {
      VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? null,
      VK_DRIVER_FILES: process.env.VK_DRIVER_FILES ?? null,
      XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? null,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// GPU memory sampling (nvidia-smi; whole-device figures, other processes and Dawn's pools included)
// ---------------------------------------------------------------------------------------------

export type GpuMemorySample = { available: true; at: number; usedMiB: number[]; totalMiB: number[] } | { available: false; reason: string };

/** One reading of every NVIDIA GPU's used memory, indexed like nvidia-smi. */
export async function gpuMemoryUsed(opts: { timeoutMs?: number; nvidiaSmi?: string } = {}): Promise<GpuMemorySample> {
  const r = await runNvidiaSmi(NVIDIA_SMI_QUERY, { timeoutMs: opts.timeoutMs ?? 5_000, ...(opts.nvidiaSmi ? { nvidiaSmi: opts.nvidiaSmi } : {}) });
  if (!r.ok) return { available: false, reason: r.reason };
  const gpus = parseNvidiaSmi(r.stdout);
  if (gpus.length === 0) return { available: false, reason: 'nvidia-smi listed no GPUs' };
  return { available: true, at: Date.now(), usedMiB: gpus.map((g) => g.memoryUsedMiB), totalMiB: gpus.map((g) => g.memoryTotalMiB) };
}

export interface GpuMemoryPeak {
  available: boolean;
  reason?: string;
  /** First reading, taken before the work started (subtract it for the benchmark's own share). */
  baselineMiB: number[];
  peakMiB: number[];
  samples: number;
}

/**
 * Polls nvidia-smi every `intervalMs` until stop(); reports baseline and peak per GPU.
 * A spawn costs tens of ms, so this is for peaks of runs lasting ≳10× the interval, not per-op figures.
 */
export function startGpuMemorySampler(opts: { intervalMs?: number; nvidiaSmi?: string; read?: () => Promise<GpuMemorySample> } = {}): { stop(): Promise<GpuMemoryPeak> } {
  const intervalMs = opts.intervalMs ?? 100;
  // `read` replaces the nvidia-smi call, so the peak logic can be exercised where there is no NVIDIA GPU.
  const read = opts.read ?? (() => gpuMemoryUsed(opts.nvidiaSmi ? { nvidiaSmi: opts.nvidiaSmi } : {}));
  let baseline: number[] | null = null;
  let peak: number[] = [];
  let samples = 0;
  let failure: string | null = null;
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const take = async (): Promise<void> => {
    const s = await read();
    if (!s.available) {
      failure = s.reason;
      return;
    }
    samples++;
    baseline ??= s.usedMiB;
    peak = s.usedMiB.map((u, i) => Math.max(u, peak[i] ?? Number.NEGATIVE_INFINITY));
  };
  const loop = (): void => {
    // Chained rather than setInterval so a slow nvidia-smi never runs twice at once.
    inFlight = take().then(() => {
      if (!stopped && failure === null) {
        timer = setTimeout(loop, intervalMs);
        timer.unref();
      }
    });
  };
  loop();
  return {
    async stop(): Promise<GpuMemoryPeak> {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
      if (samples === 0) await take();
      if (baseline === null) return { available: false, reason: failure ?? 'no sample taken', baselineMiB: [], peakMiB: [], samples };
      return { available: true, baselineMiB: baseline, peakMiB: peak, samples };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Labels and backend choice
// ---------------------------------------------------------------------------------------------

/**
 * One line for the UI, e.g. "llvmpipe (Mesa 25.0.7, software — CPU emulating a GPU)" or
 * "NVIDIA H100 80GB HBM3 (hardware, Vulkan)". Software is spelled out because lavapipe
 * timings would otherwise be read as GPU timings.
 */
export function adapterLabel(a: WebGpuAdapter): string {
  // Dawn's description is "<driver name>: <driver info> <version>", e.g. "llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1".
  const colon = a.description.indexOf(':');
  const driverName = colon > 0 ? a.description.slice(0, colon).trim() : '';
  if (a.software) {
    const mesa = /Mesa (\d+(?:\.\d+)*)/.exec(a.description)?.[1];
    const name = a.displayName ?? (driverName || a.device || a.vendor || 'unknown adapter');
    return `${name} (${mesa ? `Mesa ${mesa}, ` : ''}software — CPU emulating a GPU)`;
  }
  const name = a.displayName ?? (a.device || driverName || a.description || a.vendor || 'unknown adapter');
  return `${name} (hardware${a.backend === 'unknown' ? '' : `, ${a.backend}`})`;
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

const STATUS_ORDER: Record<BackendCandidate['status'], number> = { preferred: 0, runnable: 1, unknown: 2, unavailable: 3 };

/**
 * Runtime backends in the order a benchmark should try them, each with its reason.
 * ORT WebGPU on a hardware adapter beats ORT CPU; ORT WebGPU on lavapipe is listed after
 * ORT CPU (it runs, and validates WebGPU graphs, but is 10–100× slower: RUNTIMES.md §1).
 */
export function pickBestBackend(report: DeviceReport): BackendCandidate[] {
  const out: BackendCandidate[] = [];
  const ort = report.onnxruntime;
  const ep = (name: string): OrtBackend | undefined => ort.backends.find((b) => b.name === name);
  const cpu = ep('cpu');
  const webgpu = ep('webgpu');
  const hardware = report.webgpu.adapters.filter((a) => !a.software);
  const software = report.webgpu.adapters.filter((a) => a.software);
  const mib = (bytes: number): string => (Number.isFinite(bytes) ? `${Math.round(bytes / 2 ** 20)} MiB` : 'unknown');

  if (!ort.available) {
    out.push({ backend: 'ort-cpu', executionProvider: 'cpu', status: 'unavailable', reason: ort.reason ?? 'onnxruntime-node is not available' });
    return out;
  }

  if (webgpu?.bundled) {
    for (const a of hardware) {
      let reason = `hardware WebGPU adapter; tensors must stay under maxStorageBufferBindingSize = ${mib(a.limits.maxStorageBufferBindingSize)}`;
      if (software.length > 0) {
        // ORT's own Dawn picks the adapter itself; pinning the Vulkan ICD is the only lever (RUNTIMES.md §8).
        reason += `; a software adapter is also present and ORT cannot choose: set VK_ICD_FILENAMES to the ${a.vendor || 'GPU'} ICD json to be sure`;
      }
      out.push({ backend: 'ort-webgpu', executionProvider: 'webgpu', status: 'preferred', adapter: adapterLabel(a), reason });
    }
  }

  if (cpu) {
    out.push({
      backend: 'ort-cpu',
      executionProvider: 'cpu',
      status: hardware.length > 0 && webgpu?.bundled ? 'runnable' : 'preferred',
      reason: `${report.host.cores} threads on ${report.host.cpuModel}`,
    });
  } else {
    out.push({ backend: 'ort-cpu', executionProvider: 'cpu', status: 'unavailable', reason: 'onnxruntime-node lists no cpu backend' });
  }

  if (webgpu?.bundled) {
    for (const a of software) {
      out.push({
        backend: 'ort-webgpu',
        executionProvider: 'webgpu',
        status: 'runnable',
        adapter: adapterLabel(a),
        reason: `software adapter: correct results but slower than ORT CPU (lavapipe measured 10–100× slower); use it to validate WebGPU graphs; binding limit ${mib(a.limits.maxStorageBufferBindingSize)}`,
      });
    }
    if (report.webgpu.adapters.length === 0) {
      out.push({
        backend: 'ort-webgpu',
        executionProvider: 'webgpu',
        status: report.webgpu.available === false && /VITLENS_NO_WEBGPU|not probed|could not be loaded/.test(report.webgpu.reason ?? '') ? 'unknown' : 'unavailable',
        reason: `no WebGPU adapter known (${report.webgpu.reason ?? 'none found'}); without one ORT throws "Failed to get a WebGPU adapter"`,
      });
    }
  } else {
    out.push({ backend: 'ort-webgpu', executionProvider: 'webgpu', status: 'unavailable', reason: webgpu ? (webgpu.reason ?? 'not bundled') : 'this onnxruntime-node has no WebGPU EP' });
  }

  for (const name of ['cuda', 'tensorrt'] as const) {
    const b = ep(name);
    if (!b) continue;
    const backend = name === 'cuda' ? 'ort-cuda' : 'ort-tensorrt';
    if (!b.installed) {
      out.push({ backend, executionProvider: name, status: 'unavailable', reason: b.reason ?? 'not installed' });
    } else if (!report.nvidia.available) {
      out.push({ backend, executionProvider: name, status: 'unavailable', reason: `EP installed but no NVIDIA GPU (${report.nvidia.reason ?? 'none'})` });
    } else {
      // Whether the CUDA libraries load is only known when a session is created.
      out.push({ backend, executionProvider: name, status: 'unknown', reason: b.reason ?? 'EP installed; needs CUDA libraries at run time' });
    }
  }

  // Stable sort keeps the within-status order above (hardware WebGPU, CPU, software WebGPU).
  return out.sort((x, y) => STATUS_ORDER[x.status] - STATUS_ORDER[y.status]);
}
