/**
 * The user's Python running vitlens_torch.py (the script documents its requests), as a channel
 * of frames (child/channel.ts): a Python that exits, is killed or never answers is a clear error
 * naming the interpreter, never a hang of the benchmark.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ChildChannel } from '../child/channel';

/** The shipped script: next to the bundle (dist/), or beside this file when running from source. */
export function torchScriptPath(): string {
  const script = path.join(__dirname, 'vitlens_torch.py');
  if (!fs.existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` (esbuild.mjs copies it)`);
  return script;
}

const PYTHON_ENV = { PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };

/**
 * Thread pools torch's CPU kernels use, sized before torch loads (OpenBLAS reads its size at load
 * time, whatever torch.set_num_threads says later), unless the user set them. Passive OpenMP
 * waiting: with libgomp's default spinning, OpenMP's and OpenBLAS's threads spin against each
 * other on a small machine and runs became 5–10× slower the moment anything else used a core
 * (docs/BENCHMARKS.md, the PyTorch baselines).
 */
function threadEnv(threads: number): Record<string, string> {
  const n = String(threads);
  return { OMP_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n, MKL_NUM_THREADS: n, OMP_WAIT_POLICY: 'PASSIVE' };
}

/**
 * glibc's allocator hands every block over 128 KiB back to the kernel when it is freed, so each
 * large tensor of every run is page-faulted in afresh (torch's CPU allocator does not cache): the
 * softmax attention of soft_tiny's stage 1 took 602 ms per run that way and 44 ms with freed
 * memory kept for reuse, as onnxruntime's arena does. PyTorch's own CPU tuning guide recommends a
 * caching allocator (jemalloc, tcmalloc) for the same reason; these glibc settings do it with
 * nothing installed. The user's own settings win.
 */
const ALLOCATOR_ENV = {
  MALLOC_MMAP_THRESHOLD_: String(2 ** 32),
  MALLOC_TRIM_THRESHOLD_: String(2 ** 36),
  MALLOC_TOP_PAD_: String(2 ** 29),
};

/**
 * How long one request may take before Python is taken for hung and killed: 10 minutes (a run at
 * a size the device can barely hold can take minutes), or VITLENS_TORCH_TIMEOUT_MS.
 */
const REQUEST_TIMEOUT_MS = Number(process.env.VITLENS_TORCH_TIMEOUT_MS) || 600_000;

/** The user's Python running vitlens_torch.py, its thread pools sized and its allocator tuned. */
export function startTorchProcess(
  /** Names the interpreter in every error ("/usr/bin/python3 (torch 1.13.1)"). */
  who: string,
  python: string,
  /** CPU threads for torch's intra-op pool (the count the other CPU runtimes use). */
  threads: number,
): ChildChannel {
  return new ChildChannel({
    who,
    command: python,
    args: [torchScriptPath()],
    env: {
      ...threadEnv(threads),
      ...ALLOCATOR_ENV,
      ...process.env,
      ...PYTHON_ENV,
      VITLENS_TORCH_THREADS: String(threads),
    },
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
}
