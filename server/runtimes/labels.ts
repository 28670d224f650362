/**
 * How devices are named to the user: which adapters are software, the one-line label of an
 * adapter or of the CPU, and nvidia-smi's names for the adapters Dawn only gives a slug for.
 * Software is always spelled out, so lavapipe timings are never read as GPU timings.
 */
import type { DeviceReport, NvidiaGpu, WebGpuAdapter } from '../../protocol/devices';

const SOFTWARE_DEVICE = /llvmpipe|swiftshader|lavapipe/i;

/** CPU-emulated adapters: flagged by Dawn, or recognisable by their Mesa/SwiftShader names. */
export function isSoftwareAdapter(
  a: Pick<WebGpuAdapter, 'vendor' | 'architecture' | 'device' | 'description' | 'isFallbackAdapter'>,
): boolean {
  return (
    a.isFallbackAdapter ||
    (a.vendor === 'mesa' && a.architecture === 'software') ||
    SOFTWARE_DEVICE.test(a.device) ||
    SOFTWARE_DEVICE.test(a.description)
  );
}

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

/** The CPU as a runtime's device: "8 threads on AMD EPYC …". */
export function cpuLabel(report: DeviceReport, threads: number): string {
  return `${threads} thread${threads === 1 ? '' : 's'} on ${report.host.cpuModel}`;
}

/** "NVIDIA H100 80GB HBM3" → "nvidia-h100-80gb-hbm3", the way Dawn spells adapter.info.device. */
function dawnSlug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

/** Gives NVIDIA adapters nvidia-smi's name, since Dawn only reports a slug. */
export function attachDisplayNames(adapters: WebGpuAdapter[], gpus: NvidiaGpu[]): void {
  for (const a of adapters) {
    if (a.vendor.toLowerCase() !== 'nvidia') continue;
    const slug = a.device.replace(/-+$/, '');
    const match =
      gpus.find((g) => dawnSlug(g.name).replace(/-+$/, '') === slug) ?? (gpus.length === 1 ? gpus[0] : undefined);
    if (match) a.displayName = match.name;
  }
}
