/**
 * The dashboard's data and the messages between its page (webview/) and whoever hosts it:
 * the VS Code extension (a webview panel) or the CLI's self-contained HTML report.
 * Plain JSON only, so the same page code renders both.
 */
import type { ApproxReport } from './approx';
import type { GradReport } from './grad';
import type { AttentionMap, InferReport } from './infer';
import type { BenchCase, BenchReport, ModelProfileSummary, PinvReport } from './results';

/**
 * How a benchmark runs, beyond what it measures: the `vitlens/bench` request's training fields, a
 * benchmark command's arguments after the config's URI, and what the page's Run again sends.
 */
export interface BenchRunOptions {
  /**
   * Every case as a training step (forward + backward from a seeded cotangent, gradients for the
   * input and every parameter; `vitlens bench --train`) instead of a forward pass.
   */
  train?: boolean;
  /** With `train`: an optimizer update after the backward pass; default the `vitlens.bench.optimizer` setting ('none'). */
  optimizer?: 'adamw' | null;
  /** With `train`: how SOFT's Newton inverse is differentiated; default the config's `newton_backward`. */
  newtonBackward?: 'analytic' | 'unrolled';
  /** With `train`: the cotangent's seed (default 2). */
  seed?: number;
}

/** One model × attention × resolution point of the profile sweep (MACs in convention B). */
export interface ProfileSweepPoint {
  attention: string;
  resolution: number;
  /** Tokens of the first stage (the largest). */
  tokens: number;
  params: number;
  /** Multiply–accumulates, README convention B (FLOPs = 2 × MACs). */
  macs: number;
  /** Analytic peak memory (weights + buffers + live activations, float32): an estimate. */
  peakBytes: number;
}

/**
 * How MACs and estimated memory grow with resolution when the same backbone uses each
 * attention kind (the config's own first). Computed by the profile walk: exact counts,
 * estimated memory.
 */
export interface ProfileSweep {
  model: string;
  convention: 'B';
  resolutions: number[];
  attentions: string[];
  points: ProfileSweepPoint[];
}

/** A benchmark or pinv job still running (drives the live progress bar and cancel button). */
export interface LiveJob {
  job: 'bench' | 'pinv';
  message: string;
  done: number;
  total: number;
  /** False in a static report: nothing to cancel. */
  cancellable: boolean;
}

/** Everything a dashboard shows. Each part is optional: a view without data says so. */
export interface DashboardData {
  /** Headline, e.g. "soft_tiny — fixtures/configs/soft/SOFT_Tiny.yaml". */
  title: string;
  /** The config file the results come from, when there is one. */
  source: string | null;
  /** ISO time the data was produced. */
  generatedAt: string;
  /** Who produced it: "ViT Lens 0.1.0 CLI", "ViT Lens VS Code extension". */
  producer: string;
  profile: ModelProfileSummary | null;
  profileSweep: ProfileSweep | null;
  /** A finished report, or a partial one while `live` is set (cases arrive one by one). */
  bench: BenchReport | null;
  pinv: PinvReport | null;
  /** Predictions and attention maps of an inference run (optional in older data). */
  infer?: InferReport | null;
  /** Approximation quality: each approximate attention's error against its cost (optional in older data). */
  approx?: ApproxReport | null;
  /** Gradients of one training step: per-parameter gradient norms, the input gradient (optional in older data). */
  grad?: GradReport | null;
  live: LiveJob | null;
  /** Which view is in front. */
  view: DashboardView;
}

export type DashboardView = 'profile' | 'bench' | 'pinv' | 'approx' | 'infer' | 'grad';

/** Host → page. */
export type HostMessage =
  /** Replace everything shown (first load, a new job). */
  | { type: 'data'; data: DashboardData }
  /** A benchmark case finished while `live` is set: append it to `bench.cases`. */
  | { type: 'benchCase'; case: BenchCase }
  /** Progress of the live job. */
  | { type: 'progress'; live: LiveJob }
  /** The live job ended: the final report (bench or pinv), or why it failed, or that the user cancelled it. */
  | { type: 'jobDone'; bench?: BenchReport; pinv?: PinvReport; error?: string; cancelled?: boolean }
  /** The host wrote a file the page asked to save (or the user cancelled: path null). */
  | { type: 'saved'; path: string | null }
  /** Maps for a query the user picked on an image (answer to `attentionQuery`), or why there are none. */
  | { type: 'attentionMaps'; item: number; maps: AttentionMap[]; error?: string };

/** Page → host. */
export type PageMessage =
  /** The page has loaded and wants data (the host answers with `data`). */
  | { type: 'ready' }
  /** The cancel button of the live job. */
  | { type: 'cancel' }
  /** Export: the host asks where and writes it (a webview cannot download). */
  | {
      type: 'save';
      filename: string;
      mime: 'image/png' | 'text/csv' | 'application/json';
      encoding: 'base64' | 'utf8';
      content: string;
    }
  /** Rerun the job behind a view (the page's "Run again" button); a benchmark in the mode and with the settings it showed. */
  | { type: 'rerun'; view: DashboardView; bench?: BenchRunOptions }
  /**
   * The user clicked an image of the inference view: attention maps of every stage for the
   * token under that point (fractions of the model input's width and height), computed by the
   * host. A static report has no host; it shows the maps it was written with.
   */
  | { type: 'attentionQuery'; item: number; point: { x: number; y: number } };

/** Id of the <script type="application/json"> element that carries the data of a static report. */
export const INLINE_DATA_ELEMENT_ID = 'vitlens-data';
/** The webview panel type (for the panel serializer that restores it after a reload). */
export const DASHBOARD_VIEW_TYPE = 'vitlens.dashboard';
