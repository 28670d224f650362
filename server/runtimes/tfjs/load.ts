/**
 * TF.js on this machine: loading it with one backend (tfjs-node(-gpu) when its native binding is
 * present, webgpu on Dawn, wasm, cpu), making that backend the active one, finding out which
 * backends can run here, and shutting down what keeps node alive.
 *
 * Nothing tfjs is loaded until a tfjs backend is asked for: the language server and CLI
 * import this module eagerly, and tfjs plus Dawn cost hundreds of ms and tens of MB.
 *
 * Bundling: tfjs-node(-gpu) are required by computed name because they are optional and usually
 * absent. `@tensorflow/*` may be bundled (+5 MB) or external; either way node_modules must ship,
 * for dawn.node (dawn.ts) and for the wasm binaries, which are located through require.resolve.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DeviceReport } from '../../../protocol/devices';
import type { Tf } from '../../core/engine/lowerings/tfjs';
import { findLibraries } from '../native/find-library';
import { resolvable, runtimeRequire } from '../external';
import {
  NO_ADAPTER,
  clearWebgpuErrors,
  currentWebgpuAdapter,
  installDawn,
  registerWebgpuFactory,
  releaseWebgpu,
  requestWebgpuAdapter,
  webgpuAdapterInfo,
  type TfjsAdapterInfo,
} from './webgpu';

export type TfjsBackendName = 'tfjs-node-gpu' | 'tfjs-node' | 'webgpu' | 'wasm' | 'cpu';
export const TFJS_BACKENDS: readonly TfjsBackendName[] = ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu'];

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

let tfModule: Tf | undefined;

function loadTfCore(): Tf {
  tfModule ??= require('@tensorflow/tfjs') as Tf;
  return tfModule;
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
    // A computed name, so bundlers leave the optional package alone.
    return runtimeRequire(pkg) as Tf;
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

/** Makes `backend` tfjs's active one (tfjs has one per process). */
export async function activate(tf: Tf, backend: TfjsBackendName): Promise<void> {
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
  const info = (extra: Partial<TfjsInfo> = {}): TfjsInfo => ({
    backend,
    tfBackend: TF_BACKEND_NAME[backend],
    tfjsVersion: tf.version_core,
    ...extra,
  });
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
      await installDawn();
      tf = loadTfCore();
      registerWebgpuFactory(tf, require('@tensorflow/tfjs-backend-webgpu'));
      clearWebgpuErrors();
      try {
        await activate(tf, backend);
      } catch (err) {
        // setBackend swallows the factory's error and only warns; name the likely cause.
        if (!(await requestWebgpuAdapter())) throw new Error(NO_ADAPTER);
        throw err;
      }
      return { tf, backend, info: info({ adapter: currentWebgpuAdapter()! }) };
    }
    case 'wasm': {
      tf = loadTfCore();
      const wasm = require('@tensorflow/tfjs-backend-wasm') as {
        setWasmPaths(prefix: string): void;
        getThreadsCount(): number;
      };
      const dir = wasmDir();
      // Emscripten looks for the .wasm next to the running script, which is dist/ once bundled.
      if (dir && !tf.findBackend('wasm')) wasm.setWasmPaths(dir + path.sep);
      try {
        await activate(tf, backend);
      } catch (err) {
        throw new Error(
          `${(err as Error).message}: tfjs-backend-wasm-simd.wasm must be in ${dir ?? `node_modules/@tensorflow/tfjs-backend-wasm/dist or next to ${__filename}`}`,
        );
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

/**
 * Why tfjs-node-gpu cannot use this machine's GPU even where it is installed: its libtensorflow
 * 2.9.1 GPU build loads the CUDA 11 runtime and cuDNN 8 by name (libcudart.so.11.0,
 * libcudnn.so.8), which a CUDA 12 or 13 machine does not have (tfjs issue 8362; docs/RUNTIMES.md §8).
 * Null when those libraries are there or no GPU is known.
 */
export function tfjsNodeGpuMismatch(report: DeviceReport): string | null {
  const torchCuda = report.pytorch.torch?.cuda ?? null;
  if (!report.nvidia.available && !report.pytorch.cuda.available) return null;
  const { libraries } = findLibraries(['libcudart.so.11.0', 'libcudnn.so.8'], {
    env: process.env,
    runpath: [],
    pytorchDirs: report.pytorch.libraryDirs,
  });
  const missing = libraries.filter((l) => !l.path).map((l) => l.soname);
  if (missing.length === 0) return null;
  const cudaHere = torchCuda ? `this machine's PyTorch is built for CUDA ${torchCuda}; ` : '';
  return `it could not use this GPU anyway: libtensorflow 2.9.1's GPU build needs CUDA 11.2 and cuDNN 8.1, and ${cudaHere}${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not here (tfjs issue 8362: no build for CUDA 12 or 13). Use torch-cuda, ort-webgpu or ort-cuda`;
}

/** Which backends can run here, without changing tfjs's active backend; `report` adds what the machine's CUDA means. */
export async function probeTfjsBackends(report?: DeviceReport): Promise<TfjsProbe[]> {
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
          const mismatch = name === 'tfjs-node-gpu' && report ? tfjsNodeGpuMismatch(report) : null;
          const reason = (err as Error).message;
          out.push({ name, available: false, reason: mismatch ? `${reason} And ${mismatch}.` : reason });
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
          const adapter = await webgpuAdapterInfo();
          out.push(adapter ? { name, available: true, adapter } : { name, available: false, reason: NO_ADAPTER });
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
        reason ??= wasmDir()
          ? undefined
          : `tfjs-backend-wasm-simd.wasm is neither in @tensorflow/tfjs-backend-wasm/dist nor next to ${__filename}`;
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
  await releaseWebgpu(tfModule);
  loads.delete('webgpu');
}
