/**
 * Plain result objects that cross process boundaries (LSP, CLI JSON, webview).
 * No classes, no functions: JSON in, JSON out.
 */
import type { Convention, ElementwiseKind, MacCategory, OpKind } from './categories';

/** Summary of a set of timings, all in milliseconds (relSpread is unitless). */
export interface TimingSummary {
  n: number;
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
  mean: number;
  /** (p90 − p10) / median: a scale-free noise measure; 0 for a single sample. */
  relSpread: number;
}

export interface StageSummary {
  group: string;
  stage: number;
  attention: string | null;
  grid: number;
  tokens: number;
  landmarks: number | null;
  dim: number;
  heads: number;
  depth: number;
  params: number;
  macsByConvention: Record<Convention, number>;
  macsByCategory: Record<MacCategory, number>;
  macsByKind: Record<OpKind, number>;
  elementwise: Record<ElementwiseKind, number>;
  /** Estimated largest live-activation set inside the stage (float32). */
  peakActivationBytesEstimate: number;
}

/** One module-level layer: a stem, a block, the positional embeddings, the head. */
export interface LayerSummary {
  /** state_dict prefix: `patch_embed1`, `block2.1`, `blocks.3`, `head` … */
  name: string;
  group: string;
  stage: number;
  block: number;
  params: number;
  macsByConvention: Record<Convention, number>;
  /** Sum of the layer's op output sizes (float32) — what the layer writes. */
  activationBytes: number;
  /** Largest live set while the layer runs (estimate, float32). */
  peakActivationBytesEstimate: number;
}

/** One op of the profile walk. */
export interface OpSummary {
  path: string;
  layer: string;
  kind: OpKind;
  label: string;
  category: MacCategory | null;
  macs: number;
  params: number;
  elementwise: Partial<Record<ElementwiseKind, number>>;
  outputBytes: number;
}

export interface ModelProfileSummary {
  model: string;
  title: string;
  notes: string[];
  resolution: number;
  batch: number;
  /** Counting unit of every `macs*` field: multiply–accumulates. FLOPs = 2 × MACs. */
  unit: 'MACs';
  params: number;
  macsByConvention: Record<Convention, number>;
  conventions: { convention: Convention; label: string; macs: number; flops: number }[];
  readmeConvention: Convention;
  readmeConventionNote: string;
  macsByCategory: Record<MacCategory, number>;
  macsByKind: Record<OpKind, number>;
  elementwise: Record<ElementwiseKind, number>;
  newton: { variant: string; iterations: number; source: string; macsAreLowerBound: boolean };
  kernelMethod: string;
  memory: {
    kind: 'estimate';
    note: string;
    parameterBytes: number;
    bufferBytes: number;
    peakActivationBytes: number;
    peakTotalBytes: number;
    peakAt: string;
  };
  stages: StageSummary[];
  layers: LayerSummary[];
  /** Every op, in execution order (omitted when not asked for). */
  ops?: OpSummary[];
  published: { params: string; gflops: number; top1: number; source: string } | null;
}

// ── Pseudo-inverse convergence (vitlens/pinv, `vitlens pinv`) ─────────────────────────────

/**
 * Error measures after k steps (docs/MATHS.md §6.3), computed in float64. For a Nyströmformer
 * stage (PinvStage.method.kind 'nystrom') read P = A and V_k = Z_k: A = softmax(Q̃K̃ᵀ) is iterated
 * unshifted.
 */
export interface PinvIteration {
  k: number;
  /** ‖I − P·V_k‖_F, P the matrix iterated (variant A: A + 0.01·I). */
  residual: number;
  /** ‖A·V_k·A − A‖_F / ‖A‖_F (Penrose condition 1, on the unshifted A). */
  penrose: number;
  /** ‖V_k − P⁻¹‖_F / ‖P⁻¹‖_F against the float64 exact inverse; null when P is numerically singular. */
  exactError: number | null;
  /**
   * Exact-arithmetic ‖I − P·V_k‖₂. Newton: max |1 − αλ²|^(2^k) from P's spectrum. Nyström: the
   * slowest mode r = 1 − c·σ_min² carried through r ← (3r³ + r⁴)/4, exact for any A (R₀ = I − c·A·Aᵀ
   * is symmetric and every R_k a polynomial in it).
   */
  predicted: number;
}

export interface PinvMatrixReport {
  m: number;
  /** Scale of the first iterate: Newton's step size α (V₀ = α·P); Nyström's c = 1/(max column abs-sum · max row abs-sum) (Z₀ = c·Aᵀ). */
  alpha: number;
  /** Variant B's step-size halvings; null for variant A and Nyström. */
  backoffHalvings: number | null;
  /** Newton: |λ|max / |λ|min of the symmetric matrix iterated. Nyström: σ_max/σ_min of A (at most 1/ε). */
  conditionNumber: number;
  /** Newton: the extreme eigenvalues of P. Nyström: the extreme singular values of A (A is not symmetric). */
  eigenvalueRange: [number, number];
  iterations: PinvIteration[];
  /** First k at which each measure is ≤ the threshold ("1e-3", "1e-6"), or null. */
  reaches: Record<string, { residual: number | null; penrose: number | null; exactError: number | null }>;
  converged: boolean;
  convergedAt: number | null;
  predictedIterations: number | null;
  /** One line for people: "converged at iteration 9 of 20", "not converged after 20 iterations: …". */
  verdict: string;
}

export interface PinvHead extends PinvMatrixReport {
  head: number;
}

/** Which pseudo-inverse iteration a stage's attention runs. */
export interface PinvMethod {
  /** 'newton': SOFT's Newton–Raphson on K₂ (docs/MATHS.md §1.4); 'nystrom': Nyströmformer's third-order iteration on A = softmax(Q̃K̃ᵀ) (§6.1). */
  kind: 'newton' | 'nystrom';
  /** "Newton–Raphson (SOFT, variant A, 20 iterations)", "Nyströmformer third-order (6 iterations)". */
  label: string;
  /** The config key that sets how many iterations the model runs, and its value (the view marks it on the chart). */
  setting: 'newton_maxiter' | 'nystrom_iterations';
  configured: number;
  /** Steps traced: `configured` unless the request asked for another count. */
  traced: number;
}

export interface PinvStage {
  stage: number;
  attention: string;
  grid: number;
  landmarks: number;
  /** Absent in reports from before Nyström stages were analysed: those are all Newton (the report's variant and iterations). */
  method?: PinvMethod;
  heads: PinvHead[];
  /** Why the stage has no matrices (e.g. no landmark at this resolution), else null. */
  skipped: string | null;
}

export interface PinvReport {
  model: string;
  resolution: number;
  /** Newton–Raphson settings (SOFT stages); a Nyström stage's own are in its `method`. */
  variant: 'A' | 'B';
  variantSource: string;
  /** Newton steps traced. */
  iterations: number;
  /** Arithmetic of the iteration itself (the measures are always float64). */
  arithmetic: 'float32' | 'float64';
  weights: string;
  input: string;
  stages: PinvStage[];
  summary: string;
}

// ── Benchmarks (vitlens/bench, `vitlens bench`) ───────────────────────────────────────────

/** Runtime backends the harness can run a graph on. */
export type RuntimeId =
  | 'ort-cpu'
  | 'ort-webgpu'
  /** onnxruntime's CUDA EP, where its provider library was installed: run in a process of its own. */
  | 'ort-cuda'
  | 'tfjs-webgpu'
  | 'tfjs-wasm'
  | 'tfjs-cpu'
  | 'tfjs-node'
  | 'tfjs-node-gpu'
  | 'reference'
  /** The user's own PyTorch (eager), run by their Python: the peer every figure stands beside. */
  | 'torch-cpu'
  | 'torch-cuda'
  | 'torch-mps'
  /** The same programs through torch.compile (inductor), where this torch has it. */
  | 'torch-cpu-compiled'
  | 'torch-cuda-compiled';

export interface RuntimeDescription {
  id: RuntimeId;
  /** e.g. "onnxruntime-node 1.30.0, WebGPU EP". */
  runtime: string;
  /** e.g. "llvmpipe (Mesa 25.0.7, software — CPU emulating a GPU)" or "2 threads on AMD EPYC …". */
  device: string;
  /** True when a "GPU" result comes from a software adapter: its timings say nothing about a GPU. */
  software: boolean;
  /** Largest tensor one buffer may hold, when the runtime has such a limit (WebGPU). */
  maxBufferBytes: number | null;
  /**
   * When set, UFO's token-wise work runs in tiles of at least this many bytes (under twice as many)
   * per [B, tokens, D] activation (cache blocking on a CPU; the same maths, KᵀV summed tile by
   * tile); null = untiled.
   */
  tokenTileBytes: number | null;
}

/** Milliseconds: median, p10, p90 (linear-interpolation percentiles), min, max, n, (p90 − p10)/median. */
export type TimingStats = Omit<TimingSummary, 'mean'>;

export interface MemoryFigure {
  /** What it is and how it was obtained, e.g. "ORT CPU arena peak (profile)", "tf.profile peakBytes". */
  label: string;
  bytes: number;
  kind: 'measured' | 'estimated';
}

export interface BenchCase {
  id: string;
  runtime: RuntimeId;
  /** 'config' = the config's own shapes; 'sweep' = a resolution/token sweep; 'scaling' = fixed landmark count from 1k to 64k tokens. */
  group: 'config' | 'sweep' | 'scaling';
  stage: number;
  attention: string;
  level: 'attention' | 'block';
  batch: number;
  resolution: number | null;
  tokens: number;
  /** Token grid rows; `gridW` its columns where they differ (a rectangular grid of the token sweep). */
  grid: number;
  gridW?: number;
  landmarks: number | null;
  /** The attention's size setting in words ("m = 49 landmarks, 20 Newton iterations", "k = 49 …"); null for exact ones. */
  setting?: string | null;
  dim: number;
  heads: number;
  status: 'ok' | 'refused' | 'failed' | 'skipped';
  /** Why it was refused, failed or skipped. */
  message: string | null;
  /** MACs of the graph executed (matmuls + convolutions); FLOPs = 2 × MACs. */
  macs: number;
  timingMs: TimingStats | null;
  /** Achieved GFLOP/s = 2·MACs / median time. */
  gflopsPerSecond: number | null;
  warmup: { runs: number; firstMs: number } | null;
  /** Graph build and session creation (harness overhead, not part of the timings). */
  setupMs: { build: number; session: number } | null;
  /** Analytic estimate (graph liveness, float32) first, then whatever the runtime measures. */
  memory: MemoryFigure[];
  /** max |runtime − reference| / max |reference| at this shape, when checked. */
  relErrorVsReference: number | null;
  /**
   * CPU other processes used while the timed runs ran, in cores (os.cpus() minus this process;
   * null when the window was under 250 ms, too short to tell), and how many times the runs were
   * timed: a scaling point is re-timed (up to 3 attempts, the quietest kept) while that exceeds
   * 0.25 cores, unless one attempt already took over twice the time budget.
   */
  hostLoad?: { otherCores: number | null; attempts: number };
  /**
   * Bytes the case's graph moves if every op reads its operands and writes its result once (no
   * fusion, no cache reuse): an estimate, for the bandwidth side of the roofline (protocol/roofline.ts).
   */
  trafficBytes?: number;
  /**
   * 'train': the case is a training step (forward, backward, optionally an optimizer update; see
   * `training`), and `macs`, `memory[0]`, the timings and `relErrorVsReference` are the whole
   * step's. 'inference' (or absent, in reports from before training steps): a forward pass.
   */
  mode?: BenchMode;
  /** What a training step computed and how its MACs split; present when mode is 'train'. */
  training?: BenchTraining;
}

export type BenchMode = 'inference' | 'train';

/** How a benchmark's training steps were built (one setting for the whole run). */
export interface BenchTrainingSetup {
  /** Seed of the fixed N(0, 1) cotangent the backward pass starts from at the layer's output. */
  cotangentSeed: number;
  /** 'adamw': an AdamW update of every parameter follows the backward pass, in the same graph; null: gradients only. */
  optimizer: 'adamw' | null;
  /** The optimizer's hyper-parameters, in words ("lr 0.001, betas (0.9, 0.999), eps 1e-08, …"); null without one. */
  optimizerSettings: string | null;
  /** How SOFT's Newton inverse is differentiated in SOFT stages ('analytic': −Vᵀ·G·Vᵀ; 'unrolled': through every iteration). */
  newtonBackward: 'analytic' | 'unrolled';
}

/** One training-step case: the MACs of its two passes and what it differentiated. */
export interface BenchTraining {
  /** MACs of the forward pass alone (the graph's cost up to the layer's output). */
  forwardMacs: number;
  /** MACs of the rest of the step (backward; an optimizer adds none): BenchCase.macs − forwardMacs. */
  backwardMacs: number;
  /** backwardMacs / forwardMacs. */
  backwardOverForward: number;
  /** The analytic peak of the forward pass alone (what an inference case estimates), beside the step's (memory[0]). */
  forwardPeakBytes: number;
  /** Parameter tensors differentiated (one per state_dict key the layer reads) and their values in all. */
  parameters: number;
  parameterValues: number;
  /** How SOFT's Newton inverse was differentiated; null when the case has none. */
  newtonBackward: 'analytic' | 'unrolled' | null;
  optimizer: 'adamw' | null;
  /**
   * What the step returns, in order: the layer's output, d/dx, d/d<key> per parameter, then with an
   * optimizer the updated parameters and state. Each is compared with the reference on its own
   * (relative to its own max |reference|); relErrorVsReference is the worst, `worstOutput` which one.
   */
  outputs: number;
  worstOutput: string | null;
  /** Each output's rel. error against the reference, in the order above; null when the case was not checked. */
  outputErrors: { name: string; relError: number }[] | null;
}

/**
 * What a runtime's device does at best, measured in the same run as the cases: fp32 matrix
 * multiply throughput (an n×n by n×n matmul whose rows are summed, so little comes back) and read
 * bandwidth (a row sum over one large tensor).
 */
export interface DeviceLimits {
  runtime: RuntimeId;
  matmul: { n: number; medianMs: number; gflopsPerSecond: number };
  read: { bytes: number; medianMs: number; gbPerSecond: number };
}

export interface ScalingFit {
  runtime: RuntimeId;
  attention: string;
  level: 'attention' | 'block';
  /** Exponent b of time ∝ tokensᵇ (least squares on log–log) and its r². */
  timeExponent: number;
  timeR2: number;
  /** Same for the analytic peak memory. */
  memoryExponent: number;
  memoryR2: number;
  tokens: number[];
  landmarks: number | null;
  /** Time exponent as the median of the pairwise log–log slopes of the medians (Theil–Sen): robust to one disturbed point. */
  timeExponentTheilSen?: number;
  /** Points whose timing other processes disturbed (more than 0.25 cores busy in every attempt): read the exponents with care. */
  contendedPoints?: number;
  /** Forward passes or training steps; absent: the report's mode (set where two runs were merged, protocol/bench-mode.ts). */
  mode?: BenchMode;
}

export interface BenchReport {
  schemaVersion: 1;
  model: string;
  config: string | null;
  startedAt: string;
  runtimes: RuntimeDescription[];
  /** Runtimes asked for but not usable here, with the reason. */
  unavailable: { id: RuntimeId; reason: string }[];
  cases: BenchCase[];
  scaling: ScalingFit[];
  /** Whether the cases are forward passes or training steps (absent in reports from before training steps: inference). */
  mode?: BenchMode;
  /** How the training steps were built, when mode is 'train'. */
  training?: BenchTrainingSetup;
  /** Per runtime, measured once after its cases (absent in reports from before it existed). */
  limits?: DeviceLimits[];
  /** Process start, device probe, graph builds and sessions vs the whole run (ms). */
  overhead: {
    processStartMs: number;
    probeMs: number;
    buildMs: number;
    sessionMs: number;
    totalMs: number;
    fraction: number;
  };
  notes: string[];
}
