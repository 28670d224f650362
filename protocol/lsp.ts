/**
 * Every ViT Lens custom LSP request and notification, declared once and imported
 * by the server, the VS Code client and the tests (as rust-analyzer's lsp_ext.ts).
 */
import { NotificationType, RequestType } from 'vscode-languageserver-protocol';
import type { DeviceReport } from '../server/bench/devices';
import type { BenchReport, ModelProfileSummary, PinvReport, RuntimeId } from './results';

export interface ProfileParams {
  /** Document URI of an open config. */
  uri: string;
  /** Input resolution (square); defaults to the config's first `img_size`. */
  resolution?: number;
  batch?: number;
  /** Include every op (large: thousands for the deep models). */
  ops?: boolean;
}

/** `vitlens/profile`: the profile of an open config (null when the config has errors). */
export const ProfileRequest = new RequestType<ProfileParams, ModelProfileSummary | null, void>('vitlens/profile');

export interface BenchParams {
  /** Document URI of an open config. */
  uri: string;
  /** Runtimes to measure; default: the best found (hardware WebGPU, then ORT CPU, then a software adapter). */
  runtimes?: RuntimeId[];
  attentions?: string[];
  levels?: ('attention' | 'block')[];
  resolutions?: number[];
  tokens?: number[];
  stages?: number[];
  scaling?: boolean;
  budgetMs?: number;
  batch?: number;
}

/**
 * `vitlens/bench`: benchmarks an open config's attention layers and blocks in a worker
 * process; progress arrives as `vitlens/progress`; cancelling the request kills the worker.
 * Errors (config errors, a worker crash or out-of-memory) come back as a ResponseError.
 */
export const BenchRequest = new RequestType<BenchParams, BenchReport, void>('vitlens/bench');

export interface PinvParams {
  uri: string;
  resolution?: number;
  arithmetic?: 'float32' | 'float64';
  iterations?: number;
  seed?: number;
}

/** `vitlens/pinv`: Newton–Raphson convergence per SOFT stage and head of an open config. */
export const PinvRequest = new RequestType<PinvParams, PinvReport, void>('vitlens/pinv');

/** `vitlens/devices`: runtimes, execution providers, WebGPU adapters and GPUs found (probed in a worker). */
export const DevicesRequest = new RequestType<Record<string, never>, DeviceReport, void>('vitlens/devices');

export interface ProgressParams {
  uri: string | null;
  job: 'bench' | 'pinv' | 'devices';
  message: string;
  done: number;
  total: number;
}

/** `vitlens/progress`: server → client, while a bench or pinv job runs. */
export const ProgressNotification = new NotificationType<ProgressParams>('vitlens/progress');

/** Command ids the server's CodeLenses reference; the client registers them. */
export const Commands = {
  showProfile: 'vitlens.showProfile',
} as const;
