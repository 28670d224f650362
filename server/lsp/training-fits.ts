/**
 * "Trains at batch ≤ B on 80 GiB" for the editor (the `vitlens.gpuMemory` setting): the largest
 * batch whose training step fits, from two training graphs of the model (profile/training-memory.ts).
 * Building them takes 0.1 s for SOFT-Tiny and over a second for SOFT-Huge, too long for a hover or
 * a CodeLens, so it runs in a worker thread (this same bundle, started with `workerData`), one at a
 * time, newest request first; until it is ready the hover says so and the lens leaves it out, and
 * when it is ready the client is asked to refresh its lenses. Results are kept per model spec,
 * resolution, memory and precision — an edit that leaves the architecture alone reuses them.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { ModelSpec } from '../core/models/spec';
import {
  largestBatch,
  trainingFit,
  type LargestBatch,
  type Linear,
  type TrainingPrecision,
} from '../core/profile/training-memory';
import { WeightedLru } from './weighted-lru';

export interface FitRequest {
  spec: ModelSpec;
  resolution: number;
  memoryBytes: number;
  precision: TrainingPrecision;
}

/** The largest batch, with the line it comes from (the steepest; the peak from `fromBatch` on). */
export interface FitResult {
  largest: LargestBatch;
  total: Linear & { fromBatch: number };
}

export type FitState =
  { state: 'ready'; result: FitResult } | { state: 'pending' } | { state: 'failed'; message: string };

/** What runs one fit; the server's runs it in a worker thread, tests may pass their own. */
export type FitCompute = (req: FitRequest) => Promise<FitResult>;

/** The fit itself (what the worker thread runs). */
export function computeFit(req: FitRequest): FitResult {
  const fit = trainingFit(req.spec, { resolution: req.resolution, precision: req.precision });
  return {
    largest: largestBatch(fit, req.memoryBytes),
    total: {
      fixedBytes: fit.residentBytes + fit.asymptote.fixedBytes,
      perSampleBytes: fit.asymptote.perSampleBytes,
      fromBatch: fit.asymptote.fromBatch,
    },
  };
}

/** workerData that makes the server bundle compute one fit instead of serving (server.ts). */
export const FIT_WORKER_TAG = 'vitlens-training-fit';

/** Runs `computeFit` in a worker thread started on `script` (the running server bundle). */
export function workerCompute(script: string): FitCompute {
  return (req) =>
    new Promise<FitResult>((resolve, reject) => {
      const opts: WorkerOptions = { workerData: { tag: FIT_WORKER_TAG, req } };
      const w = new Worker(script, opts);
      let done = false;
      w.once('message', (m: { result?: FitResult; error?: string }) => {
        done = true;
        if (m.result) resolve(m.result);
        else reject(new Error(m.error ?? 'training memory: no result'));
      });
      w.once('error', (e) => {
        done = true;
        reject(e);
      });
      w.once('exit', (code) => {
        if (!done) reject(new Error(`training memory worker exited with ${code}`));
      });
    });
}

/** Entries kept (a result is a few numbers). */
const CACHED_FITS = 256;
/** Requests waiting: older ones than these (superseded while typing) are dropped, and asked again if still wanted. */
const QUEUED_FITS = 4;

export class TrainingFits {
  private readonly results = new WeightedLru<string, FitState>(CACHED_FITS);
  /** Requested and not started yet, newest last. */
  private readonly queue = new Map<string, FitRequest>();
  private running = false;

  /** `onReady` runs after each fit finishes (refresh the lenses). */
  constructor(
    private readonly compute: FitCompute,
    private readonly onReady: () => void = () => {},
  ) {}

  static key(r: FitRequest): string {
    return `${r.resolution} ${r.memoryBytes} ${r.precision} ${JSON.stringify(r.spec)}`;
  }

  /** The fit if done (or failed); otherwise it is queued and this says `pending`. */
  get(req: FitRequest): FitState {
    const key = TrainingFits.key(req);
    const got = this.results.get(key);
    if (got) return got;
    // The newest request goes first: re-inserting moves it to the end.
    this.queue.delete(key);
    this.queue.set(key, req);
    while (this.queue.size > QUEUED_FITS) this.queue.delete(this.queue.keys().next().value!);
    void this.pump();
    return { state: 'pending' };
  }

  /** Resolves once nothing is queued or running (tests). */
  async idle(): Promise<void> {
    while (this.running || this.queue.size) await new Promise((r) => setTimeout(r, 5));
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const last = [...this.queue.keys()].pop();
        if (last === undefined) break;
        const req = this.queue.get(last)!;
        this.queue.delete(last);
        let state: FitState;
        try {
          state = { state: 'ready', result: await this.compute(req) };
        } catch (e) {
          state = { state: 'failed', message: e instanceof Error ? e.message : String(e) };
        }
        this.results.set(last, state, 1);
        this.onReady();
      }
    } finally {
      this.running = false;
    }
  }
}

/** The worker thread's side: compute the fit in `workerData.req` and post it back (server.ts calls this). */
export function runFitWorker(
  data: { req: FitRequest },
  post: (m: { result?: FitResult; error?: string }) => void,
): void {
  try {
    post({ result: computeFit(data.req) });
  } catch (e) {
    post({ error: e instanceof Error ? e.message : String(e) });
  }
}
