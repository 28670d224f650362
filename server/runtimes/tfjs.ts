/**
 * TensorFlow.js runtime for the engine's op-set Graph: the same nodes the reference
 * interpreter evaluates, lowered to tfjs ops on webgpu (Dawn), wasm, cpu, or tfjs-node
 * when its native binding is present.
 *
 * Nothing tfjs is loaded until a tfjs backend is asked for: the language server and CLI
 * import this module eagerly, and tfjs plus Dawn cost hundreds of ms and tens of MB.
 *
 * Bundling: `webgpu` (ESM-only, with a native dawn.node found via import.meta.url) is
 * imported through a Function-built `import()` of its resolved path, so it is never
 * bundled; a plain `import('webgpu')` works only while 'webgpu' is marked external (else
 * esbuild inlines it with an empty import.meta). tfjs-node(-gpu) are required by computed
 * name because they are optional and usually absent. `@tensorflow/*` may be bundled
 * (+5 MB) or external; either way node_modules must ship, for dawn.node and for the wasm
 * binaries, which are located through require.resolve.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TfNamespace from '@tensorflow/tfjs';
import { numel } from '../core/shape';
import { liveNodes } from '../core/engine/cost';
import { operandsOf, type BinaryFn, type Graph, type Node, type Tensor, type UnaryFn } from '../core/engine/graph';
import type { WeightSource } from '../core/engine/lowerings/reference';

export type Tf = typeof TfNamespace;
type TfTensor = TfNamespace.Tensor;

export type TfjsBackendName = 'tfjs-node-gpu' | 'tfjs-node' | 'webgpu' | 'wasm' | 'cpu';
export const TFJS_BACKENDS: readonly TfjsBackendName[] = ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu'];

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

export interface TfjsInfo {
  backend: TfjsBackendName;
  /** The name tfjs registers the backend under ('tensorflow' for tfjs-node and tfjs-node-gpu). */
  tfBackend: string;
  tfjsVersion: string;
  adapter?: TfjsAdapterInfo;
  wasm?: { simd: boolean; threads: number };
}

export interface TfjsProbe {
  name: TfjsBackendName;
  available: boolean;
  reason?: string;
  adapter?: TfjsAdapterInfo;
}

export interface TfjsLoaded {
  tf: Tf;
  backend: TfjsBackendName;
  info: TfjsInfo;
}

const TF_BACKEND_NAME: Record<TfjsBackendName, string> = {
  'tfjs-node-gpu': 'tensorflow',
  'tfjs-node': 'tensorflow',
  webgpu: 'webgpu',
  wasm: 'wasm',
  cpu: 'cpu',
};

const NODE_PACKAGE: Record<'tfjs-node-gpu' | 'tfjs-node', string> = {
  'tfjs-node-gpu': '@tensorflow/tfjs-node-gpu',
  'tfjs-node': '@tensorflow/tfjs-node',
};

// ---------------------------------------------------------------------------------------
// Loading

/** require() with a computed name, so bundlers leave optional packages alone. */
function requireOptional(name: string): unknown {
  return require(name);
}

function resolvable(name: string): string | undefined {
  try {
    return require.resolve(name);
  } catch {
    return undefined;
  }
}

// A dynamic import that esbuild cannot see: node 20 cannot require() an ES module, and a
// bundled copy of `webgpu` would look for dawn.node relative to the bundle.
const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

let tfModule: Tf | undefined;

function loadTfCore(): Tf {
  tfModule ??= require('@tensorflow/tfjs') as Tf;
  return tfModule;
}

/** Minimal structural types for the WebGPU objects used here (lib.dom has none). */
interface GpuAdapterLike {
  readonly features: { has(name: string): boolean };
  readonly limits: Record<string, number>;
  readonly info?: Record<string, unknown>;
  readonly isFallbackAdapter?: boolean;
  requestDevice(descriptor?: unknown): Promise<GpuDeviceLike>;
}
interface GpuDeviceLike {
  readonly limits: Record<string, number>;
  readonly queue: { onSubmittedWorkDone(): Promise<void> };
  /** Resolves once, when the device is lost: destroy(), a driver reset, an adapter that went away. */
  readonly lost: Promise<{ reason: string; message: string }>;
  destroy(): void;
  onuncapturederror: ((event: { error: { message: string } }) => void) | null;
}
interface GpuLike {
  requestAdapter(options?: unknown): Promise<GpuAdapterLike | null>;
}

interface DawnState {
  gpu: GpuLike;
  /** How navigator was before we installed `gpu`, to undo it in shutdownTfjs. */
  restore: () => void;
}
let dawn: DawnState | undefined;
let webgpuDevice: GpuDeviceLike | undefined;
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
    super(`the WebGPU device (${adapter || 'unknown adapter'}) was lost (reason: ${reason})${detail ? `: ${detail}` : ''}; the GPU driver reset or the adapter went away`);
  }
}

/** The loss of the current tfjs WebGPU device, once device.lost has resolved (not for shutdownTfjs's own destroy). */
let webgpuLoss: WebGpuDeviceLostError | undefined;
/** Pending reads waiting on the current device, rejected at once when it is lost. */
const webgpuLossWaiters = new Set<(e: WebGpuDeviceLostError) => void>();

function watchDeviceLoss(device: GpuDeviceLike, adapter: string): void {
  void device.lost.then(
    (info) => {
      // shutdownTfjs forgets its device before destroying it: that loss is intended.
      if (webgpuDevice !== device) return;
      webgpuLoss = new WebGpuDeviceLostError(adapter, String(info?.reason ?? 'unknown'), String(info?.message ?? '').trim());
      for (const reject of webgpuLossWaiters) reject(webgpuLoss);
      webgpuLossWaiters.clear();
    },
    () => undefined,
  );
}

/** How long a failed read waits for device.lost to resolve before its own error is reported. */
const LOSS_SETTLE_MS = 200;

/**
 * `p`, or a WebGpuDeviceLostError as soon as the device is lost, whichever comes first: a read
 * that waits on a lost device (mapAsync may never settle) cannot hang its caller. A failure of
 * `p` itself that comes with, or just before, a loss (Dawn rejects pending maps with a bare
 * AbortError) is reported as the loss.
 */
async function untilDeviceLost<T>(p: Promise<T>): Promise<T> {
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

async function dawnGpu(): Promise<GpuLike> {
  if (dawn) return dawn.gpu;
  const entry = resolvable('webgpu');
  if (!entry) throw new Error("the 'webgpu' package (Dawn for node) is not installed");
  const mod = (await importEsm(pathToFileURL(entry).href)) as { create(flags: string[]): GpuLike; globals: object };
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

const GPU_OPTIONS = { powerPreference: 'high-performance' };

function adapterReport(adapter: GpuAdapterLike): TfjsAdapterInfo {
  const info = adapter.info ?? {};
  const str = (k: string) => (typeof info[k] === 'string' ? (info[k] as string) : '');
  return {
    vendor: str('vendor'),
    architecture: str('architecture'),
    device: str('device'),
    description: str('description'),
    isFallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false),
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize ?? 0,
    maxBufferSize: adapter.limits.maxBufferSize ?? 0,
    hasTimestampQuery: adapter.features.has('timestamp-query'),
  };
}

const NO_ADAPTER =
  'Dawn found no WebGPU adapter (no Vulkan/Metal/D3D12 driver is usable; on Linux without a GPU, Mesa lavapipe provides a software one)';

/**
 * Registers our own 'webgpu' factory (the one tfjs-backend-webgpu installs at import
 * time is deleted by removeBackend, and the package is never re-evaluated), keeping the
 * device so that shutdownTfjs can destroy it and validation errors can be reported.
 */
function registerWebgpuFactory(tf: Tf, pkg: { WebGPUBackend: new (device: unknown, info?: unknown) => TfNamespace.KernelBackend }): void {
  const registered = tf.findBackendFactory('webgpu') != null;
  if (registered && tf.findBackend('webgpu')) return;
  if (registered) tf.removeBackend('webgpu');
  tf.registerBackend(
    'webgpu',
    async () => {
      const gpu = await dawnGpu();
      const adapter = await gpu.requestAdapter(GPU_OPTIONS);
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
      webgpuAdapter = { ...adapterReport(adapter), ...limitsOf(device) };
      webgpuLoss = undefined;
      watchDeviceLoss(device, webgpuAdapter.description || webgpuAdapter.device || webgpuAdapter.vendor);
      return new pkg.WebGPUBackend(device, adapter.info);
    },
    // Low priority: never become the default backend of code that does not ask for it.
    1,
  );
}

function limitsOf(device: GpuDeviceLike): Pick<TfjsAdapterInfo, 'maxStorageBufferBindingSize' | 'maxBufferSize'> {
  return { maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize ?? 0, maxBufferSize: device.limits.maxBufferSize ?? 0 };
}

function loadNodeBinding(backend: 'tfjs-node-gpu' | 'tfjs-node'): Tf {
  const pkg = NODE_PACKAGE[backend];
  if (!resolvable(pkg)) {
    throw new Error(
      `${pkg} is not installed. It is optional: its install script downloads libtensorflow 2.9.1 ` +
        `(${backend === 'tfjs-node-gpu' ? 'the GPU build, which needs CUDA 11.2 and cuDNN 8' : 'the CPU build'}) ` +
        `from storage.googleapis.com, which fails offline. Use the 'webgpu', 'wasm' or 'cpu' backend instead.`,
    );
  }
  try {
    return requireOptional(pkg) as Tf;
  } catch (err) {
    throw new Error(
      `${pkg} is installed but its native binding is missing or does not load: ${(err as Error).message.split('\n')[0]} ` +
        `(tfjs_binding.node and libtensorflow are downloaded when the package is installed; an offline or --ignore-scripts install leaves them out)`,
    );
  }
}

const loads = new Map<TfjsBackendName, Promise<TfjsLoaded>>();

/** Loads tfjs with one backend and makes it the active one. */
export function loadTfjs(backend: TfjsBackendName): Promise<TfjsLoaded> {
  let p = loads.get(backend);
  if (!p) {
    p = loadUncached(backend);
    // A failed load (no adapter, missing binding) may succeed later, e.g. after shutdownTfjs.
    p.catch(() => loads.delete(backend));
    loads.set(backend, p);
  }
  return p.then(async (l) => {
    await activate(l.tf, backend);
    return l;
  });
}

async function activate(tf: Tf, backend: TfjsBackendName): Promise<void> {
  const name = TF_BACKEND_NAME[backend];
  if (tf.getBackend() === name) return;
  if (!(await tf.setBackend(name))) throw new Error(`tfjs could not initialise its '${name}' backend`);
  if (backend === 'cpu') {
    // Its first write prints a "use tfjs-node" notice to stderr, which lands in the
    // language server's log on every start; tfjs-node is not installable here anyway.
    (tf.backend() as { firstUse?: boolean }).firstUse = false;
  }
}

/** Where the wasm backend's binaries are: its package, or beside a bundle that copied them. */
function wasmDir(): string | undefined {
  const entry = resolvable('@tensorflow/tfjs-backend-wasm');
  for (const dir of [entry && path.dirname(entry), __dirname]) {
    if (dir && fs.existsSync(path.join(dir, 'tfjs-backend-wasm-simd.wasm'))) return dir;
  }
  return undefined;
}

function tfjsLoadError(): string | undefined {
  try {
    loadTfCore();
    return undefined;
  } catch (err) {
    return `@tensorflow/tfjs does not load: ${(err as Error).message.split('\n')[0]}`;
  }
}

async function loadUncached(backend: TfjsBackendName): Promise<TfjsLoaded> {
  let tf: Tf;
  const info = (extra: Partial<TfjsInfo> = {}): TfjsInfo => ({ backend, tfBackend: TF_BACKEND_NAME[backend], tfjsVersion: tf.version_core, ...extra });
  switch (backend) {
    case 'tfjs-node-gpu':
    case 'tfjs-node': {
      tf = loadNodeBinding(backend);
      tfModule ??= tf;
      await activate(tf, backend);
      return { tf, backend, info: info() };
    }
    case 'webgpu': {
      // First: the package reads GPUBufferUsage & co. as globals and WebGPUBackend checks navigator.gpu.
      await dawnGpu();
      tf = loadTfCore();
      registerWebgpuFactory(tf, require('@tensorflow/tfjs-backend-webgpu'));
      webgpuErrors = [];
      try {
        await activate(tf, backend);
      } catch (err) {
        // setBackend swallows the factory's error and only warns; name the likely cause.
        const gpu = await dawnGpu();
        if (!(await gpu.requestAdapter(GPU_OPTIONS))) throw new Error(NO_ADAPTER);
        throw err;
      }
      return { tf, backend, info: info({ adapter: webgpuAdapter! }) };
    }
    case 'wasm': {
      tf = loadTfCore();
      const wasm = require('@tensorflow/tfjs-backend-wasm') as { setWasmPaths(prefix: string): void; getThreadsCount(): number };
      const dir = wasmDir();
      // Emscripten looks for the .wasm next to the running script, which is dist/ once bundled.
      if (dir && !tf.findBackend('wasm')) wasm.setWasmPaths(dir + path.sep);
      try {
        await activate(tf, backend);
      } catch (err) {
        throw new Error(`${(err as Error).message}: tfjs-backend-wasm-simd.wasm must be in ${dir ?? `node_modules/@tensorflow/tfjs-backend-wasm/dist or next to ${__filename}`}`);
      }
      const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
      return { tf, backend, info: info({ wasm: { simd, threads: wasm.getThreadsCount() } }) };
    }
    case 'cpu':
      tf = loadTfCore();
      await activate(tf, backend);
      return { tf, backend, info: info() };
  }
}

/** Which backends can run here, without changing tfjs's active backend. */
export async function probeTfjsBackends(): Promise<TfjsProbe[]> {
  const out: TfjsProbe[] = [];
  const tfjsMissing = tfjsLoadError();
  for (const name of TFJS_BACKENDS) {
    switch (name) {
      case 'tfjs-node-gpu':
      case 'tfjs-node':
        try {
          loadNodeBinding(name);
          out.push({ name, available: true });
        } catch (err) {
          out.push({ name, available: false, reason: (err as Error).message });
        }
        break;
      case 'webgpu': {
        let missing = tfjsMissing;
        try {
          require('@tensorflow/tfjs-backend-webgpu');
        } catch (err) {
          missing ??= `@tensorflow/tfjs-backend-webgpu does not load: ${(err as Error).message.split('\n')[0]}`;
        }
        if (missing) {
          out.push({ name, available: false, reason: missing });
          break;
        }
        try {
          if (webgpuAdapter && webgpuDevice) {
            out.push({ name, available: true, adapter: webgpuAdapter });
            break;
          }
          const adapter = await (await dawnGpu()).requestAdapter(GPU_OPTIONS);
          out.push(adapter ? { name, available: true, adapter: adapterReport(adapter) } : { name, available: false, reason: NO_ADAPTER });
        } catch (err) {
          out.push({ name, available: false, reason: (err as Error).message });
        }
        break;
      }
      case 'wasm': {
        let reason = tfjsMissing ?? (typeof WebAssembly !== 'object' ? 'this runtime has no WebAssembly' : undefined);
        try {
          require('@tensorflow/tfjs-backend-wasm');
        } catch (err) {
          reason ??= `@tensorflow/tfjs-backend-wasm does not load: ${(err as Error).message.split('\n')[0]}`;
        }
        reason ??= wasmDir() ? undefined : `tfjs-backend-wasm-simd.wasm is neither in @tensorflow/tfjs-backend-wasm/dist nor next to ${__filename}`;
        out.push(reason ? { name, available: false, reason } : { name, available: true });
        break;
      }
      case 'cpu':
        out.push(tfjsMissing ? { name, available: false, reason: tfjsMissing } : { name, available: true });
        break;
    }
  }
  return out;
}

/**
 * Releases the WebGPU device and Dawn's instance: while navigator.gpu holds Dawn, node
 * never exits (dawn-gpu/node-webgpu README). Other backends need nothing. WebGPU can
 * be loaded again afterwards.
 */
export async function shutdownTfjs(): Promise<void> {
  const tf = tfModule;
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
  loads.delete('webgpu');
  dawn?.restore();
  dawn = undefined;
}

// ---------------------------------------------------------------------------------------
// Graph lowering

const BYTES_PER_FLOAT = 4;

/**
 * Every tensor the lowering of `node` materialises besides its inputs: its output, and
 * for matmul the broadcast operands, for conv2d the NHWC and zero-padded copies.
 */
function materialisedShapes(node: Node, out: Tensor): number[][] {
  const shapes = [[...out.shape]];
  if (node.op === 'matmul') {
    const batch = out.shape.slice(0, -2);
    for (const t of [node.a, node.b]) {
      const own = numel(t.shape.slice(0, -2));
      if (own !== 1 && own !== numel(batch)) shapes.push([...batch, ...t.shape.slice(-2)]);
    }
  } else if (node.op === 'conv2d') {
    const [B, C, H, W] = node.x.shape as [number, number, number, number];
    shapes.push([B, H + 2 * node.pad[0], W + 2 * node.pad[1], C]);
  }
  return shapes;
}

export interface OversizeTensor {
  nodeId: number;
  op: string;
  shape: number[];
  bytes: number;
  limit: number;
}

/** The first tensor of the graph (as lowered here) larger than `limit` bytes, if any. */
export function findOversizeTensor(graph: Graph, outputs: readonly Tensor[], limit: number): OversizeTensor | undefined {
  const live = liveFlags(graph, outputs);
  for (const { node, out } of graph.nodes) {
    if (!live[out.id]) continue;
    for (const shape of materialisedShapes(node, out)) {
      const bytes = numel(shape) * BYTES_PER_FLOAT;
      if (bytes > limit) return { nodeId: out.id, op: describe(node), shape, bytes, limit };
    }
  }
  return undefined;
}

function describe(node: Node): string {
  switch (node.op) {
    case 'input':
      return `input "${node.name}"`;
    case 'weight':
      return `weight "${node.key}"`;
    case 'constant':
      return `constant ${node.label}`;
    case 'binary':
    case 'unary':
    case 'reduce':
      return `${node.op} ${node.fn}`;
    default:
      return node.op;
  }
}

/** liveNodes as a per-node flag. */
function liveFlags(graph: Graph, outputs: readonly Tensor[]): boolean[] {
  const live: boolean[] = new Array<boolean>(graph.nodes.length).fill(false);
  for (const id of liveNodes(graph, outputs)) live[id] = true;
  return live;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

function lowerMatmul(tf: Tf, a: TfTensor, b: TfTensor, node: { a: Tensor; b: Tensor }, out: Tensor): TfTensor {
  const [m, k] = node.a.shape.slice(-2) as [number, number];
  const n = node.b.shape[node.b.shape.length - 1]!;
  const batch = out.shape.slice(0, -2);
  const B = numel(batch);
  const aBatch = numel(node.a.shape.slice(0, -2));
  const bBatch = numel(node.b.shape.slice(0, -2));
  // A shared right operand (x·Wᵀ): fold the batch into rows, one large 2-D product.
  if (bBatch === 1) return tf.reshape(tf.matMul(tf.reshape(a, [aBatch * m, k]), tf.reshape(b, [k, n])), out.shape as number[]);
  // tfjs BatchMatMul broadcasts by batch index modulo each operand's batch size, which is
  // right only when an operand's batch is 1 or the full batch; anything else is expanded.
  const to3d = (t: TfTensor, own: readonly number[], rows: number, cols: number): TfTensor => {
    const size = numel(own.slice(0, -2));
    if (size === 1 || size === B) return tf.reshape(t, [size, rows, cols]);
    const padded = [...new Array<number>(batch.length - (own.length - 2)).fill(1), ...own];
    return tf.reshape(tf.broadcastTo(tf.reshape(t, padded), [...batch, rows, cols]), [B, rows, cols]);
  };
  const y = tf.matMul(to3d(a, node.a.shape, m, k), to3d(b, node.b.shape, k, n));
  return tf.reshape(y, out.shape as number[]);
}

function lowerConv2d(tf: Tf, x: TfTensor, w: TfTensor, bias: TfTensor | null, node: Extract<Node, { op: 'conv2d' }>): TfTensor {
  const [, C] = node.x.shape as [number, number];
  const [Co, Cg, kh, kw] = node.w.shape as [number, number, number, number];
  const [ph, pw] = node.pad;
  // tfjs convolves NHWC with [kh, kw, in, out] filters; explicit zero padding then 'valid'
  // keeps PyTorch's floor((H + 2p − k)/s) + 1 output size on every backend.
  let xh = tf.transpose(x, [0, 2, 3, 1]) as TfNamespace.Tensor4D;
  if (ph || pw) xh = tf.pad(xh, [[0, 0], [ph, ph], [pw, pw], [0, 0]]);
  const stride = node.stride;
  let y: TfNamespace.Tensor4D;
  if (node.groups === 1) {
    y = tf.conv2d(xh, tf.transpose(w, [2, 3, 1, 0]) as TfNamespace.Tensor4D, stride, 'valid');
  } else if (node.groups === C && Cg === 1) {
    // Depthwise with multiplier Co/C: output channel c·mult + j, as PyTorch's grouping.
    const filter = tf.transpose(tf.reshape(w, [C, Co / C, kh, kw]), [2, 3, 0, 1]) as TfNamespace.Tensor4D;
    y = tf.depthwiseConv2d(xh, filter, stride, 'valid');
  } else {
    const perOut = Co / node.groups;
    const parts: TfNamespace.Tensor4D[] = [];
    for (let g = 0; g < node.groups; g++) {
      const xg = tf.slice(xh, [0, 0, 0, g * Cg], [-1, -1, -1, Cg]);
      const wg = tf.transpose(tf.slice(w, [g * perOut, 0, 0, 0], [perOut, -1, -1, -1]), [2, 3, 1, 0]) as TfNamespace.Tensor4D;
      parts.push(tf.conv2d(xg, wg, stride, 'valid'));
    }
    y = tf.concat(parts, 3);
  }
  if (bias) y = tf.add(y, bias);
  return tf.transpose(y, [0, 3, 1, 2]);
}

function binary(tf: Tf, fn: BinaryFn, a: TfTensor, b: TfTensor): TfTensor {
  switch (fn) {
    case 'add':
      return tf.add(a, b);
    case 'sub':
      return tf.sub(a, b);
    case 'mul':
      return tf.mul(a, b);
    case 'div':
      return tf.div(a, b);
    case 'greater':
      return tf.cast(tf.greater(a, b), 'float32');
  }
}

function unary(tf: Tf, fn: UnaryFn, a: TfTensor): TfTensor {
  switch (fn) {
    case 'exp':
      return tf.exp(a);
    case 'erf':
      return tf.erf(a);
    case 'tanh':
      return tf.tanh(a);
    case 'sqrt':
      return tf.sqrt(a);
    case 'neg':
      return tf.neg(a);
    case 'square':
      return tf.square(a);
    case 'reciprocal':
      return tf.reciprocal(a);
    case 'abs':
      return tf.abs(a);
    case 'relu':
      return tf.relu(a);
  }
}

function lower(tf: Tf, node: Node, out: Tensor, v: (t: Tensor) => TfTensor): TfTensor {
  const shape = out.shape as number[];
  switch (node.op) {
    case 'input':
    case 'weight':
    case 'constant':
      throw new Error(`${node.op} nodes are materialised, not lowered`);
    case 'binary':
      return binary(tf, node.fn, v(node.a), v(node.b));
    case 'unary':
      return unary(tf, node.fn, v(node.a));
    case 'scale':
      return tf.mul(v(node.a), tf.scalar(node.k, 'float32'));
    case 'matmul':
      return lowerMatmul(tf, v(node.a), v(node.b), node, out);
    case 'reduce': {
      const a = v(node.a);
      if (node.fn === 'max') return tf.max(a, node.axis, true);
      return tf.sum(node.fn === 'sumSquares' ? tf.square(a) : a, node.axis, true);
    }
    case 'transpose':
      return tf.transpose(v(node.a), node.perm);
    case 'reshape':
      return tf.reshape(v(node.a), shape);
    case 'softmax':
      return tf.softmax(v(node.a), -1);
    case 'layerNorm': {
      const a = v(node.a);
      const mean = tf.mean(a, -1, true);
      const centred = tf.sub(a, mean);
      const variance = tf.mean(tf.square(centred), -1, true);
      const inv = tf.rsqrt(tf.add(variance, tf.scalar(node.eps, 'float32')));
      return tf.add(tf.mul(tf.mul(centred, inv), v(node.weight)), v(node.bias));
    }
    case 'gelu': {
      const x = v(node.a);
      const c = (k: number) => tf.scalar(k, 'float32');
      // x·x·x rather than pow: pow of a negative base is NaN on some backends.
      const inner =
        node.approximation === 'erf'
          ? tf.erf(tf.mul(x, c(Math.SQRT1_2)))
          : tf.tanh(tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), c(0.044715))), c(SQRT_2_OVER_PI)));
      return tf.mul(tf.mul(x, c(0.5)), tf.add(inner, c(1)));
    }
    case 'conv2d':
      return lowerConv2d(tf, v(node.x), v(node.w), node.bias ? v(node.bias) : null, node);
    case 'slice': {
      const begin = node.a.shape.map((_, i) => (i === node.axis ? node.start : 0));
      const size = node.a.shape.map((d, i) => (i === node.axis ? node.end - node.start : d));
      return tf.slice(v(node.a), begin, size);
    }
    case 'concat':
      return tf.concat(node.parts.map(v), node.axis);
  }
}

// ---------------------------------------------------------------------------------------
// Executor

export interface TfjsOutput {
  shape: number[];
  data: Float32Array;
}

export interface TfjsMemory {
  numTensors: number;
  numBytes: number;
  /** webgpu only: bytes in GPU buffers of live tensors, and allocated including tfjs's pool of freed buffers (tfjs-backend-webgpu's names). */
  numBytesInGPU?: number;
  numBytesAllocatedInGPU?: number;
}

export interface TfjsProfiledRun {
  outputs: TfjsOutput[];
  /** tfjs's peak of live tensor bytes during the run, including this executor's weights and anything else alive in tfjs. */
  peakBytes: number;
  /** Live tensor bytes when the run started (weights, constants, other executors). */
  baselineBytes: number;
  /** Sum of per-kernel times: GPU timestamps on webgpu, wall time per kernel elsewhere. */
  kernelMs?: number;
  memory: TfjsMemory;
}

export interface TfjsRunOptions {
  profile?: boolean;
}

function snapshot(tf: Tf): TfjsMemory {
  const m = tf.memory() as TfNamespace.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
  const r: TfjsMemory = { numTensors: m.numTensors, numBytes: m.numBytes };
  if (m.numBytesInGPU !== undefined) r.numBytesInGPU = m.numBytesInGPU;
  if (m.numBytesAllocatedInGPU !== undefined) r.numBytesAllocatedInGPU = m.numBytesAllocatedInGPU;
  return r;
}

/**
 * A graph bound to weights on one tfjs backend. Weights, constants and everything computed
 * from them alone (e.g. the transposed Linear weights) are uploaded once, at create.
 */
export class TfjsExecutor {
  private disposed = false;

  private constructor(
    private readonly tf: Tf,
    readonly backend: TfjsBackendName,
    readonly info: TfjsInfo,
    private readonly graph: Graph,
    private readonly outputs: readonly Tensor[],
    /** Tensors computed at create and kept, by node id. */
    private readonly persistent: Map<number, TfTensor>,
    /** Node ids evaluated per run, in graph order. */
    private readonly plan: number[],
    /** For each node id, the plan index after which it is no longer needed. */
    private readonly lastUse: Int32Array,
  ) {}

  static async create(graph: Graph, outputs: Tensor[], weights: WeightSource, opts: { backend: TfjsBackendName }): Promise<TfjsExecutor> {
    const { tf, info } = await loadTfjs(opts.backend);
    if (opts.backend === 'webgpu') {
      if (webgpuLoss) throw webgpuLoss;
      // Above maxStorageBufferBindingSize tfjs-webgpu's kernels fail validation and read back zeros.
      const limit = Math.min(info.adapter?.maxStorageBufferBindingSize ?? Infinity, info.adapter?.maxBufferSize ?? Infinity);
      const big = findOversizeTensor(graph, outputs, limit);
      if (big) {
        throw new Error(
          `webgpu: node ${big.nodeId} (${big.op}) needs a tensor of shape [${big.shape}] = ${big.bytes} bytes, ` +
            `above the adapter's maxStorageBufferBindingSize of ${big.limit} bytes; tfjs-webgpu would return zeros. ` +
            `Use a smaller input or the wasm/cpu backend.`,
        );
      }
    }
    const live = liveFlags(graph, outputs);
    const isStatic: boolean[] = [];
    for (const { node, out } of graph.nodes) {
      isStatic[out.id] = node.op === 'weight' || node.op === 'constant' || (node.op !== 'input' && operandsOf(node).every((t) => isStatic[t.id]));
    }
    // Keep a static node if a per-run node (or the caller) reads it.
    const keep = new Set<number>();
    for (const t of outputs) if (isStatic[t.id]) keep.add(t.id);
    for (const { node, out } of graph.nodes) {
      if (!live[out.id] || isStatic[out.id]) continue;
      for (const t of operandsOf(node)) if (isStatic[t.id]) keep.add(t.id);
    }

    const persistent = new Map<number, TfTensor>();
    tf.tidy(() => {
      const vals = new Map<number, TfTensor>();
      for (const { node, out } of graph.nodes) {
        if (!live[out.id] || !isStatic[out.id]) continue;
        let t: TfTensor;
        if (node.op === 'weight') {
          const w = weights.get(node.key);
          if (!w) throw new Error(`weight "${node.key}" is missing`);
          if (numel(w.shape) !== numel(out.shape)) throw new Error(`weight "${node.key}": shape [${w.shape}], expected [${out.shape}]`);
          t = tf.tensor(Float32Array.from(w.data), out.shape as number[], 'float32');
        } else if (node.op === 'constant') {
          t = tf.tensor(Float32Array.from(node.data), out.shape as number[], 'float32');
        } else {
          t = lower(tf, node, out, (x) => vals.get(x.id)!);
        }
        vals.set(out.id, t);
        if (keep.has(out.id)) persistent.set(out.id, tf.keep(t));
      }
    });

    const plan: number[] = [];
    const lastUse = new Int32Array(graph.nodes.length).fill(-1);
    for (const { node, out } of graph.nodes) {
      if (!live[out.id] || isStatic[out.id]) continue;
      for (const t of operandsOf(node)) lastUse[t.id] = plan.length;
      plan.push(out.id);
    }
    // Outputs outlive the run's tidy.
    for (const t of outputs) lastUse[t.id] = 0x7fffffff;
    return new TfjsExecutor(tf, opts.backend, info, graph, outputs, persistent, plan, lastUse);
  }

  run(inputs: Record<string, Float32Array>): Promise<TfjsOutput[]>;
  run(inputs: Record<string, Float32Array>, opts: TfjsRunOptions & { profile: true }): Promise<TfjsProfiledRun>;
  run(inputs: Record<string, Float32Array>, opts?: TfjsRunOptions): Promise<TfjsOutput[] | TfjsProfiledRun>;
  async run(inputs: Record<string, Float32Array>, opts: TfjsRunOptions = {}): Promise<TfjsOutput[] | TfjsProfiledRun> {
    if (this.disposed) throw new Error('TfjsExecutor: run after dispose');
    const tf = this.tf;
    // tfjs has one active backend per process; executors on different backends take turns.
    await activate(tf, this.backend);
    const webgpu = this.backend === 'webgpu';
    if (webgpu) {
      if (webgpuLoss) throw webgpuLoss;
      webgpuErrors = [];
    }
    // On webgpu, a lost device fails the run at once, whatever it was waiting on (see untilDeviceLost).
    const bounded = <T>(p: Promise<T>): Promise<T> => (webgpu ? untilDeviceLost(p) : p);
    const baselineBytes = tf.memory().numBytes;
    const compute = () => tf.tidy(() => this.evaluate(inputs));
    let results: TfTensor[];
    let profile: Awaited<ReturnType<Tf['profile']>> | undefined;
    if (opts.profile) {
      profile = await bounded(tf.profile(compute));
      results = profile.result as TfTensor[];
    } else {
      results = compute();
    }
    let outputs: TfjsOutput[];
    try {
      outputs = await bounded(
        Promise.all(results.map(async (t, i) => ({ shape: [...this.outputs[i]!.shape], data: Float32Array.from((await t.data()) as Float32Array) }))),
      );
    } finally {
      for (const t of results) t.dispose();
    }
    // A loss during the run can also leave outputs that read back as zeros.
    if (webgpu && webgpuLoss) throw webgpuLoss;
    if (webgpu && webgpuErrors.length) {
      const errors = webgpuErrors;
      webgpuErrors = [];
      throw new Error(`webgpu: the device reported ${errors.length} error(s) during the run, so its outputs are invalid: ${errors[0]}`);
    }
    if (!profile) return outputs;
    const times = profile.kernels.map((k) => k.kernelTimeMs).filter((ms): ms is number => typeof ms === 'number');
    const r: TfjsProfiledRun = { outputs, peakBytes: profile.peakBytes, baselineBytes, memory: snapshot(tf) };
    if (times.length) r.kernelMs = times.reduce((a, b) => a + b, 0);
    return r;
  }

  private evaluate(inputs: Record<string, Float32Array>): TfTensor[] {
    const tf = this.tf;
    const vals = new Map<number, TfTensor>();
    const get = (t: Tensor): TfTensor => {
      const x = vals.get(t.id) ?? this.persistent.get(t.id);
      if (!x) throw new Error(`tfjs: node ${t.id} used before it was computed`);
      return x;
    };
    for (let step = 0; step < this.plan.length; step++) {
      const id = this.plan[step]!;
      const { node, out } = this.graph.nodes[id]!;
      let t: TfTensor;
      if (node.op === 'input') {
        const x = inputs[node.name];
        const n = numel(out.shape);
        if (!x || x.length !== n) throw new Error(`input "${node.name}": expected ${n} values, got ${x?.length ?? 'none'}`);
        t = tf.tensor(x, out.shape as number[], 'float32');
      } else {
        t = lower(tf, node, out, get);
        // Free what this step consumed last, so the run's peak is that of the schedule, not of the whole graph.
        for (const inp of operandsOf(node)) {
          if (this.lastUse[inp.id] === step && !this.persistent.has(inp.id)) {
            vals.get(inp.id)?.dispose();
            vals.delete(inp.id);
          }
        }
      }
      vals.set(id, t);
    }
    // A persistent output is cloned: the caller's copy is disposed after reading.
    return this.outputs.map((t) => (this.persistent.has(t.id) ? tf.clone(get(t)) : get(t)));
  }

  /** tfjs's memory counters now (all live tensors of the process, not just this executor's). */
  memory(): TfjsMemory {
    return snapshot(this.tf);
  }

  /** Bytes held by this executor between runs (weights, constants and what was folded from them). */
  get persistentBytes(): number {
    let n = 0;
    for (const t of this.persistent.values()) n += t.size * BYTES_PER_FLOAT;
    return n;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.persistent.values()) t.dispose();
    this.persistent.clear();
  }
}
