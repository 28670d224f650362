/** Runs one job in the current process: what the worker does, and what tests may call directly. */
import { probeDevices } from '../runtimes/probe';
import { wantsPyTorch } from '../runtimes/torch/python';
import { runBenchmark } from './bench/harness';
import { runInference } from './infer/run';
import { runGradients } from './grad/run';
import { analyseApprox } from './approx/sweep';
import type { ApproxJob, BenchJob, GradJob, InferJob, JobCallbacks, JobResult, WorkerJob } from './job';
import { analysePinv } from './pinv';

export async function executeJob<J extends WorkerJob>(job: J, callbacks: JobCallbacks = {}): Promise<JobResult<J>> {
  const onProgress = callbacks.onProgress ?? (() => {});
  switch (job.kind) {
    case 'devices':
      return (await probeDevices({ pytorch: job.python ?? {} })) as JobResult<J>;
    case 'pinv': {
      onProgress('pseudo-inverse analysis', 0, 1);
      const r = analysePinv(job.model, {
        resolution: job.resolution,
        ...(job.dtype ? { dtype: job.dtype } : {}),
        ...(job.iterations !== undefined ? { iterations: job.iterations } : {}),
        ...(job.seed !== undefined ? { seed: job.seed } : {}),
      });
      return r as JobResult<J>;
    }
    case 'bench': {
      const { kind: _kind, python, ...options } = job as BenchJob;
      // The default runtimes include PyTorch as the peer; an explicit list without it needs no probe.
      const pytorch = wantsPyTorch(options.runtimes, true) ? (python ?? {}) : false;
      const report = await probeDevices({ nvidia: true, pytorch });
      return (await runBenchmark(
        { ...options, onProgress, ...(callbacks.onCase ? { onCase: callbacks.onCase } : {}) },
        report,
      )) as JobResult<J>;
    }
    case 'approx': {
      const { kind: _kind, model, ...options } = job as ApproxJob;
      let step = 0;
      // The analysis reports steps, not a known total: the count grows and the message says what runs.
      const report = await analyseApprox(model, { ...options, onProgress: (line) => onProgress(line, step++, 0) });
      return report as JobResult<J>;
    }
    case 'infer': {
      const { kind: _kind, python, ...options } = job as InferJob;
      onProgress('inference', 0, 1);
      // Inference runs on ORT unless asked otherwise: PyTorch is probed only when named.
      const pytorch = wantsPyTorch(options.runtime ? [options.runtime] : null, false) ? (python ?? {}) : false;
      return (await runInference(options, () => probeDevices({ nvidia: false, pytorch }))) as JobResult<J>;
    }
    case 'grad': {
      const { kind: _kind, python, ...options } = job as GradJob;
      onProgress('gradients', 0, 1);
      // The float64 reference needs no probe; another runtime is probed when named, PyTorch only then.
      const pytorch = wantsPyTorch(options.runtime ? [options.runtime] : null, false) ? (python ?? {}) : false;
      return (await runGradients(options, () => probeDevices({ nvidia: false, pytorch }))) as JobResult<J>;
    }
  }
  throw new Error(`unknown job kind ${(job as { kind: string }).kind}`);
}
