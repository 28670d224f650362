/** Runs one job in the current process: what the worker does, and what tests may call directly. */
import { probeDevices } from './devices';
import { runBenchmark } from './harness';
import type { BenchJob, JobResult, WorkerJob } from './jobs';
import { analysePinv } from './pinv';

export async function executeJob<J extends WorkerJob>(job: J, onProgress: (message: string, done: number, total: number) => void = () => {}): Promise<JobResult<J>> {
  switch (job.kind) {
    case 'devices':
      return (await probeDevices()) as JobResult<J>;
    case 'pinv': {
      onProgress('pseudo-inverse analysis', 0, 1);
      const r = analysePinv(job.model, { resolution: job.resolution, ...(job.dtype ? { dtype: job.dtype } : {}), ...(job.iterations !== undefined ? { iterations: job.iterations } : {}), ...(job.seed !== undefined ? { seed: job.seed } : {}) });
      return r as JobResult<J>;
    }
    case 'bench': {
      const { kind: _kind, ...options } = job as BenchJob;
      const report = await probeDevices({ nvidia: true });
      return (await runBenchmark({ ...options, onProgress }, report)) as JobResult<J>;
    }
  }
  throw new Error(`unknown job kind ${(job as { kind: string }).kind}`);
}
