/**
 * Every ViT Lens custom LSP request and notification, declared once and imported
 * by the server, the VS Code client and the tests (as rust-analyzer's lsp_ext.ts).
 */
import { NotificationType, RequestType } from 'vscode-languageserver-protocol';
import type { BackendCandidate, DeviceReport } from './devices';
import type { BenchRunOptions, DashboardData, DashboardView, ProfileSweep } from './dashboard';
import type { GradReport } from './grad';
import type { InferReport } from './infer';
import type { ApproxMethod, ApproxReport } from './approx';
import type { BenchCase, BenchReport, ModelProfileSummary, PinvReport, RuntimeId } from './results';

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

export interface ProfileSweepParams {
  uri: string;
  /** Default: the dashboard's sweep (224 … 1024). */
  resolutions?: number[];
}

/**
 * `vitlens/profileSweep`: exact MACs and estimated memory of an open config versus resolution,
 * for its own attention and the compared ones on the same backbone (null when the config has errors).
 */
export const ProfileSweepRequest = new RequestType<ProfileSweepParams, ProfileSweep | null, void>(
  'vitlens/profileSweep',
);

export interface DashboardParams {
  /** Document URI of an open config. */
  uri: string;
  /** Which view is in front. */
  view: DashboardView;
  /** Who asks (the data's `producer`), e.g. "ViT Lens 0.1.0 VS Code extension". */
  producer: string;
  /** How the title names the config (VS Code: its workspace-relative path); default: the URI. */
  label?: string;
  /** Resolution of the profile view; default: the config's first `img_size`. */
  resolution?: number;
  /** Resolutions of the MACs/memory sweep; default: the dashboard's sweep (as `vitlens/profileSweep`). */
  sweepResolutions?: number[];
  /** Results the client already has for this config (the open panel's), shown alongside the profile. */
  bench?: BenchReport | null;
  pinv?: PinvReport | null;
  infer?: InferReport | null;
  approx?: ApproxReport | null;
  grad?: GradReport | null;
}

/**
 * `vitlens/dashboard`: everything a dashboard shows for an open config: its profile and sweep,
 * with the results the client passes (null when the config has errors). Built by the same code
 * as the CLI's HTML report, so the panel and the report show the same data.
 */
export const DashboardRequest = new RequestType<DashboardParams, DashboardData | null, void>('vitlens/dashboard');

/** What a config names for inference, resolved to absolute paths. */
export interface ConfigInputs {
  /** Next to the config, else under `vitlens.infer.checkpointSearchPaths`; null when it names none. */
  checkpoint: string | null;
  /** Its `images:`, relative to the config. */
  images: string[];
}

/**
 * `vitlens/configInputs`: the checkpoint and images an open config names, resolved as the CLI
 * and `vitlens/infer` resolve them (null when the document is not an open ViT Lens config).
 */
export const ConfigInputsRequest = new RequestType<{ uri: string }, ConfigInputs | null, void>('vitlens/configInputs');

export interface BenchParams extends BenchRunOptions {
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

/** BenchRunOptions (dashboard.ts, where the page's Run again message needs it) as the commands import it. */
export type { BenchRunOptions };

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

export interface ApproxParams {
  /** Document URI of an open config (its model; its `checkpoint:` and first `images:` entry as defaults). */
  uri: string;
  resolution?: number;
  /** A .pth / .safetensors path; default the config's `checkpoint:`; null: seeded random weights. */
  checkpoint?: string | null;
  /** An image path; default the config's first `images:` entry; null: a seeded random input. */
  image?: string | null;
  seed?: number;
  /** 1-based stages (default all). */
  stages?: number[];
  methods?: ApproxMethod[];
  /** Only the first K heads of each stage (the big stages take seconds per head). */
  heads?: number;
  maxTokens?: number;
}

/**
 * `vitlens/approx`: how well each approximate attention reproduces its exact counterpart on the
 * model's own activations, per stage and head, across its size and iteration settings, with the
 * MACs of each point (a worker job; progress as `vitlens/progress`).
 */
export const ApproxRequest = new RequestType<ApproxParams, ApproxReport, void>('vitlens/approx');

/** What was found, and the backends ranked best first with the reason for each. */
export type DevicesResult = DeviceReport & { backends: BackendCandidate[] };

/** `vitlens/devices`: runtimes, execution providers, WebGPU adapters and GPUs found (probed in a worker). */
export const DevicesRequest = new RequestType<Record<string, never>, DevicesResult, void>('vitlens/devices');

export interface InferParams {
  /** Document URI of an open config (its model; its `checkpoint:` and `images:` as defaults). */
  uri: string;
  /** Image files (paths); default: the config's `images:`. */
  images?: string[];
  /** A .pth / .safetensors path; default: the config's `checkpoint:`; null: random weights. */
  checkpoint?: string | null;
  resolution?: number;
  /** 'eval' (default): timm's resize and centre crop; 'none': images already at the input size. */
  resize?: 'eval' | 'none';
  runtime?: RuntimeId;
  /** Attention maps of every stage from the token under `point` (fractions), or the default query. */
  maps?: { point: { x: number; y: number } | null };
}

/**
 * `vitlens/infer`: runs a config's model on images in a worker process: top-5, logits, the
 * model input as a picture, and attention maps. Bad files come back as a ResponseError whose
 * message names the file and the problem.
 */
export const InferRequest = new RequestType<InferParams, InferReport, void>('vitlens/infer');

export interface GradParams {
  /** Document URI of an open config (its model; its `checkpoint:` and first `images:` entry as defaults). */
  uri: string;
  /** The class the cross-entropy is taken against: one for every image, or one per image. */
  labels: number[];
  /** Image files (paths); default: the config's `images:`. */
  images?: string[];
  /** A .pth / .safetensors path; default: the config's `checkpoint:`; null: random weights. */
  checkpoint?: string | null;
  resolution?: number;
  resize?: 'eval' | 'none';
  /** 'eval' (default): BatchNorm running statistics; 'train': batch statistics. */
  mode?: 'eval' | 'train';
  /** How SOFT's Newton inverse is differentiated; default the config's `newton_backward`. */
  newtonBackward?: 'analytic' | 'unrolled';
  /** Default: the float64 reference; another runtime runs the same graph in float32. */
  runtime?: RuntimeId;
}

/**
 * `vitlens/grad`: one training step's gradients (no optimizer step) in a worker process: the loss,
 * every parameter's gradient norm in state-dict order, the input gradient, warnings for exploding,
 * vanishing or non-finite gradients and for SOFT's analytic Newton gradient far from the
 * through-iteration one. Bad files or labels come back as a ResponseError naming them.
 */
export const GradRequest = new RequestType<GradParams, GradReport, void>('vitlens/grad');

export interface ProgressParams {
  uri: string | null;
  job: 'bench' | 'pinv' | 'devices' | 'infer' | 'approx' | 'grad';
  message: string;
  done: number;
  total: number;
}

/** `vitlens/progress`: server → client, while a bench or pinv job runs. */
export const ProgressNotification = new NotificationType<ProgressParams>('vitlens/progress');

export interface BenchCaseParams {
  uri: string | null;
  case: BenchCase;
}

/** `vitlens/benchCase`: server → client, each benchmark case as soon as it finishes (live dashboards). */
export const BenchCaseNotification = new NotificationType<BenchCaseParams>('vitlens/benchCase');

/** The `vitlens.*` settings the server reads through workspace/configuration (package.json declares them). */
export interface VitlensSettings {
  /** budgetMs null: the harness's own default. */
  /** optimizer: what a training-step benchmark runs after the backward pass unless the request says ('none': gradients only). */
  bench: { backends: RuntimeId[]; budgetMs: number | null; scaling: boolean; optimizer: 'none' | 'adamw' };
  infer: { backend: RuntimeId | ''; checkpointSearchPaths: string[] };
  /** The Python that runs PyTorch; '' = VS Code's Python extension's interpreter, else PATH. */
  python: { path: string };
  /**
   * `vitlens.gpuMemory`: the memory of the GPU training would use ("80GiB", "80GB", "24G"); when
   * set, the summary lens and the `model` hover say the largest batch that trains in it (estimate).
   */
  gpuMemory: string | null;
}

export const DEFAULT_SETTINGS: VitlensSettings = {
  bench: { backends: [], budgetMs: null, scaling: true, optimizer: 'none' },
  infer: { backend: '', checkpointSearchPaths: [] },
  python: { path: '' },
  gpuMemory: null,
};

/**
 * `vitlens/pythonInterpreter`: client → server, the interpreter selected in VS Code's Python
 * extension (at start and whenever the user picks another); null when there is none.
 */
export const PythonInterpreterNotification = new NotificationType<{ executable: string | null }>(
  'vitlens/pythonInterpreter',
);

/** `vitlens/trust`: client → server, the workspace's trust changed (VS Code's workspace trust). */
export const TrustNotification = new NotificationType<{ trusted: boolean }>('vitlens/trust');

/** Command ids the server's CodeLenses reference; the client registers them. */
export const Commands = {
  /** Opens the dashboard's profile view of a config. */
  showProfile: 'vitlens.showProfile',
  /** Benchmarks a config's attention (live in the dashboard, cancellable). */
  benchmark: 'vitlens.benchmark',
  /** The same benchmark with every case a training step (forward + backward, + AdamW per `vitlens.bench.optimizer`). */
  benchmarkTraining: 'vitlens.benchmarkTraining',
  /** Newton–Raphson convergence of a config's SOFT stages in the dashboard. */
  pinv: 'vitlens.pinv',
  /** Each approximate attention's error against its MACs on the config's model (`vitlens/approx`), in the dashboard. */
  approx: 'vitlens.approx',
  /** Inference on a config's images (or picked ones) with its checkpoint, in the dashboard. */
  infer: 'vitlens.infer',
  /** Explorer context menu: the selected images through a config's model. */
  inferImages: 'vitlens.inferImages',
  /**
   * One training step's per-parameter gradient norms of a config's model (`vitlens/grad`), in the
   * dashboard's Gradients view (and as text in an output channel).
   */
  grad: 'vitlens.grad',
  /** The status bar item: runtimes, adapters and GPUs found, best first. */
  showDevices: 'vitlens.showDevices',
} as const;
