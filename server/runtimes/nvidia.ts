/**
 * NVIDIA GPUs through nvidia-smi: the probe's list of GPUs, and the memory sampler the benchmark
 * runs beside GPU cases. Its figures are whole-device ones: other processes and Dawn's pools included.
 */
import { execFile } from 'node:child_process';
import type { NvidiaGpu, NvidiaInfo } from '../../protocol/devices';

/** probeDevices passes its own timeout; this is for direct calls. */
const DEFAULT_TIMEOUT_MS = 15_000;

const NVIDIA_SMI_QUERY = [
  '--query-gpu=index,name,memory.used,memory.total,driver_version',
  '--format=csv,noheader,nounits',
];

function runNvidiaSmi(
  args: string[],
  opts: { timeoutMs?: number; nvidiaSmi?: string },
): Promise<{ ok: true; stdout: string } | { ok: false; reason: string }> {
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

// ---------------------------------------------------------------------------------------------
// GPU memory sampling
// ---------------------------------------------------------------------------------------------

export type GpuMemorySample =
  { available: true; at: number; usedMiB: number[]; totalMiB: number[] } | { available: false; reason: string };

/** One reading of every NVIDIA GPU's used memory, indexed like nvidia-smi. */
export async function gpuMemoryUsed(opts: { timeoutMs?: number; nvidiaSmi?: string } = {}): Promise<GpuMemorySample> {
  const r = await runNvidiaSmi(NVIDIA_SMI_QUERY, {
    timeoutMs: opts.timeoutMs ?? 5_000,
    ...(opts.nvidiaSmi ? { nvidiaSmi: opts.nvidiaSmi } : {}),
  });
  if (!r.ok) return { available: false, reason: r.reason };
  const gpus = parseNvidiaSmi(r.stdout);
  if (gpus.length === 0) return { available: false, reason: 'nvidia-smi listed no GPUs' };
  return {
    available: true,
    at: Date.now(),
    usedMiB: gpus.map((g) => g.memoryUsedMiB),
    totalMiB: gpus.map((g) => g.memoryTotalMiB),
  };
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
export function startGpuMemorySampler(
  opts: { intervalMs?: number; nvidiaSmi?: string; read?: () => Promise<GpuMemorySample> } = {},
): { stop(): Promise<GpuMemoryPeak> } {
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
      if (baseline === null)
        return { available: false, reason: failure ?? 'no sample taken', baselineMiB: [], peakMiB: [], samples };
      return { available: true, baselineMiB: baseline, peakMiB: peak, samples };
    },
  };
}
