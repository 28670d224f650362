/**
 * The heavy jobs the language server and the CLI hand to a worker process, and the messages
 * that come back: plain JSON both ways (ModelSpec is plain data), so the worker needs no
 * state from its parent.
 */
import type { BenchReport, PinvReport } from '../../protocol/results';
import type { ModelSpec } from '../models/spec';
import type { BenchOptions } from './harness';
import type { DeviceReport } from './devices';

/** The harness's options minus its callbacks (progress and cancel travel as messages and a kill). */
export type BenchJob = { kind: 'bench' } & Omit<BenchOptions, 'onProgress' | 'isCancelled'>;

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
}

export type WorkerJob = BenchJob | PinvJob | DevicesJob;

export type JobResult<J extends WorkerJob> = J extends BenchJob ? BenchReport : J extends PinvJob ? PinvReport : DeviceReport;

export type WorkerMessage =
  | { type: 'progress'; message: string; done: number; total: number }
  | { type: 'result'; result: unknown }
  | { type: 'error'; message: string };
