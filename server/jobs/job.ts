/**
 * The heavy jobs the language server and the CLI hand to a worker process, and the messages
 * that come back: plain JSON both ways (ModelSpec is plain data), so the worker needs no
 * state from its parent.
 */
import type { ApproxReport } from '../../protocol/approx';
import type { GradReport } from '../../protocol/grad';
import type { InferReport } from '../../protocol/infer';
import type { ApproxOptions } from './approx/sweep';
import type { BenchCase, BenchReport, PinvReport } from '../../protocol/results';
import type { InferJob as InferOptions } from './infer/run';
import type { GradJob as GradOptions } from './grad/run';
import type { ModelSpec } from '../core/models/spec';
import type { BenchOptions } from './bench/harness';
import type { DeviceReport } from '../../protocol/devices';
import type { PythonChoice } from '../runtimes/torch/python';

/** The harness's options minus its callbacks (progress and cancel travel as messages and a kill). */
export type BenchJob = { kind: 'bench'; python?: PythonChoice } & Omit<
  BenchOptions,
  'onProgress' | 'onCase' | 'isCancelled'
>;

export interface PinvJob {
  kind: 'pinv';
  model: ModelSpec;
  resolution: number;
  dtype?: 'float32' | 'float64';
  iterations?: number;
  seed?: number;
}

export interface DevicesJob {
  kind: 'devices';
  /** Which Python to probe for PyTorch (the user's setting, VS Code's Python extension). */
  python?: PythonChoice;
}

/** Inference: checkpoints and images are read, and native runtimes run, in the worker only. */
export type InferJob = { kind: 'infer'; python?: PythonChoice } & InferOptions;

/** Approximation quality: plain data in (the model and file paths), the report out. */
export type ApproxJob = { kind: 'approx' } & Omit<ApproxOptions, 'onProgress'> & { model: ModelSpec };

/** One training step's gradients (no optimizer step): files are read, and runtimes run, in the worker only. */
export type GradJob = { kind: 'grad'; python?: PythonChoice } & GradOptions;

export type WorkerJob = BenchJob | PinvJob | DevicesJob | InferJob | ApproxJob | GradJob;

export type JobResult<J extends WorkerJob> = J extends BenchJob
  ? BenchReport
  : J extends PinvJob
    ? PinvReport
    : J extends InferJob
      ? InferReport
      : J extends ApproxJob
        ? ApproxReport
        : J extends GradJob
          ? GradReport
          : DeviceReport;

export type WorkerMessage =
  | { type: 'progress'; message: string; done: number; total: number }
  | { type: 'case'; case: BenchCase }
  | { type: 'result'; result: unknown }
  | { type: 'error'; message: string };

/** What a running job reports before its result. */
export interface JobCallbacks {
  onProgress?: (message: string, done: number, total: number) => void;
  /** Bench jobs: each finished case, as it finishes. */
  onCase?: (c: BenchCase) => void;
}
