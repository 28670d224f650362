/**
 * Which backend to use here: ORT's backends ranked for this machine (pickBestBackend, shown by
 * `vitlens devices` and the LSP), and the runtimes a run uses by default, taken from that ranking.
 */
import type { BackendCandidate, DeviceReport, OrtBackend } from '../../protocol/devices';
import { formatBytes, WHOLE_MIB } from '../../protocol/format';
import type { RuntimeId } from '../../protocol/results';
import { adapterLabel } from './labels';
import { ALL_RUNTIMES } from './runner';

const STATUS_ORDER: Record<BackendCandidate['status'], number> = {
  preferred: 0,
  runnable: 1,
  unknown: 2,
  unavailable: 3,
};

/**
 * Runtime backends in the order a benchmark should try them, each with its reason.
 * ORT WebGPU on a hardware adapter and ORT's CUDA EP (installed, its libraries found, a GPU
 * visible) beat ORT CPU; ORT WebGPU on lavapipe is listed after
 * ORT CPU (it runs, and validates WebGPU graphs, but is 10–100× slower: docs/RUNTIMES.md §1).
 */
export function pickBestBackend(report: DeviceReport): BackendCandidate[] {
  const out: BackendCandidate[] = [];
  const ort = report.onnxruntime;
  const ep = (name: string): OrtBackend | undefined => ort.backends.find((b) => b.name === name);
  const cpu = ep('cpu');
  const webgpu = ep('webgpu');
  const hardware = report.webgpu.adapters.filter((a) => !a.software);
  const software = report.webgpu.adapters.filter((a) => a.software);
  const mib = (bytes: number): string => formatBytes(bytes, { ...WHOLE_MIB, missing: 'unknown' });
  // A GPU known to be here that Vulkan does not reach: the software adapter is not it.
  const v = report.gpuVisibility;
  const gpuOutOfReach = v && !v.webgpuReachesIt ? `; NOT this machine's GPU: ${v.diagnosis}` : '';

  if (!ort.available) {
    out.push({
      backend: 'ort-cpu',
      executionProvider: 'cpu',
      status: 'unavailable',
      reason: ort.reason ?? 'onnxruntime-node is not available',
    });
    return out;
  }

  if (webgpu?.bundled) {
    for (const a of hardware) {
      let reason = `hardware WebGPU adapter; tensors must stay under maxStorageBufferBindingSize = ${mib(a.limits.maxStorageBufferBindingSize)}`;
      if (software.length > 0) {
        // ORT's own Dawn picks the adapter itself; pinning the Vulkan ICD is the only lever (docs/RUNTIMES.md §8).
        reason += `; a software adapter is also present and ORT cannot choose: set VK_ICD_FILENAMES to the ${a.vendor || 'GPU'} ICD json to be sure`;
      }
      out.push({
        backend: 'ort-webgpu',
        executionProvider: 'webgpu',
        status: 'preferred',
        adapter: adapterLabel(a),
        reason,
      });
    }
  }

  const cudaEp = ep('cuda');
  let cudaUsable = false;
  if (cudaEp) {
    const cuda = ort.cuda;
    const gpu = report.nvidia.available || report.pytorch.cuda.available;
    const cudaCandidate: BackendCandidate =
      cuda?.usable && gpu
        ? {
            backend: 'ort-cuda',
            executionProvider: 'cuda',
            status: 'preferred',
            reason: `CUDA EP installed with every library it needs; runs in its own process${cuda.libraryPath.length ? ` with ${cuda.libraryPath.join(':')} on LD_LIBRARY_PATH` : ''}`,
          }
        : {
            backend: 'ort-cuda',
            executionProvider: 'cuda',
            status: 'unavailable',
            reason: cuda?.usable
              ? `CUDA EP installed but no NVIDIA GPU is visible (${report.nvidia.reason ?? 'none'})`
              : (cuda?.reason ?? cudaEp.reason ?? 'not installed'),
          };
    cudaUsable = cudaCandidate.status === 'preferred';
    out.push(cudaCandidate);
  }

  if (cpu) {
    out.push({
      backend: 'ort-cpu',
      executionProvider: 'cpu',
      status: (hardware.length > 0 && webgpu?.bundled) || cudaUsable ? 'runnable' : 'preferred',
      reason: `${report.host.cores} threads on ${report.host.cpuModel}`,
    });
  } else {
    out.push({
      backend: 'ort-cpu',
      executionProvider: 'cpu',
      status: 'unavailable',
      reason: 'onnxruntime-node lists no cpu backend',
    });
  }

  if (webgpu?.bundled) {
    for (const a of software) {
      out.push({
        backend: 'ort-webgpu',
        executionProvider: 'webgpu',
        status: 'runnable',
        adapter: adapterLabel(a),
        reason: `software adapter: correct results but slower than ORT CPU (lavapipe measured 10–100× slower); use it to validate WebGPU graphs; binding limit ${mib(a.limits.maxStorageBufferBindingSize)}${gpuOutOfReach}`,
      });
    }
    if (report.webgpu.adapters.length === 0) {
      out.push({
        backend: 'ort-webgpu',
        executionProvider: 'webgpu',
        status:
          report.webgpu.available === false &&
          /VITLENS_NO_WEBGPU|not probed|could not be loaded/.test(report.webgpu.reason ?? '')
            ? 'unknown'
            : 'unavailable',
        reason: `no WebGPU adapter known (${report.webgpu.reason ?? 'none found'}); without one ORT throws "Failed to get a WebGPU adapter"`,
      });
    }
  } else {
    out.push({
      backend: 'ort-webgpu',
      executionProvider: 'webgpu',
      status: 'unavailable',
      reason: webgpu ? (webgpu.reason ?? 'not bundled') : 'this onnxruntime-node has no WebGPU EP',
    });
  }

  for (const name of ['tensorrt'] as const) {
    const b = ep(name);
    if (!b) continue;
    const backend = 'ort-tensorrt';
    if (!b.installed) {
      out.push({ backend, executionProvider: name, status: 'unavailable', reason: b.reason ?? 'not installed' });
    } else if (!report.nvidia.available) {
      out.push({
        backend,
        executionProvider: name,
        status: 'unavailable',
        reason: `EP installed but no NVIDIA GPU (${report.nvidia.reason ?? 'none'})`,
      });
    } else {
      // Whether the CUDA libraries load is only known when a session is created.
      out.push({
        backend,
        executionProvider: name,
        status: 'unknown',
        reason: b.reason ?? 'EP installed; needs CUDA libraries at run time',
      });
    }
  }

  // Stable sort keeps the within-status order above (hardware WebGPU, CPU, software WebGPU).
  return out.sort((x, y) => STATUS_ORDER[x.status] - STATUS_ORDER[y.status]);
}

/** PyTorch on the best device it sees (a CUDA/ROCm GPU, then Apple's MPS, then the CPU), or null without torch. */
export function bestTorchRuntime(report: DeviceReport): RuntimeId | null {
  if (!report.pytorch.available) return null;
  const kinds = new Set(report.pytorch.devices.map((d) => d.kind));
  return kinds.has('cuda') ? 'torch-cuda' : kinds.has('mps') ? 'torch-mps' : kinds.has('cpu') ? 'torch-cpu' : null;
}

/**
 * The runtimes a run uses by default, best first, in the one ranking above (pickBestBackend):
 * a hardware WebGPU adapter and ORT's CUDA EP where usable, then ORT CPU, then ORT on a software
 * adapter, with the user's PyTorch beside them. Backends without a runner here (ort-tensorrt) and
 * unusable ones are left out.
 */
export function defaultRuntimes(report: DeviceReport): RuntimeId[] {
  const out: RuntimeId[] = [];
  for (const c of pickBestBackend(report)) {
    if (c.status !== 'preferred' && c.status !== 'runnable') continue;
    const id = c.backend as RuntimeId;
    if (ALL_RUNTIMES.includes(id) && !out.includes(id)) out.push(id);
  }
  // The user's PyTorch on its best device stands beside them: the peer, measured in the same run.
  const torch = bestTorchRuntime(report);
  if (torch) out.push(torch);
  return out;
}
