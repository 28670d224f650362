/**
 * The device behind TF.js's webgpu backend, from creation to release: Dawn installed as
 * navigator.gpu, the factory that requests the device, the validation errors Dawn only prints,
 * and the loss of the device, which fails runs at once instead of letting them hang.
 */
import type * as TfNamespace from '@tensorflow/tfjs';
import type { WebGpuAdapter } from '../../../protocol/devices';
import type { Tf } from '../../core/engine/lowerings/tfjs';
import { DAWN_PACKAGE, adapterReport, importDawn, type Gpu, type GpuAdapter, type GpuDevice } from '../dawn';
import { resolvable } from '../external';

export interface TfjsAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software adapters (lavapipe, SwiftShader): label them so, their timings are not a GPU's. */
  isFallbackAdapter: boolean;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  hasTimestampQuery: boolean;
}

interface DawnState {
  gpu: Gpu;
  /** How navigator was before we installed `gpu`, to undo it in releaseWebgpu. */
  restore: () => void;
}
let dawn: DawnState | undefined;
let webgpuDevice: GpuDevice | undefined;
let webgpuAdapter: TfjsAdapterInfo | undefined;
let webgpuErrors: string[] = [];

/**
 * A lost WebGPU device (driver reset, GPU unplugged or hung, device.destroy()): every later
 * submission on it fails, and a pending buffer read may reject with a bare AbortError or, on
 * some drivers, never settle. Runs on the tfjs webgpu backend check for a loss and race their
 * reads against it, so they fail with this error instead of hanging or returning garbage.
 */
export class WebGpuDeviceLostError extends Error {
  override readonly name = 'WebGpuDeviceLostError';
  constructor(
    /** The adapter's description as Dawn gives it (e.g. "llvmpipe: Mesa 25.0.7 …"). */
    readonly adapter: string,
    /** GPUDeviceLostInfo.reason: 'destroyed' or 'unknown'. */
    readonly reason: string,
    /** GPUDeviceLostInfo.message, as the driver worded it. */
    readonly detail: string,
  ) {
    super(
      `the WebGPU device (${adapter || 'unknown adapter'}) was lost (reason: ${reason})${detail ? `: ${detail}` : ''}; the GPU driver reset or the adapter went away`,
    );
  }
}

/** The loss of the current tfjs WebGPU device, once device.lost has resolved (not for releaseWebgpu's own destroy). */
let webgpuLoss: WebGpuDeviceLostError | undefined;
/** Pending reads waiting on the current device, rejected at once when it is lost. */
const webgpuLossWaiters = new Set<(e: WebGpuDeviceLostError) => void>();

function watchDeviceLoss(device: GpuDevice, adapter: string): void {
  void device.lost.then(
    (info) => {
      // releaseWebgpu forgets its device before destroying it: that loss is intended.
      if (webgpuDevice !== device) return;
      webgpuLoss = new WebGpuDeviceLostError(
        adapter,
        String(info?.reason ?? 'unknown'),
        String(info?.message ?? '').trim(),
      );
      for (const reject of webgpuLossWaiters) reject(webgpuLoss);
      webgpuLossWaiters.clear();
    },
    () => undefined,
  );
}

/** Throws the current device's loss, if it was lost. */
export function throwIfDeviceLost(): void {
  if (webgpuLoss) throw webgpuLoss;
}

/** How long a failed read waits for device.lost to resolve before its own error is reported. */
const LOSS_SETTLE_MS = 200;

/**
 * `p`, or a WebGpuDeviceLostError as soon as the device is lost, whichever comes first: a read
 * that waits on a lost device (mapAsync may never settle) cannot hang its caller. A failure of
 * `p` itself that comes with, or just before, a loss (Dawn rejects pending maps with a bare
 * AbortError) is reported as the loss.
 */
export async function untilDeviceLost<T>(p: Promise<T>): Promise<T> {
  if (webgpuLoss) throw webgpuLoss;
  let waiter!: (e: WebGpuDeviceLostError) => void;
  const lost = new Promise<never>((_, reject) => (waiter = reject));
  webgpuLossWaiters.add(waiter);
  try {
    return await Promise.race([p, lost]);
  } catch (e) {
    if (e instanceof WebGpuDeviceLostError) throw e;
    // device.lost may resolve a moment after the rejected map: give it that moment.
    if (!webgpuLoss) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([lost, new Promise((r) => (timer = setTimeout(r, LOSS_SETTLE_MS)))]).catch(() => undefined);
      clearTimeout(timer);
    }
    throw webgpuLoss ?? e;
  } finally {
    webgpuLossWaiters.delete(waiter);
    lost.catch(() => undefined);
  }
}

/** Forgets the validation errors collected so far (before a run). */
export function clearWebgpuErrors(): void {
  webgpuErrors = [];
}

/** The validation errors Dawn reported since the last clear or take, and forgets them. */
export function takeWebgpuErrors(): string[] {
  const errors = webgpuErrors;
  webgpuErrors = [];
  return errors;
}

/** Dawn's GPU, installed as navigator.gpu with Dawn's globals, as tfjs-backend-webgpu expects. */
export async function installDawn(): Promise<Gpu> {
  if (dawn) return dawn.gpu;
  if (!resolvable(DAWN_PACKAGE)) throw new Error("the 'webgpu' package (Dawn for node) is not installed");
  const mod = await importDawn();
  // tfjs-backend-webgpu reads GPUBufferUsage, GPUMapMode, … as globals.
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([]);
  const g = globalThis as { navigator?: { gpu?: unknown } };
  const prior = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  let restore: () => void;
  if (g.navigator && Object.isExtensible(g.navigator) && !('gpu' in g.navigator)) {
    const nav = g.navigator;
    Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true });
    restore = () => void delete nav.gpu;
  } else {
    // Node 20 has no navigator; node ≥ 21 has a read-only one that assignment cannot replace.
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    restore = () => {
      delete g.navigator;
      if (prior) Object.defineProperty(globalThis, 'navigator', prior);
    };
  }
  dawn = { gpu, restore };
  return gpu;
}

/** The adapter tfjs-backend-webgpu's own factory would use, or null when Dawn finds none. */
export async function requestWebgpuAdapter(): Promise<GpuAdapter | null> {
  return (await installDawn()).requestAdapter({ powerPreference: 'high-performance' });
}

export const NO_ADAPTER =
  'Dawn found no WebGPU adapter (no Vulkan/Metal/D3D12 driver is usable; on Linux without a GPU, Mesa lavapipe provides a software one)';

/** The fields of the device report's adapter that TF.js runs care about. */
function tfjsAdapterInfo(a: WebGpuAdapter): TfjsAdapterInfo {
  // A limit Dawn does not report is NaN in the device report; tfjs has always said 0.
  const limit = (v: number) => (Number.isNaN(v) ? 0 : v);
  return {
    vendor: a.vendor,
    architecture: a.architecture,
    device: a.device,
    description: a.description,
    isFallbackAdapter: a.isFallbackAdapter,
    maxStorageBufferBindingSize: limit(a.limits.maxStorageBufferBindingSize),
    maxBufferSize: limit(a.limits.maxBufferSize),
    hasTimestampQuery: a.features.includes('timestamp-query'),
  };
}

function describeAdapter(adapter: GpuAdapter): TfjsAdapterInfo {
  return tfjsAdapterInfo(adapterReport(adapter, 'high-performance'));
}

/**
 * The adapter of the live device, or else the one a device would be made on (null when Dawn finds
 * none); never creates a device.
 */
export async function webgpuAdapterInfo(): Promise<TfjsAdapterInfo | null> {
  if (webgpuAdapter && webgpuDevice) return webgpuAdapter;
  const adapter = await requestWebgpuAdapter();
  return adapter ? describeAdapter(adapter) : null;
}

/** The adapter of the device the registered factory made, once it has made one. */
export function currentWebgpuAdapter(): TfjsAdapterInfo | undefined {
  return webgpuAdapter;
}

function limitsOf(device: GpuDevice): Pick<TfjsAdapterInfo, 'maxStorageBufferBindingSize' | 'maxBufferSize'> {
  return {
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize ?? 0,
    maxBufferSize: device.limits.maxBufferSize ?? 0,
  };
}

/**
 * Registers our own 'webgpu' factory (the one tfjs-backend-webgpu installs at import
 * time is deleted by removeBackend, and the package is never re-evaluated), keeping the
 * device so that releaseWebgpu can destroy it and validation errors can be reported.
 */
export function registerWebgpuFactory(
  tf: Tf,
  pkg: { WebGPUBackend: new (device: unknown, info?: unknown) => TfNamespace.KernelBackend },
): void {
  const registered = tf.findBackendFactory('webgpu') != null;
  if (registered && tf.findBackend('webgpu')) return;
  if (registered) tf.removeBackend('webgpu');
  tf.registerBackend(
    'webgpu',
    async () => {
      const adapter = await requestWebgpuAdapter();
      if (!adapter) throw new Error(NO_ADAPTER);
      const l = adapter.limits;
      // The same device request as tfjs-backend-webgpu's own factory.
      const device = await adapter.requestDevice({
        requiredFeatures: ['timestamp-query'].filter((f) => adapter.features.has(f)),
        requiredLimits: {
          maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
          maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
          maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
          maxBufferSize: l.maxBufferSize,
          maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
          maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        },
      });
      // Dawn only prints validation errors (e.g. an oversized binding) and the kernel
      // then yields zeros; collecting them lets run() fail instead.
      device.onuncapturederror = (e) => void webgpuErrors.push(e.error.message);
      webgpuDevice = device;
      webgpuAdapter = { ...describeAdapter(adapter), ...limitsOf(device) };
      webgpuLoss = undefined;
      watchDeviceLoss(device, webgpuAdapter.description || webgpuAdapter.device || webgpuAdapter.vendor);
      return new pkg.WebGPUBackend(device, adapter.info);
    },
    // Low priority: never become the default backend of code that does not ask for it.
    1,
  );
}

/**
 * Releases the WebGPU device and Dawn's instance: while navigator.gpu holds Dawn, node
 * never exits (dawn-gpu/node-webgpu README). WebGPU can be loaded again afterwards.
 */
export async function releaseWebgpu(tf: Tf | undefined): Promise<void> {
  if (tf && tf.findBackendFactory('webgpu')) {
    if (webgpuDevice) await untilDeviceLost(webgpuDevice.queue.onSubmittedWorkDone()).catch(() => undefined);
    tf.removeBackend('webgpu');
  }
  const device = webgpuDevice;
  // Forgotten before it is destroyed, so that its loss is not reported as one (watchDeviceLoss).
  webgpuDevice = undefined;
  webgpuAdapter = undefined;
  webgpuLoss = undefined;
  if (device) {
    device.onuncapturederror = null;
    device.destroy();
  }
  dawn?.restore();
  dawn = undefined;
}
