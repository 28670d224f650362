/**
 * Whether WebGPU (Dawn, over Vulkan) actually reaches the GPU this machine is known to have. A GPU
 * is known from nvidia-smi, from the kernel driver (/proc/driver/nvidia/version) or from the
 * user's torch seeing a CUDA device; when Vulkan then offers only a software adapter (llvmpipe)
 * or none, every "WebGPU" figure would be the CPU's. This says so, why that usually happens and
 * what to do (docs/RUNTIMES.md §8), so llvmpipe is never shown as the user's GPU.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DeviceReport, GpuVisibility } from '../../protocol/devices';

/** Where the Vulkan loader looks for driver manifests on Linux (system and local prefixes). */
export const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

export interface VisibilityProbe {
  /** The kernel driver's version file, when present. Default: /proc/driver/nvidia/version. */
  nvidiaProcFile?: string;
  /** Manifest folders to search. Default: ICD_DIRS. */
  icdDirs?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

function nvidiaManifests(dirs: readonly string[]): string[] {
  return dirs.flatMap((dir) => {
    try {
      return fs
        .readdirSync(dir)
        .filter((f) => /nvidia/i.test(f) && f.endsWith('.json'))
        .map((f) => path.join(dir, f));
    } catch {
      return [];
    }
  });
}

/** The report's answer to "does WebGPU see the GPU that is here?" (null where no GPU is known). */
export function diagnoseGpuVisibility(
  report: Pick<DeviceReport, 'nvidia' | 'pytorch' | 'webgpu' | 'host'>,
  o: VisibilityProbe = {},
): GpuVisibility | null {
  const evidence: string[] = [];
  for (const g of report.nvidia.gpus) evidence.push(`nvidia-smi lists GPU ${g.index}: ${g.name}`);
  const procFile = o.nvidiaProcFile ?? '/proc/driver/nvidia/version';
  if (report.host.platform === 'linux' && fs.existsSync(procFile)) {
    const line = fs.readFileSync(procFile, 'utf8').split('\n')[0]?.trim();
    evidence.push(`the NVIDIA kernel driver is loaded (${procFile}${line ? `: ${line}` : ''})`);
  }
  for (const d of report.pytorch.devices.filter((x) => x.kind === 'cuda'))
    evidence.push(`torch sees cuda:${d.index}: ${d.name}`);
  if (evidence.length === 0) return null;

  const hardware = report.webgpu.adapters.filter((a) => !a.software);
  if (hardware.length > 0) return { gpuKnown: evidence, webgpuReachesIt: true, diagnosis: null, fixes: [] };

  const env = o.env ?? process.env;
  const manifests = nvidiaManifests(o.icdDirs ?? ICD_DIRS);
  const software = report.webgpu.adapters.filter((a) => a.software);
  const what =
    software.length > 0
      ? `Vulkan offers only a software adapter (${software.map((a) => a.device || a.description).join(', ')}), so WebGPU runs on the CPU here`
      : `Vulkan offers no adapter at all (${report.webgpu.reason ?? 'none found'})`;
  const fixes: string[] = [];
  if (manifests.length === 0)
    fixes.push(
      `no NVIDIA Vulkan driver manifest (nvidia_icd.json) in ${(o.icdDirs ?? ICD_DIRS).join(', ')}: in a container, start it with NVIDIA_DRIVER_CAPABILITIES including "graphics" (or "all"; "compute,utility" gives CUDA but not Vulkan); some nvidia-container-toolkit versions leave the manifest out even then (toolkit issues 16, 767, 811) — write one whose ICD library_path is libGLX_nvidia.so.0 and point VK_DRIVER_FILES at it`,
    );
  else
    fixes.push(
      `the NVIDIA manifest is there (${manifests.join(', ')}) but the loader did not load it: check that libGLX_nvidia.so.0 (its library_path) loads, and set VK_DRIVER_FILES=${manifests[0]} so no other driver is picked`,
    );
  if (/libvulkan/i.test(report.webgpu.reason ?? ''))
    fixes.push('install the Vulkan loader (Debian/Ubuntu: libvulkan1)');
  const pinned = env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES;
  if (pinned && !/nvidia/i.test(pinned))
    fixes.push(
      `VK_DRIVER_FILES / VK_ICD_FILENAMES is set to ${pinned}, which is not the NVIDIA driver: unset it or point it at nvidia_icd.json`,
    );
  fixes.push('check with `vulkaninfo --summary` (Debian: vulkan-tools); `vitlens devices` shows what Dawn found');
  return {
    gpuKnown: evidence,
    webgpuReachesIt: false,
    diagnosis: `A GPU is here (${evidence.join('; ')}) but ${what}: WebGPU figures would measure the CPU, not this GPU.`,
    fixes,
  };
}
