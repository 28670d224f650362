/**
 * Dawn, WebGPU for node (the `webgpu` package): the one place it is loaded, the few WebGPU
 * members this code uses, and what an adapter reports. The device probe (probe.ts) and the
 * TF.js WebGPU backend (tfjs/webgpu.ts) both go through here.
 *
 * `webgpu` is ESM-only, with a native dawn.node found via import.meta.url: it is imported
 * through importEsm of its resolved path, so it is never bundled (a plain `import('webgpu')`
 * works only while 'webgpu' is marked external, else esbuild inlines it with an empty import.meta).
 */
import { pathToFileURL } from 'node:url';
import type { AdapterLimits, AdapterRequest, WebGpuAdapter } from '../../protocol/devices';
import { importEsm, resolvable } from './external';
import { isSoftwareAdapter } from './labels';

export const DAWN_PACKAGE = 'webgpu';

/** The few dawn.node members used here, typed locally so no DOM/WebGPU lib typing is assumed. */
export interface DawnModule {
  create(flags: string[]): Gpu;
  /** GPUBufferUsage, GPUMapMode, …: what a browser has as globals. */
  globals: object;
}
export interface Gpu {
  requestAdapter(options?: {
    powerPreference?: 'high-performance' | 'low-power';
    forceFallbackAdapter?: boolean;
  }): Promise<GpuAdapter | null>;
}
export interface GpuAdapter {
  readonly info?: {
    vendor?: string;
    architecture?: string;
    device?: string;
    description?: string;
    isFallbackAdapter?: boolean;
  };
  /** Older Dawn builds put the flag on the adapter instead of its info. */
  readonly isFallbackAdapter?: boolean;
  readonly limits: Record<string, number | undefined>;
  readonly features: ReadonlySet<string>;
  requestDevice(descriptor?: unknown): Promise<GpuDevice>;
}
export interface GpuDevice {
  readonly limits: Record<string, number | undefined>;
  readonly queue: { onSubmittedWorkDone(): Promise<void> };
  /** Resolves once, when the device is lost: destroy(), a driver reset, an adapter that went away. */
  readonly lost: Promise<{ reason: string; message: string }>;
  destroy(): void;
  onuncapturederror: ((event: { error: { message: string } }) => void) | null;
}

/**
 * Imports the `webgpu` package. Callers hold what `create()` gives them only as long as they need
 * it: a GPU object that stays referenced (on navigator.gpu, or with a device) keeps node alive.
 */
export async function importDawn(): Promise<DawnModule> {
  // An absolute URL, because importEsm has no referrer of its own to resolve a bare name from;
  // when the package does not resolve, the bare name's import reports the real error.
  const entry = resolvable(DAWN_PACKAGE);
  return (await importEsm(entry ? pathToFileURL(entry).href : DAWN_PACKAGE)) as DawnModule;
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

/** What an adapter says about itself, in the device report's shape. */
export function adapterReport(a: GpuAdapter, requestedAs: AdapterRequest): WebGpuAdapter {
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
